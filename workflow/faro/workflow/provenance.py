"""Provenance stamped on every stage record and Parquet file."""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from importlib import metadata

from faro.workflow.config import project_root

_PACKAGES = ("faro", "numpy", "scipy", "numba", "pandas", "pyarrow", "snakemake", "ray", "kubernetes")


@cache
def git_commit() -> str:
    """The project's git commit (with ``-dirty`` when the work tree has changes)."""
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
        )  # fmt: skip
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@cache
def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def provenance(**extra) -> dict:
    return {"git_commit": git_commit(), "versions": versions(), "host": platform.node(), **extra}
