"""Provenance stamped on every stage record and Parquet file.

The git commit and the package versions are the same for every job of one Snakemake
invocation: the Snakefile computes them once (:func:`share_with_jobs`) and hands them to the
rules' scripts in the environment (``FARO_PROVENANCE``), so that no stage job runs git or
scans the installed packages again.  Outside Snakemake they are computed on first use.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from functools import cache
from importlib import metadata
from typing import TYPE_CHECKING, Any

from faro.workflow.paths import project_root

if TYPE_CHECKING:
    from faro.runspec import RunSpec

ENV = "FARO_PROVENANCE"

_PACKAGES = ("faro", "numpy", "scipy", "numba", "pandas", "pyarrow", "snakemake", "ray", "kubernetes")


@cache
def _shared() -> dict[str, Any]:
    try:
        return dict(json.loads(os.environ.get(ENV) or "{}"))
    except ValueError:
        return {}


def share_with_jobs() -> None:
    """Compute the commit and the versions once, for every job this process starts."""
    os.environ[ENV] = json.dumps({"git_commit": git_commit(), "versions": versions()})


@cache
def git_commit() -> str:
    """The project's git commit (with ``-dirty`` when the work tree has changes)."""
    if "git_commit" in _shared():
        return str(_shared()["git_commit"])
    root = project_root()
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@cache
def versions() -> dict[str, str]:
    if "versions" in _shared():
        return dict(_shared()["versions"])
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def provenance(**extra) -> dict:
    return {"git_commit": git_commit(), "versions": versions(), "host": platform.node(), **extra}


def run_provenance(run: RunSpec) -> dict:
    """The provenance of one run's files: who made them, and which run they are."""
    return provenance(backend=run.backend, experiment=run.experiment_name, quota=run.quota,
                      policy=run.policy.name,
                      seed=run.seed, config_hash=run.config_hash, unit_time=run.unit_time)
