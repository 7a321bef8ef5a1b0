"""One real cell end to end on the `ray` backend, through the same Snakemake rules:
start Ray, deploy, autoscale, replay, fetch, parse, stats, teardown; nothing left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from faro.model.schema import read_requests
from faro.model.stats import read_stats
from faro.model.trace import Trace, write_trace

pytestmark = [pytest.mark.ray, pytest.mark.slow]
PROJECT = Path(__file__).resolve().parents[1]


NAMES = ["job0", "job1"]


def _tiny_cell(tmp_path: Path, counts: np.ndarray) -> list[str]:
    """A two-job experiment on the trace ``counts`` (5 s per trace minute) and the Snakemake
    command that runs its one aiad cell at 3 CPUs on the ray backend."""
    exp_dir = tmp_path / "exp"
    write_trace(Trace(tuple(NAMES), counts), exp_dir / "trace.json")
    exp = yaml.safe_load((PROJECT / "experiments/local_small/experiment.yaml").read_text())
    exp.update(name="ray_tiny", unit_time=5, trace={"file": "trace.json"},
               jobs={"names": NAMES, "model": "resnet34"})
    (exp_dir / "experiment.yaml").write_text(yaml.safe_dump(exp))
    return [sys.executable, "-m", "snakemake", "--cores", "1", "--nolock", "all",
            "--config", f"experiment={exp_dir}", "backend=ray", f"results={tmp_path / 'results'}",
            f"data_dir={tmp_path / 'data'}", "quotas=[3]", "policies=[aiad]"]


def _no_ray_left(run: Path) -> None:
    from faro.backends.ray import cluster

    head = json.loads((run / "stages/clusters.json").read_text())["state"]["head"]
    assert cluster.run_pids(head["token"], head["temp_dir"]) == [], "Ray processes left behind"


def test_one_real_cell_through_the_workflow(tmp_path):
    pytest.importorskip("ray")
    counts = np.array([[20, 10], [30, 10], [40, 15], [40, 15]])  # per trace minute (5 s each): <= 8 req/s
    cmd = _tiny_cell(tmp_path, counts)
    out = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    run = tmp_path / "results/3_cpus/aiad/seed_42"
    stats = read_stats(tmp_path / "results/3_cpus/aiad/latency_stats.pkl")
    assert stats["slo_rate"] > 50 and stats["target_slo"] == 720
    req = read_requests(run / "requests.parquet")
    assert len(req) == counts.sum()  # every request recorded
    assert set(req["job"]) == set(NAMES)
    quota = json.loads((run / "stages/quota.json").read_text())
    assert quota["state"]["num_cpus"] == 3  # quota + the experiment's overhead (0)
    _no_ray_left(run)
    teardown = json.loads((run / "stages/teardown.json").read_text())
    assert teardown["backend"] == "ray"


def test_autoscaler_killed_then_rerun_succeeds(tmp_path):
    """The autoscaler killed mid-replay: the replay rule fails with a clear error and tears the
    session down; rerunning the same command rebuilds the session, replays and completes, and
    the failed attempt's partial records are kept in raw/attempts/1/."""
    pytest.importorskip("ray")
    counts = np.array([[20, 10]] * 8)  # 40 s of replay: time to kill the autoscaler mid-way
    cmd = _tiny_cell(tmp_path, counts)
    run = tmp_path / "results/3_cpus/aiad/seed_42"
    first = subprocess.Popen(cmd, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 600
        while not (run / "raw/replay_start.json").exists():
            assert first.poll() is None, first.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the replay never started"
            time.sleep(0.2)
        time.sleep(8.0)  # some records first
        pid = json.loads((run / "live/autoscaler.json").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        log, _ = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode != 0
    assert "autoscaler" in log and "died during the replay" in log, log[-3000:]
    assert not (run / "stages/replay.json").exists()
    _no_ray_left(run)  # torn down by the failed stage
    partial = (run / "raw/requests.csv").read_text().splitlines()
    assert 1 < len(partial) < 1 + counts.sum()
    # rerun: the session is rebuilt (quota .. autoscaler redone), the replay completes
    out = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    replay = json.loads((run / "stages/replay.json").read_text())
    assert replay["redone_before"] == ["quota", "clusters", "jobs", "autoscaler"]
    assert len(read_requests(run / "requests.parquet")) == counts.sum()
    kept = run / "raw/attempts/1"
    assert (kept / "requests.csv").read_text().splitlines() == partial  # the failed attempt, untouched
    assert (kept / "autoscaler.jsonl").is_file()
    _no_ray_left(run)
