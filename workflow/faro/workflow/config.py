"""Workflow configuration: validation beyond the JSON schema, policy files, run specs.

The Snakefile validates ``config/config.yaml`` against its JSON schema (which also
fills in defaults); :func:`check_config` then checks what a schema cannot (policy
files exist and load, quotas fit the experiment's jobs, the results root belongs
to this experiment and backend) so that bad input fails before any rule runs,
with a message naming the offending value.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import yaml

from faro.atomic import atomic_path
from faro.model.experiment import Experiment, ExperimentError, load_experiment

ROOT_MARKER = ".faro-root.json"


from faro.policies.params import suggest  # noqa: E402
from faro.workflow.paths import project_root, set_project_root  # noqa: E402,F401 (re-exported)

if TYPE_CHECKING:
    from faro.runspec import RunSpec


class ConfigError(ValueError):
    pass


@cache
def _schema(name: str) -> dict:
    return yaml.safe_load((project_root() / "config" / "schema" / name).read_text())


def coerce_cli(config: dict[str, Any]) -> dict[str, Any]:
    """``--config quotas=[16,32]`` arrives as strings: make whole numbers numbers again."""

    def num(v: Any) -> Any:
        if isinstance(v, str):
            try:
                return int(v)
            except ValueError:
                try:
                    return float(v)
                except ValueError:
                    return v
        return v

    for key in ("quotas", "seeds"):
        if isinstance(config.get(key), list):
            config[key] = [num(v) for v in config[key]]
        elif isinstance(config.get(key), str | int):
            config[key] = [num(config[key])]
    if "unit_time" in config:
        config["unit_time"] = num(config["unit_time"])
    return config


def config_sources(configfiles: Sequence[str | os.PathLike] = (), cli: Mapping[str, Any] | None = None):
    """Where config keys come from, highest precedence first: ``--config``, the
    ``--configfile`` files (last first), then ``config/config.yaml``."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    if cli:
        out.append(("--config", dict(cli)))
    for f in reversed([str(f) for f in configfiles]):
        try:
            data = yaml.safe_load(Path(f).read_text()) or {}
        except (OSError, yaml.YAMLError):
            data = {}
        out.append((project_relative(f), data if isinstance(data, Mapping) else {}))
    default = project_root() / "config" / "config.yaml"
    out.append(("config/config.yaml", yaml.safe_load(default.read_text()) or {} if default.is_file() else {}))
    return out


def _error_key(e: jsonschema.ValidationError) -> tuple[list[str], str]:
    """(key path, short message with a close match) of a schema error."""
    path = [str(p) for p in e.absolute_path]
    if e.validator == "additionalProperties" and isinstance(e.instance, Mapping):
        known = list((e.schema.get("properties") or {}).keys())
        unknown = [k for k in e.instance if k not in known]
        if unknown:
            k = str(unknown[0])
            return path + [k], f"unknown key{suggest(k, known)}; known keys: {', '.join(known)}"
    if e.validator == "enum":
        choices = ", ".join(map(str, e.validator_value))
        return path, f"{e.instance!r} is not one of {choices}{suggest(e.instance, e.validator_value)}"
    msg = e.message
    if len(msg) > 200:
        msg = msg[:200] + "..."
    return path, msg


def check_config_schema(
    config: Mapping[str, Any], sources: Sequence[tuple[str, Mapping[str, Any]]] = (), verbose: bool = False
) -> None:
    """The config against ``config/schema/config.schema.yaml``: one short line naming the
    source (``--config``, a ``--configfile`` or ``config/config.yaml``), the key and a close
    match; the full schema error only with ``verbose``."""
    validator = jsonschema.Draft202012Validator(_schema("config.schema.yaml"))
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    path, msg = _error_key(error)
    source = "config"
    if path:
        source = next((name for name, data in sources if path[0] in data), "config/config.yaml")
    key = "/".join(path) or "(top level)"
    text = f"{source}: key {key}: {msg}"
    if verbose:
        text += f"\n\nfull schema error:\n{error}"
    raise ConfigError(text)


def validate_against(data: Any, schema_name: str, source: str) -> None:
    try:
        jsonschema.validate(data, _schema(schema_name))
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: at {where}: {e.message}") from None


