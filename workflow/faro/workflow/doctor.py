"""Find incomplete or corrupt cells of a results root, and say how to rebuild them.

``faro doctor [RESULTS]`` lists, per cell, what is wrong and the Snakemake command that
rebuilds it; the workflow itself calls :func:`set_aside_corrupt` before a real run, so a
plain ``snakemake all`` rebuilds a corrupt file (moved, never deleted, to
``<run>/corrupt/``) instead of failing on it again and again.

What counts:

* **corrupt**: a Parquet file whose footer or schema cannot be read, a stats pickle or
  JSON that does not load, a stage record that is not JSON;
* **incomplete**: a run with stage records but no ``requests.parquet`` / ``latency_stats.pkl``,
  a cell with runs but no ``latency_stats.pkl``;
* **stale**: a cell whose ``latency_stats.pkl`` is older than one of its runs' stats.
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PARQUETS = ("requests.parquet", "replicas.parquet", "binned.parquet")
CORRUPT_DIR = "corrupt"


@dataclass
class Problem:
    kind: str  # corrupt | incomplete | stale
    path: Path  # the file (or folder) concerned
    detail: str
    target: Path  # what to ask Snakemake for to rebuild it


@dataclass
class Report:
    root: Path
    problems: list[Problem] = field(default_factory=list)
    cells: int = 0
    runs: int = 0


def _parquet_error(path: Path) -> str | None:
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(path)
        pq.read_schema(path)
    except Exception as e:  # noqa: BLE001 - any failure to read is what we look for
        return f"unreadable Parquet ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})"
    return None


def _pickle_error(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            obj = pickle.load(fh)
    except Exception as e:  # noqa: BLE001
        return f"unreadable pickle ({type(e).__name__})"
    return None if isinstance(obj, dict) else f"not a stats dict ({type(obj).__name__})"


def _json_error(path: Path) -> str | None:
    try:
        json.loads(path.read_text())
    except Exception as e:  # noqa: BLE001
        return f"unreadable JSON ({type(e).__name__})"
    return None


def corrupt_files(run_or_cell: Path) -> list[tuple[Path, str]]:
    """(file, reason) of every output of one run (or cell) folder that does not load."""
    out = []
    for name in PARQUETS:
        p = run_or_cell / name
        if p.is_file() and (err := _parquet_error(p)):
            out.append((p, err))
    p = run_or_cell / "latency_stats.pkl"
    if p.is_file() and (err := _pickle_error(p)):
        out.append((p, err))
    p = run_or_cell / "latency_stats.json"
    if p.is_file() and (err := _json_error(p)):
        out.append((p, err))
    stages = run_or_cell / "stages"
    if stages.is_dir():
        for rec in sorted(stages.glob("*.json")):
            if err := _json_error(rec):
                out.append((rec, err))
    return out


def _cells(root: Path, cells: Iterable[tuple[int, str]] | None) -> list[Path]:
    if cells is None:
        return sorted(p for p in root.glob("*_cpus/*") if p.is_dir() and p.name != "plots")
    return [root / f"{q}_cpus" / p for q, p in cells if (root / f"{q}_cpus" / p).is_dir()]


def scan(root: str | os.PathLike, cells: Iterable[tuple[int, str]] | None = None) -> Report:
    """Every problem under ``root`` (or only in ``cells``: (quota, policy) pairs)."""
    root = Path(root)
    rep = Report(root)
    for cell in _cells(root, cells):
        rep.cells += 1
        cell_stats = cell / "latency_stats.pkl"
        for p, err in corrupt_files(cell):
            rep.problems.append(Problem("corrupt", p, err, cell_stats))
        runs = sorted(r for r in cell.glob("seed_*") if r.is_dir())
        newest_run_stats = 0.0
        for run in runs:
            rep.runs += 1
            run_stats = run / "latency_stats.pkl"
            for p, err in corrupt_files(run):
                rep.problems.append(Problem("corrupt", p, err, run_stats))
            started = (run / "stages").is_dir() and any((run / "stages").glob("*.json"))
            if started and not (run / "requests.parquet").is_file():
                rep.problems.append(Problem("incomplete", run, "no requests.parquet", run_stats))
            elif (run / "requests.parquet").is_file() and not run_stats.is_file():
                rep.problems.append(Problem("incomplete", run, "no latency_stats.pkl", run_stats))
            if run_stats.is_file():
                newest_run_stats = max(newest_run_stats, run_stats.stat().st_mtime)
        if runs and not cell_stats.is_file():
            rep.problems.append(Problem("incomplete", cell, "no latency_stats.pkl", cell_stats))
        elif cell_stats.is_file() and newest_run_stats > cell_stats.stat().st_mtime:
            rep.problems.append(Problem("stale", cell_stats, "older than one of its runs' stats", cell_stats))
    return rep


def root_identity(root: Path) -> dict:
    try:
        return json.loads((root / ".faro-root.json").read_text())
    except (OSError, ValueError):
        return {}


def rebuild_command(rep: Report, seeds: Sequence[int] | None = None) -> str:
    """One Snakemake command that rebuilds every problem's target (a plain rerun of the
    original command does too, once corrupt files are moved aside)."""
    targets = list(dict.fromkeys(str(p.target) for p in rep.problems))
    ident = root_identity(rep.root)
    cfg = [f"results={rep.root}"]
    cfg += [f"{k}={ident[k]}" for k in ("experiment", "backend") if k in ident]
    if seeds is None:
        found = sorted({int(r.name.removeprefix("seed_")) for r in rep.root.glob("*_cpus/*/seed_*")
                        if r.name.removeprefix("seed_").isdigit()})
        seeds = found
    if seeds:
        cfg.append(f"seeds=[{','.join(str(s) for s in seeds)}]")
    return " ".join(["snakemake", "--cores", "2", *map(shlex.quote, targets), "--config",
                     *map(shlex.quote, cfg)])


def format_report(rep: Report) -> str:
    if not rep.problems:
        return f"{rep.root}: {rep.cells} cell(s), {rep.runs} run(s): nothing incomplete or corrupt"
    lines = [f"{rep.root}: {len(rep.problems)} problem(s) in {rep.cells} cell(s), {rep.runs} run(s):"]
    for p in rep.problems:
        lines.append(f"  {p.kind:10s} {p.path}: {p.detail}")
    lines.append("rebuild (corrupt files are first moved to <run>/corrupt/, never deleted):")
    lines.append(f"  faro doctor --fix {shlex.quote(str(rep.root))} && {rebuild_command(rep)}")
    lines.append("  (with your own --configfile/--config if the run used one; "
                 "a plain rerun of it does the same)")
    return "\n".join(lines)


def set_aside(path: Path) -> Path:
    """Move ``path`` into ``<its folder>/corrupt/`` under a timestamped name; returns it."""
    dest_dir = path.parent / CORRUPT_DIR if path.parent.name != "stages" else path.parent.parent / CORRUPT_DIR
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}"
    os.replace(path, dest)
    return dest


def run_chain() -> list[str]:
    """A run's outputs in the order they are made (each depends on the ones before it)."""
    from faro.backends.base import STAGES

    return [f"stages/{s}.json" for s in STAGES] + [
        "requests.parquet", "replicas.parquet", "latency_stats.pkl", "latency_stats.json", "binned.parquet",
    ]


def _derived(path: Path) -> list[Path]:
    """Outputs made from ``path`` that must go with it: Snakemake rebuilds a missing file only
    when something after it is missing too (it keeps an up-to-date result of a lost input)."""
    run = path.parent.parent if path.parent.name == "stages" else path.parent
    if not run.name.startswith("seed_"):  # a cell's own file: nothing is made from it here
        return []
    chain = run_chain()
    rel = path.relative_to(run).as_posix()
    later = chain[chain.index(rel) + 1 :] if rel in chain else []
    cell = run.parent
    return [run / f for f in later] + [cell / "latency_stats.pkl", cell / "latency_stats.json"]


def set_aside_corrupt(root: str | os.PathLike,
                      cells: Iterable[tuple[int, str]] | None = None) -> list[tuple[Path, Path, str]]:
    """Move every corrupt output under ``root`` aside, with the outputs made from it, so
    that the workflow rebuilds them.  Returns (file, where it went, reason)."""
    moved = []
    for p in scan(root, cells).problems:
        if p.kind == "corrupt" and p.path.is_file():
            moved.append((p.path, set_aside(p.path), p.detail))
            for d in _derived(p.path):
                if d.is_file():
                    moved.append((d, set_aside(d), f"made from {p.path.name}"))
    return moved
