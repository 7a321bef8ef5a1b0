"""Ray Serve's own autoscaler on the ray backend (``ray_serve_native``): the parameter mapping onto
Serve's ``autoscaling_config``, the refusal on other backends, the deployment config, and the
autoscaler process observing without actuating (local HTTP stand-ins for the dashboard and
Prometheus; no Ray)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from ray_helpers import run_config

from faro.control.controller import JobMetrics
from faro.model.schema import DECISIONS_SCHEMA
from faro.policies.params import ParamError
from faro.policies.production import RayServeDefault, is_native, serve_autoscaling_config
from faro.policies.registry import make_policy
from faro.runspec import PolicySpec
from faro.serving.autoscaler import NATIVE, Autoscaler
from faro.serving.serve_app import app_config
from faro.workflow.config import ConfigError, check_config, default_config, make_run_spec

PROJECT = Path(__file__).resolve().parents[1]
NATIVE_FILE = PROJECT / "config/policies/ray_serve_native.yaml"


# ---------------------------------------------------------------- the mapping


def test_native_is_a_declared_boolean_parameter_with_a_description():
    p = RayServeDefault.PARAMS["native"]
    assert p["type"] == "boolean" and p["default"] is False and "minimum" not in p
    assert "ray backend only" in p["description"]
    assert make_policy("ray_serve_default", {}, jobs=["a"], quota=2).native is False
    assert make_policy("ray_serve_default", {"native": True}, jobs=["a"], quota=2).native is True
    with pytest.raises(ParamError):
        make_policy("ray_serve_default", {"native": "yes"}, jobs=["a"], quota=2)
    spec = yaml.safe_load(NATIVE_FILE.read_text())
    assert spec["class"] == "ray_serve_default" and is_native(spec["params"])
    emulated = yaml.safe_load((PROJECT / "config/policies/ray_serve_default.yaml").read_text())
    assert not is_native(emulated["params"])


def test_autoscaling_config_scales_trace_seconds_to_wall_seconds_by_hand():
    """local_small: unit_time 10 s per trace minute, so 1 trace s = 10/60 wall s; the
    experiment's replica bounds 1..20 narrow the policy's 1..100."""
    policy = make_policy("ray_serve_default", {"native": True}, jobs=["a"], quota=6)
    got = serve_autoscaling_config(policy, initial=1, unit_time=10.0, min_replicas=1, max_replicas=20)
    assert got == {
        "min_replicas": 1, "max_replicas": 20, "initial_replicas": 1,
        "target_ongoing_requests": 2.0,
        "metrics_interval_s": pytest.approx(10.0 / 6.0),  # 10 trace s
        "look_back_period_s": pytest.approx(5.0),  # 30 trace s
        "upscale_delay_s": pytest.approx(5.0),  # 30 trace s
        "downscale_delay_s": pytest.approx(100.0),  # 600 trace s
        "upscaling_factor": 1.0, "downscaling_factor": 1.0,
    }
    # unit_time 60: trace seconds are wall seconds, Serve's own defaults come back
    real = serve_autoscaling_config(policy, initial=3, unit_time=60.0)
    keys = ("look_back_period_s", "upscale_delay_s", "downscale_delay_s", "metrics_interval_s",
            "max_replicas", "initial_replicas")
    assert tuple(real[k] for k in keys) == (30, 30, 600, 10, 100, 3)
    # other parameters pass through; initial within the bounds
    params = {"native": True, "target_ongoing_requests": 1.5, "upscaling_factor": 0.5, "max_replicas": 4}
    p2 = make_policy("ray_serve_default", params, jobs=["a"], quota=6)
    c2 = serve_autoscaling_config(p2, initial=9, unit_time=30.0, max_replicas=20)
    assert (c2["target_ongoing_requests"], c2["upscaling_factor"], c2["max_replicas"], c2["initial_replicas"],
            c2["downscale_delay_s"]) == (1.5, 0.5, 4, 4, 300.0)
    with pytest.raises(ValueError):
        serve_autoscaling_config(policy, initial=1, unit_time=0)


def test_the_mapping_is_valid_for_ray_serves_own_autoscaling_config():
    config = pytest.importorskip("ray.serve.config")
    policy = make_policy("ray_serve_default", {"native": True}, jobs=["a"], quota=6)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ac = config.AutoscalingConfig(**serve_autoscaling_config(policy, initial=1, unit_time=10.0,
                                                                 max_replicas=20))
    assert ac.downscale_delay_s == pytest.approx(100.0) and ac.get_upscaling_factor() == 1.0
    # only metrics_interval_s's deprecation; look-back (5 s) > metrics interval (1.67 s): no FutureWarning
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]


def test_app_config_gets_autoscaling_instead_of_a_fixed_count():
    fixed = app_config("a", 2)["deployments"][0]
    assert fixed["num_replicas"] == 2 and "autoscaling_config" not in fixed
    auto = app_config("a", 2, autoscaling={"min_replicas": 1, "max_replicas": 20, "initial_replicas": 1})
    dep = auto["deployments"][0]
    assert "num_replicas" not in dep and dep["autoscaling_config"]["max_replicas"] == 20
    assert dep["max_ongoing_requests"] == 4 and dep["ray_actor_options"] == {"num_cpus": 1}


def test_deploy_jobs_builds_each_jobs_autoscaling_config_from_the_run(tmp_path):
    from faro.backends.ray.session import native_autoscaling

    spec = run_config(tmp_path, [{"a": 10, "b": 10}], unit_time=10.0, quota=6)
    assert native_autoscaling(spec, {"a": 1, "b": 1}) == {}
    nat = spec.replace(policy=PolicySpec("ray_serve_native", "ray_serve_default", {"native": True}))
    assert nat.native and not spec.native
    got = native_autoscaling(nat, {"a": 1, "b": 2})
    assert set(got) == {"a", "b"} and got["b"]["initial_replicas"] == 2
    assert got["a"]["max_replicas"] == 20 and got["a"]["downscale_delay_s"] == pytest.approx(100.0)


# ---------------------------------------------------------------- refused elsewhere


def _config(tmp_path: Path, backend: str) -> dict:
    exp = yaml.safe_load((PROJECT / "experiments/local_small/experiment.yaml").read_text())
    exp_dir = tmp_path / "exp"
    exp_dir.mkdir(parents=True)
    trace = {"ts": 0, "counts": {j: {"classifier": 1} for j in exp["jobs"]["names"]}}
    (exp_dir / "trace.json").write_text(json.dumps(trace) + "\n")
    exp.update(trace={"file": "trace.json"})
    (exp_dir / "experiment.yaml").write_text(yaml.safe_dump(exp))
    cfg = default_config()
    cfg.update(experiment=str(exp_dir), backend=backend, results=str(tmp_path / "results"),
               data_dir=str(tmp_path / "data"), quotas=[6], policies=["ray_serve_native"])
    return cfg


@pytest.mark.parametrize("backend", ["sim", "k8s"])
def test_a_native_policy_is_refused_off_the_ray_backend_naming_file_and_key(tmp_path, backend):
    with pytest.raises(ConfigError) as e:
        check_config(_config(tmp_path, backend), results_root=False)
    msg = str(e.value)
    assert "config/policies/ray_serve_native.yaml" in msg and "params.native" in msg and backend in msg
    assert "\n" not in msg
    with pytest.raises(ConfigError, match="params.native"):
        make_run_spec(experiment=tmp_path / "exp/experiment.yaml", backend=backend, quota=6,
                      policy="ray_serve_native", seed=42, unit_time=10.0, trace_file="t.json")


def test_a_native_policy_passes_the_check_on_ray_and_the_emulation_everywhere(tmp_path):
    check_config(_config(tmp_path, "ray"), results_root=False)
    run = make_run_spec(experiment=tmp_path / "exp/experiment.yaml", backend="ray", quota=6,
                        policy="ray_serve_native", seed=42, unit_time=10.0, trace_file="t.json")
    assert run.native
    cfg = {**_config(tmp_path / "x", "sim"), "policies": ["ray_serve_default"]}
    check_config(cfg, results_root=False)


# ---------------------------------------------------------------- observe-only autoscaler


class FakeHead:
    """``/api/serve/applications/`` (records PUTs, answers GETs with ``details``) and ``/metrics``
    (Serve's Prometheus text with its autoscaler's gauges)."""

    def __init__(self) -> None:
        self.puts: list[dict] = []
        self.details: dict[str, Any] = {}
        self.metrics = ""
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                return

            def _send(self, body: bytes, ctype: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:  # noqa: N802
                outer.puts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self._send(b"{}", "application/json")

            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/metrics"):
                    self._send(outer.metrics.encode(), "text/plain")
                else:
                    self._send(json.dumps(outer.details).encode(), "application/json")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, target: dict[str, int], running: dict[str, int]) -> None:
        """Serve's state: per job its target and RUNNING replicas (the rest STARTING: pending)."""
        apps = {}
        for j, t in target.items():
            reps = [{"replica_id": f"{j}-r{i}", "state": "RUNNING" if i < running[j] else "STARTING",
                     "pid": i} for i in range(max(t, running[j]))]
            apps[j] = {"status": "RUNNING", "deployments": {"classifier": {"target_num_replicas": t,
                                                                            "replicas": reps}}}
        self.details = {"applications": apps}


