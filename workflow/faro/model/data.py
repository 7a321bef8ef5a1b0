"""External data: the Faro artifact's trace, history and Cilantro logs.

Each file is fetched from the public artifact at a pinned commit (or copied from
a local mirror directory with the same layout) and its sha256 is checked before
anything parses it.  Nothing is written in place: a file appears only once it is
complete and verified.

The mirror comes from the config's ``data_mirror``, else the ``FARO_DATA_MIRROR``
environment variable, else ``data_mirror`` in the user's settings
(``$XDG_CONFIG_HOME/faro/config.yaml``, default ``~/.config/faro/config.yaml``).  It is
read when a fetch runs, never part of a rule's identity: setting or forgetting it never
marks a fetched file out of date.

Every verified file is also kept (hard-linked, so no second copy) under
``<data_dir>/.verified/<sha256>``: if Snakemake removes a fetched file before redoing its
fetch (it clears a job's outputs first), the fetch restores it from there, offline, instead
of losing it.  Fetched files are world-readable (0644 under the usual umask).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

ARTIFACT_COMMIT = "b595c4ad7b2390db4c29dfdd15cfbd382267d011"
_RAW = f"https://raw.githubusercontent.com/beomyeol/faro/{ARTIFACT_COMMIT}"
_EXP = f"{_RAW}/experiments/top9_twitter_1_1600_avgproc_min_int5m_reduced_6hr_augmented"
_CIL = f"{_RAW}/results/cilantro/workdirs_eks/utilwelflearn_exp_env_2_64_eks_1017235443"
MIRROR_ENV = "FARO_DATA_MIRROR"
VERIFIED_DIR = ".verified"
log = logging.getLogger("faro.model.data")
HISTORY_FILE = "top9_twitter_1_1600_avgproc_min_int5m_reduced_6hr_augmented.pkl"


@dataclass(frozen=True)
class RemoteFile:
    name: str  # path inside the dataset (and the mirror)
    url: str
    sha256: str


def _cil(name: str, sha: str) -> RemoteFile:
    return RemoteFile(f"cilantro-eks/{name}", f"{_CIL}/{name}", sha)


DATASETS: dict[str, dict[str, RemoteFile]] = {
    "faro-artifact": {
        f.name: f
        for f in [
            RemoteFile(
                "input.json",
                f"{_EXP}/input.json",
                "9370242f7291c94b04ed3c0329c45e1f286e7ca9aa92f126bf7c2b234b892b54",
            ),
            RemoteFile(
                HISTORY_FILE,
                f"{_EXP}/{HISTORY_FILE}",
                "e8bfc249a15320d65ecf1017e48a5ae7bbed30724b54ea7599751a543fdaf5cf",
            ),
            _cil("env.txt", "4c622eed33e97e87ac8f85467e60c9a81bd688d2d435c843f2456cd059840134"),
            _cil("info.txt", "1fc5b40956840a3822bff54e5d444b8e9a32dd41f186e51903418cd60182a10a"),
            *[
                _cil(f"root--prsj{k}_craypredserv.csv", sha)
                for k, sha in [
                    (1, "1261138696c2f8ed975fdaddd846c3d05e610c01f570ab32bb31f2d7de5688f5"),
                    (2, "86879f7e20bc47a480d5cf80b4b698360b25ace4fd7bf9951756183c418fc569"),
                    (3, "fb6b40b338a200c13b976cb12077166d0c88e42246452cfb29db9aa04834e578"),
                    (4, "bc860da0cb35f8e7b9cf09682cf496368c2f048facbb1cb86d2d3fbceeebaaca"),
                    (5, "f6d04de46930eb5ff9165eacda5dca2b01cd20dfc3ba8f35bd397770e9b13f7d"),
                    (6, "3b07c56c1c3a403af4adee0f1cfa93863ad2f4f3f443f97a501d66ef02f2f36d"),
                    (7, "018a9efdcd2ff917a524deac2eae8d1ad33a85f838c77ca3aaa4753f1382e25d"),
                    (8, "0a48d26f3b86faee7c3302aa0387603ba667c7a54dfcc0bb28d7ddc2d1bf11a7"),
                    (9, "b545f9cd1ccb714ce7e7291d3b8647a4dd89677d5056dba985e5b09b17a05b37"),
                    (10, "1bfb1007cfb524bd4cbe70ed06a38be444b11468ee81599386e8c4ba175fae8e"),
                ]
            ],
        ]
    }
}


class DataError(RuntimeError):
    pass


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def lookup(dataset: str, name: str) -> RemoteFile:
    try:
        files = DATASETS[dataset]
    except KeyError:
        raise DataError(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})") from None
    try:
        return files[name]
    except KeyError:
        raise DataError(f"dataset {dataset!r} has no file {name!r} (known: {', '.join(files)})") from None


def user_settings_file() -> Path:
    """The user-level settings file (``data_mirror`` may be set there)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "faro" / "config.yaml"


