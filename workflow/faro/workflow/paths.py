"""The project root: the folder of the Snakefile that runs (standard library only, so that every
stage can ask for it without importing the config machinery)."""

from __future__ import annotations

import os
from pathlib import Path

_PROJECT_ROOT: list[Path] = []


def set_project_root(path: str | os.PathLike) -> None:
    """The Snakefile sets the project root to its own folder (``workflow.basedir``)."""
    _PROJECT_ROOT[:] = [Path(path).resolve()]


def project_root() -> Path:
    """The project folder: the Snakefile's (:func:`set_project_root`); outside Snakemake (the
    command line, a rule's script, which runs its own checkout's package) the checkout that
    holds this package."""
    if _PROJECT_ROOT:
        return _PROJECT_ROOT[0]
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "Snakefile").is_file():
            return parent
    return Path.cwd()
