"""The ray backend's autoscaler in its k8s form (one Ray cluster per job): the actuator talks to
each job's own dashboard and re-PUTs the deploy stage's Serve config with only the replica count
and admission rate changed; replay signals come from the replayer's record server.  Local HTTP
stand-ins for the dashboards; no Ray, no cluster."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from ray_helpers import run_config

from faro.backends.k8s import manifests as mf
from faro.backends.k8s.config import Cell, K8sSettings
from faro.serving.autoscaler import Autoscaler, ServeActuator, clusters_of, previous_run


class Dashboard:
    """``/api/serve/applications/`` of one Ray cluster: records PUTs, answers GETs with ``details``."""

    def __init__(self, details: dict[str, Any]) -> None:
        self.puts: list[dict] = []
        self.details = details
        self.fail = 0  # answer the next ``fail`` requests with 503 (a head restarting behind its Service)
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                return

            def _send(self, obj: Any, code: int = 200) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:  # noqa: N802
                if outer.fail > 0:
                    outer.fail -= 1
                    self._send({"error": "unavailable"}, 503)
                    return
                outer.puts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self._send({})

            def do_GET(self) -> None:  # noqa: N802
                if outer.fail > 0:
                    outer.fail -= 1
                    self._send({"error": "unavailable"}, 503)
                    return
                if self.path.startswith("/files/"):
                    name = self.path[len("/files/"):]
                    if name in outer.details:
                        self._send(outer.details[name])
                    else:
                        self._send({"error": "no such file"}, 404)
                else:
                    self._send(outer.details)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _details(job: str, running: int) -> dict[str, Any]:
    reps = [{"replica_id": f"{job}-r{i}", "state": "RUNNING", "pid": i} for i in range(running)]
    return {"applications": {job: {"status": "RUNNING", "deployments": {
        "classifier": {"target_num_replicas": running, "replicas": reps}}}}}


@pytest.fixture
def two_clusters():
    ds = [Dashboard(_details("a", 2)), Dashboard(_details("b", 1))]
    yield ds
    for d in ds:
        d.server.shutdown()


def _cfg(ds: list[Dashboard]) -> dict[str, Any]:
    cell = Cell(quota=8, policy="aiad", seed=3, jobs=("a", "b"), initial={"a": 2, "b": 1})
    s = K8sSettings()
    return {"clusters": [{"jobs": [j], "dashboard_url": d.url, "metrics_url": d.url + "/metrics",
                          "ray_address": "ray://unused:10001", "serve_config": mf.serve_config(cell, s, j)}
                         for j, d in zip("ab", ds, strict=True)]}


def test_actuator_puts_each_jobs_config_to_its_own_cluster(two_clusters):
    da, db = two_clusters
    cfg = _cfg(two_clusters)
    act = ServeActuator(cfg, {"a": 2, "b": 1})
    act.set_replicas("a", 3, now=10.0)
    assert len(da.puts) == 1 and db.puts == []  # only a's cluster
    expect = json.loads(json.dumps(cfg["clusters"][0]["serve_config"]))
    expect["applications"][0]["deployments"][0]["num_replicas"] = 3
    assert da.puts[0] == expect  # nothing else changed: Serve updates in place, no redeploy
    act.set_admission("b", 0.25, now=11.0)
    assert db.puts[0]["applications"][0]["deployments"][0]["user_config"] == {"admission_rate": 0.25}
    assert db.puts[0]["applications"][0]["deployments"][0]["num_replicas"] == 1
    # template kept
    assert cfg["clusters"][0]["serve_config"]["applications"][0]["deployments"][0]["num_replicas"] == 2
    states = act.refresh()
    assert {j: len(s["running"]) for j, s in states.items()} == {"a": 2, "b": 1}
    assert act.is_settling("a", 12.0) is True and act.is_settling("b", 12.0) is False  # a: 2 running < 3


def test_single_cluster_config_of_the_ray_backend_is_unchanged():
    cfg = {"dashboard_url": "http://127.0.0.1:1", "gcs_address": "g:1",
           "metrics_port": 9, "http_port": 8123, "app": {"model": "emulated", "service": {}, "seed": 0}}
    (c,) = clusters_of(cfg, ["a", "b"])
    assert c["jobs"] == ["a", "b"] and c["metrics_url"] == "http://127.0.0.1:9/metrics"
    conf = ServeActuator(cfg, {"a": 1, "b": 4}).config()
    assert [a["name"] for a in conf["applications"]] == ["a", "b"]
    assert conf["http_options"] == {"host": "127.0.0.1", "port": 8123}
    assert conf["applications"][1]["deployments"][0]["num_replicas"] == 4


def test_replay_signals_come_from_the_replayer_record_server(tmp_path):
    rec = Dashboard({"replay_start.json": {"t0": 1234.5, "unit_time": 10.0}})
    try:
        a = Autoscaler.__new__(Autoscaler)  # only the signal lookup, no policy or Ray
        a.cfg, a.raw = {"replay_signals_url": rec.url + "/files"}, tmp_path
        assert a.replay_signal("replay_start.json") == {"t0": 1234.5, "unit_time": 10.0}
        assert a.replay_signal("replay_end.json") is None  # 404 while the replay runs
        a.cfg = {}
        assert a.replay_signal("replay_start.json") is None
        (tmp_path / "replay_start.json").write_text('{"t0": 1.0}')
        assert a.replay_signal("replay_start.json") == {"t0": 1.0}
    finally:
        rec.server.shutdown()


def test_an_unreachable_cluster_keeps_its_replicas_and_gets_the_target_later(two_clusters):
    """Issue 13: one timeout of a dashboard killed the in-pod autoscaler (and the cell). Transient
    failures are retried with backoff; a cluster still unreachable keeps its last replica count
    for the decision (logged) and gets the new target once it answers again; the other is unaffected."""
    da, db = two_clusters
    events: list[tuple[str, dict]] = []
    cfg = {**_cfg(two_clusters), "retry_s": 0.3}
    act = ServeActuator(cfg, {"a": 2, "b": 1}, emit=lambda kind, **rec: events.append((kind, rec)))
    act.refresh()
    da.fail = 1  # one 503: retried within the budget
    act.set_replicas("a", 3, now=1.0)
    assert [p["applications"][0]["deployments"][0]["num_replicas"] for p in da.puts] == [3] and events == []
    da.fail = 10**6  # down for longer than the budget
    act.set_replicas("a", 4, now=2.0)
    act.set_replicas("b", 2, now=2.0)
    states = act.refresh()
    assert [k for k, _ in events] == ["unreachable", "unreachable"]
    assert events[0][1]["op"] == "put" and events[0][1]["kept_replicas"] == {"a": 2}
    assert events[0][1]["target"] == {"a": 4} and events[1][1]["op"] == "get"
    assert len(states["a"]["running"]) == 2  # a's last known state kept
    assert db.puts[-1]["applications"][0]["deployments"][0]["num_replicas"] == 2
    da.fail = 0
    act.refresh()  # answers again: the missed target goes out
    assert da.puts[-1]["applications"][0]["deployments"][0]["num_replicas"] == 4 and act.unapplied == set()


def test_a_restarted_autoscaler_resumes_from_its_decision_log(two_clusters, tmp_path):
    """Issue 13: a restarted autoscaler started the run's control afresh; it now resumes from the
    last logged allocation and its start record says it is a restart."""
    log = tmp_path / "autoscaler.jsonl"
    lines = [{"kind": "start", "initial": {"a": 2, "b": 1}}, {"kind": "replay_start", "t0": 1.0},
             {"kind": "tick", "now": 10.0, "allocation": {"a": 3, "b": 1}},
             {"kind": "tick", "now": 20.0, "allocation": {"a": 5, "b": 2}}]
    log.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"kind": "ti')  # cut by the crash
    assert previous_run(log) == {"starts": 1, "allocation": {"a": 5, "b": 2}}
    assert previous_run(tmp_path / "none.jsonl") == {"starts": 0, "allocation": None}
    spec = run_config(tmp_path, [{"a": 10, "b": 10}], unit_time=60.0, quota=8, backend="k8s")
    cfg = {**_cfg(two_clusters), "run": spec.to_dict(), "run_dir": str(tmp_path), "raw_dir": str(tmp_path),
           "initial": {"a": 2, "b": 1}}
    scaler = Autoscaler(cfg)
    assert scaler.actuator.replicas == {"a": 5, "b": 2}
    assert scaler.previous["starts"] == 1
    scaler.out.close()