class FakeActors:
    """The metrics actor's snapshot (nothing held, no latency) and Ray's available CPUs."""

    def __init__(self, free: float | None) -> None:
        self.free = free

    def snapshot(self, now, t0, minute_s, window_s):
        return {}

    def available_cpus(self):
        return self.free


@pytest.fixture
def head():
    h = FakeHead()
    yield h
    h.server.shutdown()


def _scaler(tmp_path: Path, head: FakeHead, free: float | None = 2.0) -> Autoscaler:
    spec = run_config(tmp_path, [{"a": 10, "b": 10}], unit_time=60.0, quota=6)
    spec = spec.replace(policy=PolicySpec("ray_serve_native", "ray_serve_default", {"native": True}))
    cfg = {"run": spec.to_dict(), "run_dir": str(tmp_path), "dashboard_url": head.url, "gcs_address": None,
           "metrics_port": head.port, "http_port": 1, "initial": {"a": 1, "b": 1}, "app": {}}
    scaler = Autoscaler(cfg)
    scaler.actors = FakeActors(free)  # type: ignore[assignment]
    scaler.connected = True
    return scaler


def _metrics(active: dict[str, int]) -> dict[str, JobMetrics]:
    return {j: JobMetrics(active_replicas=n, head_queue=3, replica_queues=(4,) * n, avg_latency_ms=500.0,
                          arrivals_per_min=np.array([60.0])) for j, n in active.items()}


