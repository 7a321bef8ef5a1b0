"""The k8s backend's in-pod autoscaler against real Ray heads (no Kubernetes).

Two local Ray heads on their own ports stand for two jobs' KubeRay clusters: each runs the
``ray`` backend's Serve application, deployed through its own dashboard's REST API.  The
autoscaler process runs with the config shape ``manifests.autoscaler_config`` renders (one
``clusters`` entry per job: dashboard, Prometheus endpoint, Ray Client address, Serve config),
the replayer sends a short trace to both Serve proxies, and one head is killed mid-run: the
autoscaler keeps deciding for the other, logs the lost cluster as unreachable, and ends cleanly
at the replay's end.  Expensive (two Ray heads): slow + ray.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ray_helpers import TESTS, leftover, run_config

from faro.backends.ray import cluster
from faro.serving import serve_api
from faro.serving.serve_app import app_config, serve_config

pytestmark = [pytest.mark.slow, pytest.mark.ray]
PROJECT = Path(__file__).resolve().parents[1]
JOBS = ("job-a", "job-b")
UNIT_TIME = 5.0


def _running(rec: dict, job: str) -> int:
    return len(serve_api.job_states(serve_api.get_details(rec["dashboard_url"]))
               .get(job, {}).get("running", []))


def _records(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def test_the_inpod_autoscaler_survives_losing_one_of_two_real_heads(tmp_path):
    heads: list[dict] = []
    procs: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT / "workflow"), TESTS])}
    try:
        confs = {}
        for job in JOBS:
            rec = cluster.start_head(tmp_path / job, 2, state_dir=tmp_path / "state",
                                     extra_pythonpath=[TESTS])
            heads.append(rec)
            confs[job] = serve_config([app_config(job, 1)], rec["http_port"])
            serve_api.put_config(rec["dashboard_url"], confs[job])
        deadline = time.monotonic() + 180
        while not all(_running(rec, job) >= 1 for rec, job in zip(heads, JOBS, strict=True)):
            assert time.monotonic() < deadline, "Serve did not come up"
            time.sleep(1)

        raw = tmp_path / "raw"
        raw.mkdir()
        spec = run_config(tmp_path, [{j: 40 for j in JOBS}] * 6, unit_time=UNIT_TIME,
                          backend="k8s")  # 6 min x 5 s
        trace = spec.trace_file
        cfg = {
            "run": spec.to_dict(), "initial": {j: 1 for j in JOBS}, "run_dir": str(raw), "raw_dir": str(raw),
            "start_timeout_s": 120, "retry_s": 1.0, "reconnect_s": 3.0,
            "clusters": [{"jobs": [job], "dashboard_url": rec["dashboard_url"],
                          "metrics_url": f"http://127.0.0.1:{rec['metrics_port']}/metrics",
                          "ray_address": rec["ray_client_address"], "serve_config": confs[job]}
                         for rec, job in zip(heads, JOBS, strict=True)],
        }
        (tmp_path / "autoscaler.json").write_text(json.dumps(cfg))
        procs.append(subprocess.Popen([sys.executable, "-m", "faro.serving.autoscaler", "--config",
                                       str(tmp_path / "autoscaler.json")], env=env, cwd=PROJECT,
                                      stdout=open(tmp_path / "autoscaler.out", "w"),
                                      stderr=subprocess.STDOUT))
        log = raw / "autoscaler.jsonl"
        deadline = time.monotonic() + 120
        while not any(r["kind"] == "start" for r in _records(log)):
            assert (procs[0].poll() is None
                    and time.monotonic() < deadline), (tmp_path / "autoscaler.out").read_text()
            time.sleep(0.5)
        urls = {job: f"http://127.0.0.1:{rec['http_port']}/{job}"
                for rec, job in zip(heads, JOBS, strict=True)}
        (tmp_path / "job_urls.json").write_text(json.dumps(urls))
        procs.append(subprocess.Popen([sys.executable, "-m", "faro.serving.replayer", "--trace", trace,
                                       "--job-urls", str(tmp_path / "job_urls.json"),
                                       "--unit-time", str(UNIT_TIME), "--seed", "42", "--out", str(raw),
                                       "--timeout-s", "5"], env=env, cwd=PROJECT,
                                      stdout=open(tmp_path / "replayer.out", "w"), stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while sum(r["kind"] == "tick" for r in _records(log)) < 2:
            assert (time.monotonic() < deadline
                    and procs[0].poll() is None), (tmp_path / "autoscaler.out").read_text()
            time.sleep(0.5)
        killed_at = time.time()
        cluster.stop_head(heads[1], grace_s=0.5)  # job-b's head dies mid-run

        assert procs[1].wait(timeout=240) == 0, (tmp_path / "replayer.out").read_text()[-2000:]
        assert procs[0].wait(timeout=120) == 0, (tmp_path / "autoscaler.out").read_text()[-3000:]
        recs = _records(log)
        kinds = [r["kind"] for r in recs]
        assert kinds[-1] == "stop" and "replay_end" in kinds
        lost = [r for r in recs if r["kind"] == "unreachable"]
        assert lost and {r["cluster"] for r in lost} <= {heads[1]["dashboard_url"],
                                                         heads[1]["ray_client_address"]}
        assert all(j == "job-b" for r in lost for j in r["jobs"])
        ticks_after = [r for r in recs if r["kind"] == "tick" and r["epoch"] > killed_at + 1]
        assert len(ticks_after) >= 2  # it kept deciding after the loss
        assert ticks_after[-1]["metrics"]["job-a"]["active_replicas"] >= 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for rec in heads:
            cluster.stop_head(rec, grace_s=1.0)
        assert not [pid for rec in heads for pid in leftover(rec)]