def load_policy_file(name: str, policy_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and validate ``<policy_dir>/<name>.yaml`` (once per file version in a process)."""
    path = Path(policy_dir) / f"{name}.yaml"
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    return copy.deepcopy(_load_policy_file(name, str(policy_dir), stamp))


@cache
def _load_policy_file(name: str, policy_dir: str, stamp: int | None) -> dict[str, Any]:
    path = Path(policy_dir) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(policy_dir).glob("*.yaml"))
        raise ConfigError(
            f"unknown policy {name!r}{suggest(name, known)}: no file {project_relative(path)} "
            f"(known: {', '.join(known)})"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    validate_against(data, "policy.schema.yaml", str(path))
    data.setdefault("params", {})
    return data


def experiment_dir(config: Mapping[str, Any]) -> Path:
    """``experiments/<name>/`` for a plain name; a name with a ``/`` is a folder path."""
    name = str(config["experiment"])
    if "/" in name:
        p = Path(name)
        return p if p.is_absolute() else project_root() / p
    return project_root() / "experiments" / name


def project_relative(path: str | os.PathLike) -> str:
    """``path`` relative to the project when it lies inside it (rules avoid absolute paths)."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(project_root()))
    except ValueError:
        return str(p)


def experiment_trace_file(config: Mapping[str, Any], exp: Experiment) -> str:
    """An experiment's own trace file (no data set): relative to its folder."""
    f = Path(exp.trace_spec["file"])
    return project_relative(f if f.is_absolute() else experiment_dir(config) / f)


def default_config() -> dict[str, Any]:
    """``config/config.yaml`` with the schema's defaults filled in (for checks outside Snakemake)."""
    cfg = yaml.safe_load((project_root() / "config" / "config.yaml").read_text()) or {}
    for key, spec in _schema("config.schema.yaml")["properties"].items():
        if "default" in spec:
            cfg.setdefault(key, spec["default"])
    return cfg


def load_config_experiment(config: Mapping[str, Any]) -> Experiment:
    path = experiment_dir(config)
    if not (path / "experiment.yaml").is_file():
        folders = (project_root() / "experiments").iterdir()
        known = sorted(p.name for p in folders if (p / "experiment.yaml").is_file())
        raise ConfigError(
            f"config key experiment: unknown experiment {config['experiment']!r}"
            f"{suggest(str(config['experiment']), known)} (known: {', '.join(known)})"
        )
    try:
        return load_experiment(path)
    except ExperimentError as e:
        raise ConfigError(str(e)) from None


def unit_time(config: Mapping[str, Any], exp: Experiment) -> float:
    """The experiment's own unit_time wins over the config's (a small live experiment sets one)."""
    return float(exp.unit_time if exp.unit_time is not None else config.get("unit_time", 60))


def check_config(config: Mapping[str, Any], targets: Sequence[str] = (), *,
                 results_root: bool = True) -> Experiment:
    """Everything the schema cannot check, for the matrix and for every requested target
    (a single cell's path too); returns the loaded experiment.

    Policies (file, class, declared parameters), quotas against the experiment's minimum
    replicas and each policy's starting replicas, the trace (syntax, the experiment's jobs;
    extra jobs are a warning), the results root; then the same per-cell checks for each
    ``{quota}_cpus/{policy}`` named in ``targets``.
    """
    exp = load_config_experiment(config)
    ladder = [p for p in (config.get("breakdown") or {}).get("policies", []) if policy_path(config,
                                                                                            p).is_file()]
    for name in list(config["policies"]) + [p for p in ladder if p not in config["policies"]]:
        for q in config["quotas"]:
            check_cell(config, exp, int(q), str(name), where="config key quotas: ")
    for w in check_trace(config, exp):
        if "not fetched yet" not in w:
            print(f"faro: warning: {w}", file=sys.stderr)
    if config.get("backend") == "k8s":
        check_k8s_section(config)
    if results_root:
        check_results_root(config)
    for target, q, name in target_cells(config, targets):
        check_cell(config, exp, q, name, where=f"target {target}: ")
    return exp


def policy_path(config: Mapping[str, Any], name: str) -> Path:
    return project_root() / config.get("policy_dir", "config/policies") / f"{name}.yaml"


def check_cell(config: Mapping[str, Any], exp: Experiment, quota: int, name: str, where: str = "") -> None:
    """One cell: the quota fits the jobs' minimum replicas, the policy file loads, its class's
    declared parameters accept the file's, and the policy's starting replicas fit the quota."""
    from faro.policies.registry import PolicyError, make_policy

    floor = exp.n_jobs * exp.cluster.min_replicas
    if quota < floor:
        raise ConfigError(
            f"{where}quota {quota} is smaller than the experiment's {exp.n_jobs} jobs "
            f"x {exp.cluster.min_replicas} minimum replicas"
        )
    path = policy_path(config, name)
    spec = load_policy_file(name, path.parent)
    try:
        policy = make_policy(spec["class"], spec["params"], jobs=exp.jobs, quota=quota,
                             base_dir=project_root())
    except (PolicyError, TypeError, ValueError, KeyError) as e:
        raise ConfigError(f"{where}{project_relative(path)}: {e}") from None
    check_native(spec["params"], str(config.get("backend", "sim")), project_relative(path), where)
    start = dict(policy.initial_replicas())
    used = sum(int(start.get(j, 1)) for j in exp.jobs)
    if used > quota:
        raise ConfigError(
            f"{where}quota {quota}: policy {name!r} starts the {exp.n_jobs} jobs with {used} replicas, "
            f"more than the quota; use a quota of at least {used}"
        )


def check_native(params: Mapping[str, Any], backend: str, policy_file: str, where: str = "") -> None:
    """A policy with ``native: true`` (Ray Serve's own autoscaler) runs on the ``ray`` backend
    only: refused elsewhere, never silently emulated."""
    from faro.policies.production import is_native

    if is_native(params) and backend != "ray":
        raise ConfigError(f"{where}{policy_file}: params.native: true (Ray Serve's own autoscaler) runs only "
                          f"on the ray backend, not on {backend!r}; use the emulated policy there")


def trace_source(config: Mapping[str, Any], exp: Experiment) -> str:
    """The experiment's source trace: a fetched data set file, or the user's own file."""
    spec = exp.trace_spec
    if "dataset" in spec:
        return f"{config['data_dir']}/{spec['dataset']}/{spec['file']}"
    return experiment_trace_file(config, exp)


def check_trace(config: Mapping[str, Any], exp: Experiment) -> list[str]:
    """The trace against the experiment: syntax, every job on every line (an error naming
    the file and line), extra jobs (returned as warnings).  A data set's trace not fetched
    yet is checked in the data mirror when there is one, else right after its fetch (by
    ``prepare_trace``, before any run starts); a note says so."""
    from faro.model.data import resolve_mirror
    from faro.model.experiment import experiment_trace
    from faro.model.trace import TraceError

    path = trace_source(config, exp)
    full = Path(path) if os.path.isabs(path) else project_root() / path
    notes: list[str] = []
    if not full.is_file():
        if "dataset" not in exp.trace_spec:
            raise ConfigError(f"experiment {exp.name}: trace file {path} not found")
        mirror, _ = resolve_mirror(config.get("data_mirror"))
        in_mirror = Path(mirror) / exp.trace_spec["file"] if mirror else None
        if in_mirror is None or not in_mirror.is_file() or not _verifies(in_mirror, exp.trace_spec):
            # (a mirror copy that fails its checksum is reported by the fetch, naming both hashes)
            return [f"trace {path} not fetched yet: checked right after its fetch"]
        full = in_mirror
    try:
        return notes + experiment_trace(exp, full)[1]
    except (TraceError, ExperimentError) as e:
        raise ConfigError(str(e)) from None


def _verifies(path: Path, spec: Mapping[str, Any]) -> bool:
    from faro.model.data import DataError, lookup, sha256_of

    try:
        return sha256_of(path) == lookup(spec["dataset"], spec["file"]).sha256
    except DataError:
        return False


_CELL_PART = re.compile(r"^(\d+)_cpus(?:/([A-Za-z0-9_-]+))?(?:/|$)")


def target_cells(config: Mapping[str, Any], targets: Sequence[str]) -> list[tuple[str, int, str]]:
    """``(target, quota, policy)`` of each target path inside the results root (every
    configured policy for a bare ``<quota>_cpus`` folder); a path with a ``<n>_cpus`` folder
    outside the root is an error."""
    root = os.path.normpath(os.path.abspath(config["results"]))
    out: list[tuple[str, int, str]] = []
    for t in targets:
        if "_cpus" not in str(t):
            continue  # a rule name or a file elsewhere (data, plots)
        full = os.path.normpath(os.path.abspath(str(t)))
        rel = os.path.relpath(full, root)
        m = _CELL_PART.match(rel)
        if rel.startswith("..") or not m:
            if re.search(r"(^|/)\d+_cpus(/|$)", rel):
                raise ConfigError(
                    f"target {t}: outside the results root {config['results']}; "
                    f"add --config results=<the folder above its <quota>_cpus>"
                )
            continue
        q, name = int(m.group(1)), m.group(2)
        for p in [name] if name else list(config["policies"]):
            out.append((str(t), q, p))
    return out


def check_k8s_section(config: Mapping[str, Any]) -> None:
    """The ``k8s:`` section builds K8sSettings, and every cell's namespace name is valid."""
    from faro.backends.k8s.config import namespace_name, settings_from_config

    try:
        s = settings_from_config(config.get("k8s"))
        for q in config["quotas"]:
            for p in config["policies"]:
                namespace_name(s.namespace_prefix, q, p)
    except (ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"config key k8s: {e}") from None


def root_identity(config: Mapping[str, Any]) -> dict[str, str]:
    return {"experiment": str(config["experiment"]), "backend": str(config["backend"])}


def check_results_root(config: Mapping[str, Any], create: bool = False) -> None:
    """Refuse a results root that records another experiment or backend."""
    results = config["results"]
    root = Path(results) if os.path.isabs(results) else project_root() / results
    marker = root / ROOT_MARKER
    ident = root_identity(config)
    if marker.is_file():
        try:
            found = json.loads(marker.read_text())
        except json.JSONDecodeError:
            raise ConfigError(f"{marker}: unreadable; remove it if the folder is yours") from None
        for key in ("experiment", "backend"):
            if found.get(key) != ident[key]:
                raise ConfigError(
                    f"results root {root} holds {key} {found.get(key)!r}, but the config asks for "
                    f"{ident[key]!r}: set `results:` to another folder "
                    f"(e.g. results/{ident['experiment']}_{ident['backend']})"
                )
    elif create:
        root.mkdir(parents=True, exist_ok=True)
        with atomic_path(marker) as tmp:
            tmp.write_text(json.dumps(ident, indent=1) + "\n")


def run_identity_hash(
    *,
    experiment: Mapping[str, Any],
    unit_time: float,
    backend: str,
    backend_options: Mapping[str, Any] | None,
    policy: Mapping[str, Any],
    quota: int,
    seed: int,
) -> str:
    """What determines one run, hashed: its experiment (trace spec included), the policy's
    class and parameters, quota, seed, backend and its options.  The code is tracked by the
    rules' code inputs.  Never the rest of the matrix (other policies, quotas, seeds) nor
    paths or data settings such as ``data_mirror``."""
    return config_hash(
        {
            "experiment": experiment,
            "unit_time": float(unit_time),
            "backend": backend,
            "backend_options": backend_options or {},
            "policy": policy,
            "quota": int(quota),
            "seed": int(seed),
        }
    )


def config_hash(obj: Any) -> str:
    """A stable short hash of any JSON-able object."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def make_run_spec(*, experiment: Mapping[str, Any] | str | os.PathLike, backend: str, quota: int, policy: str,
                  seed: int, unit_time: float, trace_file: str,
                  policy_dir: str | os.PathLike = "config/policies",
                  results: str = "results", data_dir: str = "results/data",
                  backend_options: Mapping[str, Any] | None = None,
                  config_hash: str | None = None) -> RunSpec:
    """One run's :class:`~faro.runspec.RunSpec`, resolved from the config's pieces: the
    experiment (its definition, or its file), the policy's file (class, parameters, the data
    files it reads).  The rules' ``get_run_spec`` and the by-hand tools build runs only here."""
    from faro.runspec import PolicySpec, RunSpec
    raw = dict(experiment) if isinstance(experiment, Mapping) else dict(load_experiment(experiment).raw)
    pdir = Path(policy_dir)
    spec = load_policy_file(policy, pdir if pdir.is_absolute() else project_root() / pdir)
    policy_file = pdir / f"{policy}.yaml"
    check_native(spec["params"], str(backend), str(policy_file))
    ps = PolicySpec(policy, spec["class"], dict(spec["params"]),
                    tuple(policy_data(str(policy_file), str(data_dir))))
    options = dict(backend_options or {})
    if config_hash is None:
        config_hash = run_identity_hash(experiment=raw, unit_time=unit_time, backend=backend,
                                        backend_options=options,
                                        policy={"class": ps.cls, "params": dict(ps.params)}, quota=quota,
                                        seed=seed)
    return RunSpec(experiment=raw, backend=backend, quota=int(quota), seed=int(seed), policy=ps,
                   unit_time=float(unit_time), trace_file=str(trace_file), results=str(results),
                   data_dir=str(data_dir), project_root=str(project_root()), config_hash=config_hash,
                   backend_options=options)


def policy_data(policy_file: str, data_dir: str) -> list[str]:
    """Data files a policy reads (e.g. the forecaster's training history)."""
    from faro.policies.registry import policy_class

    spec = yaml.safe_load((project_root() / policy_file).read_text())
    cls = policy_class(spec["class"], project_root())
    fn = getattr(cls, "data_inputs", None)
    return list(fn(spec.get("params") or {}, data_dir)) if callable(fn) else []