def resolve_mirror(configured: str | os.PathLike | None = None) -> tuple[str | None, str]:
    """``(mirror directory or None, where it came from)``: config, environment, user settings."""
    if configured:
        return str(configured), "config data_mirror"
    env = os.environ.get(MIRROR_ENV)
    if env:
        return env, f"environment {MIRROR_ENV}"
    f = user_settings_file()
    if f.is_file():
        import yaml

        try:
            data = yaml.safe_load(f.read_text()) or {}
        except yaml.YAMLError as e:
            raise DataError(f"{f}: invalid YAML: {e}") from None
        if not isinstance(data, dict):
            raise DataError(f"{f}: expected a mapping such as 'data_mirror: /path/to/mirror'")
        if data.get("data_mirror"):
            return str(data["data_mirror"]), str(f)
    return None, "none (download)"


def _readable(path: Path) -> None:
    """rw-r--r-- as the umask allows (mkstemp creates 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _store(src: Path, keep: Path) -> None:
    keep.parent.mkdir(parents=True, exist_ok=True)
    ktmp = keep.with_name(f".{keep.name}.tmp")
    ktmp.unlink(missing_ok=True)
    _link_or_copy(src, ktmp)
    os.replace(ktmp, keep)


def keep_verified(data_dir: str | os.PathLike) -> list[Path]:
    """Put every already-fetched file that verifies into the verified store (files fetched
    before the store existed), so no later redo of its fetch can lose it.  Returns them."""
    kept = []
    for dataset, files in DATASETS.items():
        for name, rf in files.items():
            f = Path(data_dir) / dataset / name
            keep = verified_copy(data_dir, rf.sha256)
            if f.is_file() and not keep.is_file() and sha256_of(f) == rf.sha256:
                _store(f, keep)
                kept.append(f)
    return kept


def verified_copy(data_dir: str | os.PathLike, sha256: str) -> Path:
    return Path(data_dir) / VERIFIED_DIR / sha256


def fetch(
    dataset: str,
    name: str,
    dest: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """Restore ``name`` from the verified store, or copy it from ``mirror`` / download it;
    verify, move into ``dest``.

    ``data_dir`` (default: two levels above ``dest``'s dataset folder) holds the verified
    store.  Returns a provenance record (source, sha256).  A checksum mismatch or a failed
    download raises :class:`DataError` naming the file; ``dest`` and the store are left
    untouched (nothing verified is ever removed).
    """
    rf = lookup(dataset, name)
    dest = Path(dest)
    if data_dir is None:  # dest = <data_dir>/<dataset>/<name>, name may hold a folder
        data_dir = dest.parents[len(Path(rf.name).parts)]
    keep = verified_copy(data_dir, rf.sha256)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if keep.is_file() and sha256_of(keep) == rf.sha256:
            shutil.copyfile(keep, tmp)
            source = f"{keep} (verified earlier)"
        elif mirror:
            src = Path(mirror) / rf.name
            if not src.is_file():
                raise DataError(f"mirror {mirror}: file {rf.name} not found")
            shutil.copyfile(src, tmp)
            source = str(src.resolve())
        else:
            import urllib.request

            try:
                with urllib.request.urlopen(rf.url, timeout=60) as resp, tmp.open("wb") as out:
                    shutil.copyfileobj(resp, out)
            except OSError as e:
                raise DataError(
                    f"cannot download {rf.url}: {e}; point data_mirror (config, --config, the "
                    f"{MIRROR_ENV} environment variable or {user_settings_file()}) at a local copy"
                ) from None
            source = rf.url
        got = sha256_of(tmp)
        if got != rf.sha256:
            raise DataError(f"{source}: sha256 mismatch for {rf.name}: expected {rf.sha256}, got {got}")
        _readable(tmp)
        os.replace(tmp, dest)
        if not keep.is_file():
            _store(dest, keep)
    finally:
        tmp.unlink(missing_ok=True)
    return {"dataset": dataset, "file": rf.name, "source": source, "sha256": rf.sha256,
            "commit": ARTIFACT_COMMIT}


def verify(path: str | os.PathLike, dataset: str, name: str) -> None:
    """Check an already-fetched file against its pinned checksum (before parsing it)."""
    rf = lookup(dataset, name)
    got = sha256_of(path)
    if got != rf.sha256:
        raise DataError(f"{path}: sha256 mismatch for {rf.name}: expected {rf.sha256}, got {got}")
