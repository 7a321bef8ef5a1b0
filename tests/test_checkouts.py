"""Two checkouts, one environment: the workflow of each checkout runs its own package.

A common set-up when comparing a change: the environment has the package installed (editable)
from one checkout, and Snakemake runs in another.  The Snakefile must import its own
checkout's ``faro`` and take the project root from its own folder, or the config checks read
the other checkout's ``config/policies/`` and the rules mix two code versions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
MARK = "faro package of the second checkout"

pytestmark = pytest.mark.slow


def _copy_checkout(dst: Path) -> Path:
    files = subprocess.run(["git", "ls-files"], cwd=PROJECT, capture_output=True, text=True,
                           check=True).stdout
    for rel in files.splitlines():
        src = PROJECT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel, follow_symlinks=False)
    return dst


def test_the_snakefile_runs_its_own_checkouts_package(tmp_path):
    other = _copy_checkout(tmp_path / "other")
    # only the second checkout has this policy, and only its package prints the mark
    shutil.copy(other / "config/policies/aiad.yaml", other / "config/policies/only_here.yaml")
    init = other / "workflow/faro/__init__.py"
    init.write_text(init.read_text() + f"\nimport sys as _sys\n\nprint({MARK!r}, file=_sys.stderr)\n")
    import faro

    assert Path(faro.__file__).resolve().is_relative_to(PROJECT)  # the environment's package: this one
    mirror = os.environ.get("FARO_DATA_MIRROR") or str(PROJECT.parent / "shared/data/faro-artifact")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config", "policies=[only_here]",
         "quotas=[32]", f"results={tmp_path / 'results'}", f"data_mirror={mirror}"],
        cwd=other, env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert MARK in out.stderr  # the Snakefile imported the second checkout's package
