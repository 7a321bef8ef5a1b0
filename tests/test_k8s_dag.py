"""The k8s backend's DAG from a clean results root (``snakemake -n``; nothing runs, no cluster).

Defect 1 of issue 13: ``setup_quota`` read the trace and the trained forecaster without declaring
them, so a first single-cell run started the session before they existed.  Defect 3: the
runbook's "one cell" command pulled in every earlier cell of the matrix (each session waits for
the previous one's teardown).  The commands tested here are read from the runbook itself.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[1]
RUNBOOK = PROJECT / "docs" / "k8s-runbook.md"


def runbook_command(marker: str, ends: bool = False) -> list[str]:
    """The runbook's first command line that contains (``ends``: ends with) ``marker``."""
    text = RUNBOOK.read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("snakemake ")
             and (ln.strip().endswith(marker) if ends else marker in ln)]
    assert lines, f"no snakemake command with {marker!r} in {RUNBOOK}"
    return shlex.split(lines[0])


def dag(cmd: list[str], tmp: Path) -> tuple[dict[str, str], set[tuple[str, str]], str]:
    """(node id -> rule, edges (from, to), job stats text) of a dry run into a fresh results root."""
    assert cmd[0] == "snakemake"
    ours = [f"results={tmp / 'results'}", f"data_dir={tmp / 'data'}"]
    args = [a for a in cmd[1:] if not a.startswith(("results=", "data_dir="))]
    if "--config" in args:  # keep the command's own --config values, with our folders
        i = args.index("--config")
        args = args[: i + 1] + ours + args[i + 1 :]
        extra = ["--nolock"]
    else:
        extra = ["--nolock", "--config", *ours]
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "workflow")}
    base = [sys.executable, "-m", "snakemake", *args, *extra]
    out = subprocess.run([*base, "-n", "--dag"], cwd=PROJECT, capture_output=True, text=True, timeout=300,
                         env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    nodes = dict(re.findall(r'^\s*(\d+)\[label = "([^"\\]+)', out.stdout, re.M))
    edges = set(re.findall(r"^\s*(\d+) -> (\d+)", out.stdout, re.M))
    stats = subprocess.run([*base, "-n"], cwd=PROJECT, capture_output=True, text=True, timeout=300, env=env)
    assert stats.returncode == 0, stats.stderr[-3000:]
    return nodes, edges, stats.stdout


def ancestors(node: str, edges: set[tuple[str, str]]) -> set[str]:
    out: set[str] = set()
    todo = [node]
    while todo:
        n = todo.pop()
        for a, b in edges:
            if b == n and a not in out:
                out.add(a)
                todo.append(a)
    return out


def job_count(stats: str, rule: str) -> int:
    m = re.search(rf"^{rule}\s+(\d+)\s*$", stats, re.M)
    return int(m.group(1)) if m else 0


def test_first_run_declares_trace_and_model_before_the_session(tmp_path):
    """The runbook's first run: one session, and setup_quota runs after the trace and the model."""
    nodes, edges, stats = dag(runbook_command("k8s_first_run.yaml --cores 1", ends=True), tmp_path)
    (quota,) = [n for n, r in nodes.items() if r == "setup_quota"]
    before = {nodes[a] for a in ancestors(quota, edges)}
    assert {"prepare_trace", "train_forecaster", "fetch_data"} <= before, before
    for stage in ("deploy_clusters", "deploy_jobs", "launch_autoscaler", "replay", "fetch_logs"):
        (n,) = [k for k, r in nodes.items() if r == stage]
        assert {"prepare_trace", "train_forecaster"} <= {nodes[a] for a in ancestors(n, edges)}, stage
    assert job_count(stats, "setup_quota") == 1 and job_count(stats, "teardown_run") == 1


def test_the_runbooks_single_cell_command_is_one_session(tmp_path):
    """One cell of the main matrix = one session (not every cell before it in run order)."""
    cmd = runbook_command("k8s_main.yaml --cores 1 --config")
    nodes, edges, stats = dag(cmd, tmp_path)
    assert job_count(stats, "setup_quota") == 1, stats
    assert job_count(stats, "replay") == 1
    (quota,) = [n for n, r in nodes.items() if r == "setup_quota"]
    assert "train_forecaster" in {nodes[a] for a in ancestors(quota, edges)}


def test_the_runbooks_manifests_target_needs_no_cluster(tmp_path):
    """The manifests of the first run: trace and model first, no session stage at all."""
    cmd = runbook_command("seed_42/manifests")
    root = "results/twitter_10jobs_10min_k8s/"
    assert cmd[-1].startswith(root)
    cmd[-1] = str(tmp_path / "results" / cmd[-1][len(root):])
    nodes, edges, stats = dag(cmd, tmp_path)
    assert job_count(stats, "k8s_manifests") == 1 and job_count(stats, "setup_quota") == 0
    (m,) = [n for n, r in nodes.items() if r == "k8s_manifests"]
    assert {"prepare_trace", "train_forecaster"} <= {nodes[a] for a in ancestors(m, edges)}
