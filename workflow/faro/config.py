"""Workflow configuration: validation beyond the JSON schema, policy files, run specs.

The Snakefile validates ``config/config.yaml`` against its JSON schema (which also
fills in defaults); :func:`check_config` then checks what a schema cannot (policy
files exist and load, quotas fit the experiment's jobs, the results root belongs
to this experiment and backend) so that bad input fails before any rule runs,
with a message naming the offending value.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from faro.atomic import atomic_path
from faro.experiment import Experiment, ExperimentError, load_experiment

ROOT_MARKER = ".faro-root.json"


class ConfigError(ValueError):
    pass


def project_root() -> Path:
    """The project folder (where Snakefile lives), from the package location."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "Snakefile").is_file():
            return parent
    return Path.cwd()


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


def validate_against(data: Any, schema_name: str, source: str) -> None:
    try:
        jsonschema.validate(data, _schema(schema_name))
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: at {where}: {e.message}") from None


def load_policy_file(name: str, policy_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and validate ``<policy_dir>/<name>.yaml``."""
    path = Path(policy_dir) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(policy_dir).glob("*.yaml"))
        raise ConfigError(f"unknown policy {name!r}: no file {path} (known: {', '.join(known)})")
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


def load_config_experiment(config: Mapping[str, Any]) -> Experiment:
    path = experiment_dir(config)
    if not (path / "experiment.yaml").is_file():
        known = sorted(p.name for p in (project_root() / "experiments").iterdir() if (p / "experiment.yaml").is_file())
        raise ConfigError(f"config key experiment: unknown experiment {config['experiment']!r} (known: {', '.join(known)})")
    try:
        return load_experiment(path)
    except ExperimentError as e:
        raise ConfigError(str(e)) from None


def unit_time(config: Mapping[str, Any], exp: Experiment) -> float:
    """The experiment's own unit_time wins over the config's (a small live experiment sets one)."""
    return float(exp.unit_time if exp.unit_time is not None else config.get("unit_time", 60))


def check_config(config: Mapping[str, Any]) -> Experiment:
    """Everything the schema cannot check; returns the loaded experiment."""
    exp = load_config_experiment(config)
    for q in config["quotas"]:
        if q < exp.n_jobs * exp.cluster.min_replicas:
            raise ConfigError(
                f"config key quotas: quota {q} is smaller than the experiment's {exp.n_jobs} jobs "
                f"x {exp.cluster.min_replicas} minimum replicas"
            )
    from faro.policies.registry import PolicyError, make_policy

    # the ablation ladder (`snakemake breakdown`) is checked too, where its files are present
    pdir = project_root() / config.get("policy_dir", "config/policies")
    ladder = [p for p in (config.get("breakdown") or {}).get("policies", []) if (pdir / f"{p}.yaml").is_file()]
    for name in list(config["policies"]) + [p for p in ladder if p not in config["policies"]]:
        spec = load_policy_file(name, project_root() / config.get("policy_dir", "config/policies"))
        try:
            make_policy(spec["class"], spec["params"], jobs=exp.jobs, quota=min(config["quotas"]), base_dir=project_root())
        except (PolicyError, TypeError, ValueError, KeyError) as e:
            raise ConfigError(f"policy {name!r} ({spec['class']}): {e}") from None
    if config.get("backend") == "k8s":
        check_k8s_section(config)
    check_results_root(config)
    return exp


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
    root = project_root() / config["results"] if not os.path.isabs(config["results"]) else Path(config["results"])
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
                    f"{ident[key]!r}: set `results:` to another folder (e.g. results/{ident['experiment']}_{ident['backend']})"
                )
    elif create:
        root.mkdir(parents=True, exist_ok=True)
        with atomic_path(marker) as tmp:
            tmp.write_text(json.dumps(ident, indent=1) + "\n")


def config_hash(obj: Any) -> str:
    """A stable short hash of any JSON-able object."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