def test_observe_tick_records_serves_target_and_running_replicas_without_a_put(tmp_path, head):
    scaler = _scaler(tmp_path, head)
    head.serve({"a": 5, "b": 1}, {"a": 3, "b": 1})  # Serve wants 5 for a; 2 wait for CPUs
    head.metrics = ('ray_serve_autoscaling_total_requests{application="a",deployment="classifier"} 9.5\n'
                    'ray_serve_autoscaling_desired_replicas{application="a",deployment="classifier"} 5\n')
    scaler.observe_replicas()
    scaler.prom = {"a": {"head_queue": 0.0, "rejected_total": 0.0, "serve_total_requests": 9.5}}
    changed = scaler.observe_tick(10.0, _metrics({"a": 3, "b": 1}))
    got = [(d.job, d.previous, d.requested, d.applied, d.outcome) for d in changed]
    assert got == [("a", 1, 5, 3, NATIVE)]
    head.serve({"a": 5, "b": 2}, {"a": 4, "b": 1})  # Serve scaled b by itself
    scaler.observe_replicas()
    changed = scaler.observe_tick(20.0, _metrics({"a": 4, "b": 1}))
    assert [(d.job, d.requested) for d in changed] == [("b", 2)]
    assert head.puts == [] and scaler.actuator.puts == 0
    with pytest.raises(RuntimeError, match="observe-only"):
        scaler.actuator.set_replicas("a", 2, 30.0)
    assert head.puts == []
    t = scaler.recorder.table()
    assert t.schema.equals(DECISIONS_SCHEMA)
    d = t.to_pandas()
    assert len(d) == 4 and set(d["outcome"].astype(str)) == {NATIVE}
    a1 = d[(d["job"] == "a") & (d["time_s"] == 10.0)].iloc[0]
    cols = ["replicas", "requested", "applied", "shortfall", "active_replicas"]
    assert tuple(a1[c] for c in cols) == (5, 5, 3, 2, 3)
    assert a1["policy_metric"] == 9.5 and a1["policy_desired"] == pytest.approx(4.75)
    assert str(a1["policy_mode"]) == NATIVE and str(a1["layers"]) == NATIVE and str(a1["source"]) == NATIVE
    assert (a1["free_cpus_before"], a1["free_cpus_after"]) == (2, 2)
    b1 = d[(d["job"] == "b") & (d["time_s"] == 10.0)].iloc[0]
    assert np.isnan(b1["policy_metric"]) and b1["shortfall"] == 0
    scaler.out.close()


def test_free_cpus_fall_back_to_the_quota_minus_running_replicas(tmp_path, head):
    scaler = _scaler(tmp_path, head, free=None)
    head.serve({"a": 4, "b": 1}, {"a": 2, "b": 1})
    scaler.observe_replicas()
    assert scaler.free_cpus() == 6 - 3
    scaler.out.close()


def test_the_observe_only_loop_records_every_tick_and_never_puts(tmp_path, head):
    """The whole loop of a native run (replay start and end signalled by files): ticks, replicas
    and decision records as for an emulated policy, zero PUTs."""
    scaler = _scaler(tmp_path, head)
    head.serve({"a": 1, "b": 1}, {"a": 1, "b": 1})
    raw = tmp_path / "raw"
    (raw / "replay_start.json").write_text(json.dumps({"t0": time.time() - 35.0, "unit_time": 60.0}))

    def scale_then_end() -> None:
        time.sleep(0.3)
        head.serve({"a": 3, "b": 1}, {"a": 2, "b": 1})
        time.sleep(0.7)
        (raw / "replay_end.json").write_text("{}")

    threading.Thread(target=scale_then_end, daemon=True).start()
    assert scaler.run() == 0
    assert head.puts == []
    log = [json.loads(line) for line in (raw / "autoscaler.jsonl").read_text().splitlines()]
    ticks = [r for r in log if r["kind"] == "tick"]
    assert [r["now"] for r in ticks[:3]] == [10.0, 20.0, 30.0]
    stop = [r for r in log if r["kind"] == "stop"][0]
    assert stop["puts"] == 0 and stop["decision_rows"] == 2 * len(ticks)
    reps = [(r["job"], r["replicas"]) for r in log if r["kind"] == "replicas"]
    assert ("a", 2) in reps, "the RUNNING count Serve reached by itself is recorded (replicas.parquet)"
    dec = pq.read_table(raw / "decisions.parquet").to_pandas()
    assert len(dec) == 2 * len(ticks) and set(dec["outcome"].astype(str)) == {NATIVE}
