"""Faults on a live ray session: killed replica, killed autoscaler, dead endpoint, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest.importorskip("ray")
pytest.importorskip("aiohttp")

from ray_helpers import leftover, parse_to_parquet, run_config  # noqa: E402

from faro.backends.ray import cluster  # noqa: E402
from faro.backends.ray import session as stages  # noqa: E402
from faro.model.trace import Trace  # noqa: E402
from faro.serving import serve_api  # noqa: E402
from faro.serving.replayer import ReplayAborted, run_replay  # noqa: E402
from faro.workflow.stage_runner import run_stage  # noqa: E402

pytestmark = pytest.mark.ray
WORKFLOW = str(Path(stages.__file__).resolve().parents[3])


def _setup(run: Path, cfg) -> dict:
    """The session's first four stages through the workflow's stage runner (records and all)."""
    recs = {s: run_stage(s, cfg, run) for s in ("quota", "clusters", "jobs", "autoscaler")}
    return recs["clusters"]["state"]["head"]


def _later(delay: float, fn) -> threading.Thread:
    t = threading.Thread(target=lambda: (time.sleep(delay), fn()), daemon=True)
    t.start()
    return t


def test_replica_killed_mid_replay(tmp_path):
    minutes = [{"a": 60}, {"a": 60}, {"a": 60}]  # 12 req/s on one replica: it always holds 4
    cfg = run_config(tmp_path, minutes, unit_time=5.0, quota=3)
    run = tmp_path / "run"
    head = _setup(run, cfg)
    killed = {}
    try:
        def kill_replica():
            st = serve_api.job_states(serve_api.get_details(head["dashboard_url"]))["a"]
            rid, pid = next(iter(st["pids"].items()))
            killed.update(rid=rid, pid=pid)
            os.kill(pid, signal.SIGKILL)

        _later(4.0, kill_replica)
        stages.replay(run, cfg)
        st = serve_api.job_states(serve_api.get_details(head["dashboard_url"]))["a"]
        assert killed["rid"] not in st["running"] and len(st["running"]) >= 1  # Serve replaced it
        stages.fetch_logs(run, cfg)
        parse_to_parquet(run, cfg)
    finally:
        stages.teardown(run)
    assert leftover(head) == []
    req = pd.read_parquet(run / "requests.parquet")
    assert len(req) == 180  # every request recorded
    failed = req[~req["succeeded"]]
    assert len(failed) >= 1 and (failed["status"] != 200).all() and failed["latency_ms"].isna().all()


def test_autoscaler_killed_fails_replay_and_tears_down(tmp_path):
    cfg = run_config(tmp_path, [{"a": 10, "b": 10}] * 4, unit_time=5.0, quota=3)
    run = tmp_path / "run"
    head = _setup(run, cfg)
    pid = json.loads((run / "live" / "autoscaler.json").read_text())["pid"]
    _later(3.0, lambda: os.kill(pid, signal.SIGKILL))
    with pytest.raises(ReplayAborted, match="autoscaler .* died"):
        run_stage("replay", cfg, run)
    # the stage runner tore the failed stage's session down
    assert leftover(head) == []
    assert not (run / "live" / "ray_head.json").exists() and not (run / "live" / "autoscaler.json").exists()
    assert not Path(cfg.backend_options["state_dir"], f"{head['token']}.json").exists()
    rows = (run / "raw" / "requests.csv").read_text().splitlines()
    assert 1 < len(rows) < 1 + 80  # partial records kept
    # a stage relying on the session now says it is gone
    with pytest.raises(stages.SessionGone, match="session is gone"):
        stages.replay(run, cfg)


def test_replayer_dead_endpoint_keeps_partial_records(tmp_path):
    port = cluster.free_ports(1)[0]  # nothing listens there
    out = tmp_path / "req.csv"
    with pytest.raises(ReplayAborted, match="consecutive connection errors"):
        run_replay(f"http://127.0.0.1:{port}", Trace(("a",), np.array([[600]])), unit_time=10.0, seed=1,
                   records=out, max_conn_errors=25, progress=False)
    df = pd.read_csv(out)
    assert 25 <= len(df) < 600
    assert (df["status"] == 0).all() and df["error"].notna().all()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_signal_during_replay_tears_down(tmp_path, sig):
    cfg = run_config(tmp_path, [{"a": 20}] * 6, unit_time=5.0, quota=2)
    run = tmp_path / "run"
    head = _setup(run, cfg)
    asc = json.loads((run / "live" / "autoscaler.json").read_text())["pid"]
    cpath = cfg.write_json(tmp_path / "run.json")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([WORKFLOW, str(Path(__file__).parent)]))
    try:
        # a shell that runs this suite in the background ignores SIGINT, and children inherit
        # that: give the stage the default disposition, as a terminal's foreground job has
        p = subprocess.Popen([sys.executable, "-m", "faro.workflow.stage_runner", "replay", "--run-dir",
                              str(run), "--run-spec", str(cpath)], env=env, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        # signal once the replay is under way (records written), not after a fixed delay: a
        # busy machine may still be importing at any fixed time
        records = run / "raw" / "requests.csv"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            if records.is_file() and len(records.read_text().splitlines()) > 1:
                break
            time.sleep(0.2)
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
    finally:
        stages.teardown(run)  # no-op if the stage runner tore down (it must have)
    assert p.returncode != 0
    assert ("KeyboardInterrupt" if sig == signal.SIGINT else "Terminated: signal 15") in err, err[-2000:]
    assert "tearing the session down" in err
    assert leftover(head) == []
    assert (not Path(f"/proc/{asc}").exists()
            or "Z" in Path(f"/proc/{asc}/stat").read_text().rsplit(")", 1)[-1][:3])
    assert len((run / "raw" / "requests.csv").read_text().splitlines()) > 1
