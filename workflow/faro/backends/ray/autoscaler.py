"""The autoscaler process of the ``ray`` backend, on the wall clock.

    python -m faro.backends.ray.autoscaler --config RUN_DIR/live/autoscaler.json

It drives the shared :class:`faro.control.controller.Controller` with the same
policies as the simulator.  Clock: the controller runs in *trace seconds*,
``now = (wall - t0) * 60 / unit_time`` (t0 = replay start, read from
``raw/replay_start.json``, written by the replayer), and ticks every ``tick_s``
trace seconds, i.e. every ``tick_s * unit_time / 60`` wall seconds: an
experiment compressed in time (unit_time < 60) keeps the policies' intervals
in trace minutes.  Latencies are never scaled (service times are real).

Metrics per job each tick (:class:`JobMetrics`):

* ``active_replicas``: RUNNING replicas in Serve's REST API;
* ``replica_queues``: what each RUNNING replica holds, reported by the replica
  to the run's metrics actor (:mod:`faro.backends.ray.metrics`);
* ``avg_latency_ms``: mean end-to-end latency of the requests finished in the
  last 30 trace seconds (metrics actor; send time from the replayer's header);
* ``head_queue``: Serve's ``ray_serve_deployment_queued_queries`` gauge
  (Prometheus; lags by Serve's push interval);
* ``arrivals_per_min``: arrivals binned by send time into trace minutes counted
  back from now (metrics actor), plus requests Serve rejected with 503
  (Prometheus counter, spread by scrape time).

Actuator: replica counts and admission rates go to Serve as one declarative
config (REST ``PUT /api/serve/applications/``, applied in place);
``is_settling`` is true while a job has fewer RUNNING replicas than its target.
Every decision, every tick's metrics and every change of the RUNNING replica
counts are logged as JSON Lines (``raw/autoscaler.jsonl``; times in wall
seconds since replay start, ``now`` in controller seconds).  SIGTERM/SIGINT end
the loop cleanly; the process also ends on ``raw/replay_end.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from faro.backends.ray import serve_api
from faro.backends.ray.serve_app import app_config, serve_config
from faro.control.controller import Controller, JobMetrics, JobSpec

log = logging.getLogger("faro.autoscaler")


def load_policy(spec: str, params: dict | None, jobs: list[str], quota: int, context: dict | None = None):
    """A policy by built-in name, ``module:Class`` or ``file.py:Class`` (faro.policies.make_policy)."""
    from faro.config import project_root
    from faro.policies import make_policy

    return make_policy(spec, params or {}, jobs=jobs, quota=quota, base_dir=project_root(), context=context)


def policy_context(cfg: dict[str, Any]) -> dict[str, Any]:
    """The run context a policy binds to (forecaster training data, the trace for the oracle)."""
    ctx = dict(cfg.get("policy_context") or {})
    if cfg.get("trace_path"):
        from faro.trace import parse_trace

        ctx["trace_counts"] = parse_trace(cfg["trace_path"], [j["name"] for j in cfg["jobs"]]).counts
    ctx.setdefault("unit_time", float(cfg["unit_time"]))
    return ctx


class ServeActuator:
    """The controller's :class:`~faro.control.controller.Actuator` over Serve's REST API."""

    def __init__(self, cfg: dict[str, Any], replicas: dict[str, int]) -> None:
        self.cfg = cfg
        self.url = cfg["dashboard_url"]
        self.replicas = dict(replicas)
        self.admission = {j: 1.0 for j in replicas}
        self.states: dict[str, dict] = {}
        self.puts = 0

    def config(self) -> dict[str, Any]:
        app = self.cfg.get("app", {})
        apps = [
            app_config(j, self.replicas[j], admission_rate=self.admission[j], model=app.get("model", "emulated"),
                       service=(self.cfg.get("services") or {}).get(j, app.get("service")),
                       seed=int(app.get("seed", 0)))
            for j in self.replicas
        ]
        return serve_config(apps, int(self.cfg["http_port"]))

    def _push(self) -> None:
        serve_api.put_config(self.url, self.config())
        self.puts += 1

    def set_replicas(self, job: str, replicas: int, now: float) -> None:
        self.replicas[job] = int(replicas)
        self._push()
        # Serve's target moves at once in our view; RUNNING catches up
        if job in self.states:
            self.states[job]["target"] = int(replicas)

    def set_admission(self, job: str, rate: float, now: float) -> None:
        self.admission[job] = float(rate)
        self._push()

    def is_settling(self, job: str, now: float) -> bool:
        st = self.states.get(job)
        if st is None:
            return False
        return len(st["running"]) < self.replicas[job]

    def refresh(self) -> dict[str, dict]:
        self.states = serve_api.job_states(serve_api.get_details(self.url))
        return self.states


class _Stop(Exception):
    pass


class Autoscaler:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.run_dir = Path(cfg["run_dir"])
        self.raw = self.run_dir / "raw"
        self.raw.mkdir(parents=True, exist_ok=True)
        self.jobs = [JobSpec(j["name"], float(j["slo_ms"]), float(j["processing_ms"])) for j in cfg["jobs"]]
        self.names = [j.name for j in self.jobs]
        self.unit_time = float(cfg["unit_time"])
        self.scale = 60.0 / self.unit_time  # trace seconds per wall second
        self.tick_s = float(cfg.get("tick_s", 10.0))
        self.window_s = float(cfg.get("latency_window_s", 30.0))
        policy = load_policy(cfg["policy"], cfg.get("policy_params"), self.names, int(cfg["quota"]),
                             context=policy_context(cfg))  # fmt: skip
        ctl = dict(cfg.get("controller") or {})
        initial = cfg.get("initial") or policy.initial_replicas()
        self.actuator = ServeActuator(cfg, {n: int(initial.get(n, 1)) for n in self.names})
        self.controller = Controller(
            policy, self.jobs, int(cfg["quota"]), self.actuator,
            rng=np.random.default_rng([int(cfg.get("seed", 0)), 7]),
            tick_s=self.tick_s, initial=initial, **ctl,
        )
        self.out = open(self.raw / "autoscaler.jsonl", "a", buffering=1)
        self.t0: float | None = None
        self.stop = False
        self.last_running: dict[str, int] = {}
        self.rejected: dict[str, list[tuple[float, float]]] = {n: [] for n in self.names}
        self.metrics_actor = None

    # -- plumbing ------------------------------------------------------------------
    def emit(self, kind: str, **rec: Any) -> None:
        wall = time.time()
        rec = {"kind": kind, "epoch": wall, "wall_s": None if self.t0 is None else wall - self.t0, **rec}
        self.out.write(json.dumps(rec, default=_jsonable) + "\n")

    def connect(self) -> None:
        import ray

        from faro.backends.ray.metrics import ACTOR_NAME, NAMESPACE

        ray.init(address=self.cfg["gcs_address"], logging_level="ERROR", log_to_driver=False, namespace=NAMESPACE)
        self.metrics_actor = ray.get_actor(ACTOR_NAME, namespace=NAMESPACE)

    def wait_for_start(self, timeout_s: float) -> None:
        path = self.raw / "replay_start.json"
        deadline = time.monotonic() + timeout_s
        while not path.exists():
            if self.stop:
                raise _Stop
            if time.monotonic() > deadline:
                raise TimeoutError(f"no replay started within {timeout_s:.0f} s ({path} missing)")
            self.observe_replicas()
            time.sleep(0.5)
        self.t0 = float(json.loads(path.read_text())["t0"])

    def observe_replicas(self) -> None:
        states = self.actuator.refresh()
        for job in self.names:
            n = len(states.get(job, {}).get("running", []))
            if self.last_running.get(job) != n:
                self.last_running[job] = n
                self.emit("replicas", job=job, replicas=n, target=states.get(job, {}).get("target"))

    def metrics(self, now_wall: float) -> dict[str, JobMetrics]:
        import ray

        assert self.t0 is not None
        snap = ray.get(
            self.metrics_actor.snapshot.remote(now_wall, self.t0, self.unit_time, self.window_s / self.scale),
            timeout=10,
        )
        prom = serve_api.serve_prometheus(int(self.cfg["metrics_port"]))
        out = {}
        for job in self.names:
            s = snap.get(job, {})
            st = self.actuator.states.get(job, {"running": []})
            held = s.get("replica_queues", {})
            queues = tuple(int(held.get(r, 0)) for r in st["running"])
            arrivals = np.asarray(s.get("arrivals_per_min", []), dtype=float)
            p = prom.get(job)
            if p is not None:
                # Serve's 503s minus those our replicas answered (admission control) = queue-full rejections
                rej = max(0.0, p["rejected_total"] - float(s.get("admission_drops_total", 0)))
                self.rejected[job].append((now_wall, rej))
                arrivals = arrivals + _spread(self.rejected[job], s.get("bin_edges", []))
            out[job] = JobMetrics(
                active_replicas=len(st["running"]),
                head_queue=int(round(p["head_queue"])) if p else 0,
                replica_queues=queues,
                avg_latency_ms=float(s.get("avg_latency_ms", 0.0)),
                arrivals_per_min=arrivals,
            )
        return out

    # -- the loop ------------------------------------------------------------------
    def run(self) -> int:
        if self.metrics_actor is None:
            self.connect()
        self.emit("start", pid=os.getpid(), policy=self.cfg["policy"], quota=self.cfg["quota"],
                  initial=self.actuator.replicas, tick_wall_s=self.tick_s / self.scale)
        try:
            self.wait_for_start(float(self.cfg.get("start_timeout_s", 900)))
            self.emit("replay_start", t0=self.t0)
            for job, n in self.last_running.items():
                self.emit("replicas", job=job, replicas=n, at_start=True)
            end_file = self.raw / "replay_end.json"
            next_tick = self.controller.next_tick(0.0)
            while not self.stop:
                now_wall = time.time()
                now = (now_wall - self.t0) * self.scale
                if now + 1e-9 >= next_tick:
                    self.observe_replicas()
                    m = self.metrics(now_wall)
                    decisions = self.controller.tick(next_tick, m)
                    self.emit("tick", now=next_tick, lag_s=(now - next_tick) / self.scale,
                              metrics={j: dataclasses.asdict(v) for j, v in m.items()},
                              allocation=dict(self.controller.allocation), free_cpus=self.controller.free_cpus)
                    for d in decisions:
                        self.emit("decision", **dataclasses.asdict(d))
                    next_tick = self.controller.next_tick(next_tick)
                else:
                    self.observe_replicas()
                if end_file.exists():
                    self.emit("replay_end")
                    break
                time.sleep(min(0.5, max(0.02, (next_tick - now) / self.scale)))
        except _Stop:
            pass
        finally:
            self.emit("stop", signal=self.stop, puts=self.actuator.puts)
            self.out.close()
        return 0


def _spread(samples: list[tuple[float, float]], edges: list[float]) -> np.ndarray:
    """Counts per bin of a cumulative counter sampled at (epoch, value), stepwise."""
    if len(edges) < 2 or not samples:
        return np.zeros(max(0, len(edges) - 1))
    t = np.array([s[0] for s in samples])
    v = np.array([s[1] for s in samples])

    def at(x: float) -> float:
        i = np.searchsorted(t, x, side="right") - 1
        return float(v[i]) if i >= 0 else 0.0

    cum = np.array([at(e) for e in edges])
    return np.diff(cum)


def _jsonable(o: Any):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    return str(o)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    a = ap.parse_args(argv)
    cfg = json.loads(Path(a.config).read_text())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    scaler = Autoscaler(cfg)
    scaler.connect()  # before our handlers: ray.init must not replace them

    def on_signal(signum, frame):
        scaler.stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return scaler.run()


if __name__ == "__main__":
    sys.exit(main())
