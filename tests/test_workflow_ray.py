"""One real cell end to end on the `ray` backend, through the same Snakemake rules:
start Ray, deploy, autoscale, replay, fetch, parse, stats, teardown; nothing left running."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from faro.schema import read_requests
from faro.stats import read_stats
from faro.trace import Trace, write_trace

pytestmark = [pytest.mark.ray, pytest.mark.slow]
PROJECT = Path(__file__).resolve().parents[1]


def test_one_real_cell_through_the_workflow(tmp_path):
    pytest.importorskip("ray")
    from faro.backends.ray import cluster

    names = ["job0", "job1"]
    counts = np.array([[20, 10], [30, 10], [40, 15], [40, 15]])  # per trace minute (5 s each): <= 8 req/s
    exp_dir = tmp_path / "exp"
    write_trace(Trace(tuple(names), counts), exp_dir / "trace.json")
    exp = yaml.safe_load((PROJECT / "experiments/local_small/experiment.yaml").read_text())
    exp.update(name="ray_tiny", unit_time=5, trace={"file": "trace.json"}, jobs={"names": names, "model": "resnet34"})
    (exp_dir / "experiment.yaml").write_text(yaml.safe_dump(exp))
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "--nolock", "all", "--config", f"experiment={exp_dir}",
           "backend=ray", f"results={tmp_path / 'results'}", f"data_dir={tmp_path / 'data'}",
           "quotas=[3]", "policies=[aiad]"]  # fmt: skip
    out = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    run = tmp_path / "results/3_cpus/aiad/seed_42"
    stats = read_stats(tmp_path / "results/3_cpus/aiad/latency_stats.pkl")
    assert stats["slo_rate"] > 50 and stats["target_slo"] == 720
    req = read_requests(run / "requests.parquet")
    assert len(req) == counts.sum()  # every request recorded
    assert set(req["job"]) == set(names)
    quota = json.loads((run / "stages/quota.json").read_text())
    assert quota["state"]["num_cpus"] == 3  # quota + the experiment's overhead (0)
    head = json.loads((run / "stages/clusters.json").read_text())["state"]["head"]
    assert cluster.run_pids(head["token"], head["temp_dir"]) == [], "Ray processes left behind"
    teardown = json.loads((run / "stages/teardown.json").read_text())
    assert teardown["backend"] == "ray"
