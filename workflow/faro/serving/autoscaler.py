"""The autoscaler process of the ``ray`` backend, on the wall clock.

    python -m faro.serving.autoscaler --config RUN_DIR/live/autoscaler.json

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
  to the run's metrics actor (:mod:`faro.serving.metrics`);
* ``avg_latency_ms``: mean end-to-end latency of the requests finished in the
  last 30 trace seconds (metrics actor; send time from the replayer's header);
* ``head_queue``: Serve's ``ray_serve_deployment_queued_queries`` gauge
  (Prometheus; lags by Serve's push interval);
* ``arrivals_per_min``: arrivals binned by send time into trace minutes counted
  back from now (metrics actor), plus requests Serve rejected with 503
  (Prometheus counter, spread by scrape time);
* ``busy_s``: the job's cumulative busy (service) seconds, summed over the
  counters its replicas report (metrics actor).

Actuator: replica counts and admission rates go to Serve as one declarative
config (REST ``PUT /api/serve/applications/``, applied in place);
``is_settling`` is true while a job has fewer RUNNING replicas than its target.
Every decision, every tick's metrics and every change of the RUNNING replica
counts are logged as JSON Lines (``raw/autoscaler.jsonl``; times in wall
seconds since replay start, ``now`` in controller seconds); the decision
records (:mod:`faro.control.records`, the same schema as the simulator's) are
rewritten atomically to ``raw/decisions.parquet`` every ``RECORDS_EVERY`` ticks
and at the end.  SIGTERM/SIGINT end
the loop cleanly; the process also ends on ``raw/replay_end.json``.

Native (observe-only) mode: when the run's policy is Ray Serve's own autoscaler
(``native: true``, :attr:`faro.runspec.RunSpec.native`), the deploy stage gave every
deployment Serve's ``autoscaling_config`` and Serve scales it by itself.  The process then never
PUTs a config (that would replace the autoscaling config by a fixed count; the actuator refuses),
and the policy's emulation does not run; it keeps recording every tick's metrics, every change
of the RUNNING replica counts (``replicas``) and one decision row per job and tick
(:meth:`Autoscaler.observe_tick`): ``replicas`` and ``requested`` = Serve's
``target_num_replicas``, ``applied`` = its RUNNING replicas (``shortfall`` = replicas pending
for lack of CPUs or still starting), ``outcome`` ``native``, ``policy_metric`` = Serve's own
look-back total of ongoing requests (its ``serve_autoscaling_total_requests`` gauge, lagging
by the metrics export), ``policy_desired`` = that / ``target_ongoing_requests``; free CPUs
from Ray's available logical CPUs.  ``decision`` log records are written when a target
changes.

Config: ``run`` is the run's :class:`~faro.runspec.RunSpec` (as a dict): jobs, policy,
quota, seed, time scale, trace, controller settings all come from it, nothing else; the
other keys say where this session's endpoints are and what it deployed (``initial``, ``app``).

Clusters: the ``ray`` backend runs ONE Ray cluster holding every job's
application (config keys ``dashboard_url``, ``gcs_address``, ``metrics_port``,
``http_port``).  The ``k8s`` backend runs one KubeRay cluster per job; its
config lists them under ``clusters`` (each: ``jobs``, ``dashboard_url``,
``metrics_url``, ``ray_address`` (Ray Client, ``ray://HEAD:10001``) and the
``serve_config`` its deploy stage PUT, which the actuator re-PUTs with new
replica counts and admission rates so that nothing else changes).  Each cluster
has its own metrics actor, reached through its own Ray Client connection.
Optional ``raw_dir`` (default ``run_dir/raw``) is where the decision log goes,
and ``replay_signals_url`` replaces the local ``replay_start.json`` /
``replay_end.json`` files by the replayer pod's record server (k8s).

Transient failures (k8s: a head restarting, a dashboard timing out, a Ray Client connection
reset) do not end the process: every dashboard call is retried with backoff (``tenacity``) for
``retry_s`` wall seconds (default: one tick); a cluster still unreachable after that keeps its
last replica count for the decision (an ``unreachable`` record; the new target is pushed again
once its dashboard answers), its jobs keep their last metrics, and a lost Ray Client connection
is re-opened on a later tick.  A restarted process (the same records folder) resumes: it reads
its own decision log, starts from the last logged allocation and says so (``start`` record with
``restart``, ``resumed_allocation``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tenacity

from faro.control.controller import Controller, JobMetrics
from faro.control.records import DecisionRecorder
from faro.control.types import Action, Decision, Snapshot
from faro.policies.explain import explain_layer, instrument
from faro.serving import serve_api
from faro.serving.serve_app import app_config, serve_config

log = logging.getLogger("faro.autoscaler")
#: decision records file in the raw folder, and how often (controller ticks) it is rewritten
RECORDS = "decisions.parquet"
RECORDS_EVERY = 6
#: decision records' source and outcome of a native policy's rows (Serve decided, we observed)
NATIVE = "native"


def clusters_of(cfg: dict[str, Any], jobs: list[str]) -> list[dict[str, Any]]:
    """The Ray clusters this autoscaler drives: ``cfg["clusters"]`` (k8s: one per job), or the
    ``ray`` backend's single cluster holding every job, from the top-level keys."""
    if cfg.get("clusters"):
        return [dict(c) for c in cfg["clusters"]]
    return [{"jobs": list(jobs), "dashboard_url": cfg["dashboard_url"],
             "gcs_address": cfg.get("gcs_address"), "http_port": cfg["http_port"],
             "metrics_url": f"http://127.0.0.1:{cfg['metrics_port']}/metrics"}]


def transient(e: BaseException) -> bool:
    """A dashboard / connection failure worth retrying: 5xx, 429, timeouts, refused or reset connections."""
    if isinstance(e, urllib.error.HTTPError):
        return e.code >= 500 or e.code == 429
    return isinstance(e, (urllib.error.URLError, ConnectionError, TimeoutError, OSError))


def retrying(budget_s: float, max_backoff_s: float = 2.0) -> tenacity.Retrying:
    """Retries of one dashboard call: transient failures, capped backoff with jitter, ``budget_s`` in all."""
    return tenacity.Retrying(retry=tenacity.retry_if_exception(transient),
                             stop=tenacity.stop_after_delay(budget_s),
                             wait=tenacity.wait_exponential_jitter(multiplier=0.2, max=max_backoff_s,
                                                                   jitter=0.2),
                             reraise=True)


def with_replicas(template: dict[str, Any], replicas: dict[str, int],
                  admission: dict[str, float]) -> dict[str, Any]:
    """A deploy stage's Serve config with new replica counts and admission rates (nothing else changes,
    so Serve updates the applications in place instead of redeploying them)."""
    conf = copy.deepcopy(template)
    for app in conf.get("applications") or []:
        name = app["name"]
        if name in replicas:
            for dep in app.get("deployments") or []:
                dep["num_replicas"] = int(replicas[name])
                dep.setdefault("user_config", {})["admission_rate"] = float(admission.get(name, 1.0))
    return conf


class ServeActuator:
    """The controller's :class:`~faro.control.controller.Actuator` over Serve's REST API."""

    def __init__(self, cfg: dict[str, Any], replicas: dict[str, int],
                 emit: Callable[..., None] | None = None,
                 services: dict[str, dict[str, float]] | None = None, observe: bool = False) -> None:
        self.cfg = cfg
        #: observe only (native autoscaling): Serve owns the replica counts, nothing is PUT
        self.observe = bool(observe)
        self.clusters = clusters_of(cfg, list(replicas))
        #: each job's service-time model (the emulated app's), from the run spec
        self.services = dict(services or {})
        self.cluster_of = {j: c for c in self.clusters for j in c["jobs"]}
        self.replicas = dict(replicas)
        self.admission = {j: 1.0 for j in replicas}
        self.states: dict[str, dict] = {}
        self.puts = 0
        #: wall seconds each dashboard call is retried before its cluster counts as unreachable
        self.retry_s = float(cfg.get("retry_s", 5.0))
        self.emit = emit or (lambda kind, **rec: None)
        #: jobs whose latest target did not reach their (unreachable) cluster yet
        self.unapplied: set[str] = set()
        self.unreachable = 0

    def config(self, cluster: dict[str, Any] | None = None) -> dict[str, Any]:
        """The declarative Serve config of one cluster (default: the first, the ray backend's only one)."""
        c = cluster or self.clusters[0]
        if c.get("serve_config"):
            return with_replicas(c["serve_config"], self.replicas, self.admission)
        app = self.cfg.get("app", {})
        apps = [
            app_config(j, self.replicas[j], admission_rate=self.admission[j],
                       model=app.get("model", "emulated"), service=self.services.get(j, app.get("service")),
                       seed=int(app.get("seed", 0)))
            for j in c["jobs"] if j in self.replicas
        ]
        return serve_config(apps, int(c["http_port"]))

    def _push(self, job: str) -> None:
        if self.observe:
            raise RuntimeError(f"observe-only actuator: Serve's own autoscaler owns {job!r}'s replicas; "
                               f"a PUT would replace its autoscaling_config")
        c = self.cluster_of[job]
        try:
            retrying(self.retry_s)(serve_api.put_config, c["dashboard_url"], self.config(c))
        except Exception as e:
            if not transient(e):
                raise
            # the cluster keeps its last replica count; the target goes out once it answers again
            self.unapplied.update(c["jobs"])
            self.unreachable += 1
            running = {j: len(self.states.get(j, {}).get("running", [])) for j in c["jobs"]}
            log.warning("cluster %s unreachable for a PUT (%s); it keeps %s", c["dashboard_url"], e, running)
            self.emit("unreachable", op="put", cluster=c["dashboard_url"], jobs=list(c["jobs"]),
                      error=f"{type(e).__name__}: {e}"[:300], kept_replicas=running,
                      target={j: self.replicas[j] for j in c["jobs"]})
            return
        self.unapplied.difference_update(c["jobs"])
        self.puts += 1

    def set_replicas(self, job: str, replicas: int, now: float) -> None:
        self.replicas[job] = int(replicas)
        self._push(job)
        # Serve's target moves at once in our view; RUNNING catches up
        if job in self.states:
            self.states[job]["target"] = int(replicas)

    def set_admission(self, job: str, rate: float, now: float) -> None:
        self.admission[job] = float(rate)
        self._push(job)

    def is_settling(self, job: str, now: float) -> bool:
        st = self.states.get(job)
        if st is None:
            return False
        return len(st["running"]) < self.replicas[job]

    def refresh(self) -> dict[str, dict]:
        """Serve's view of every job; an unreachable cluster's jobs keep their last known state."""
        states: dict[str, dict] = dict(self.states)
        for c in self.clusters:
            try:
                details = retrying(self.retry_s)(serve_api.get_details, c["dashboard_url"])
            except Exception as e:
                if not transient(e):
                    raise
                self.unreachable += 1
                log.warning("cluster %s unreachable for a GET (%s); keeping its last state",
                            c["dashboard_url"], e)
                self.emit("unreachable", op="get", cluster=c["dashboard_url"], jobs=list(c["jobs"]),
                          error=f"{type(e).__name__}: {e}"[:300])
                continue
            states.update(serve_api.job_states(details))
            if self.unapplied & set(c["jobs"]):  # it answers again: send the targets it missed
                self._push(next(j for j in c["jobs"] if j in self.unapplied))
        self.states = states
        return self.states


class MetricsActors:
    """The run's metrics actor in every Ray cluster: the ray backend's one (a driver connection to
    ``gcs_address``; created by its deploy stage), or one per k8s cluster (a Ray Client connection
    each, ``allow_multiple``; created here if missing, detached, so replicas find it by name)."""

    def __init__(self, cfg: dict[str, Any], jobs: list[str], emit: Callable[..., None] | None = None) -> None:
        self.multi = bool(cfg.get("clusters"))
        self.clusters = clusters_of(cfg, jobs)
        self.handles: list[tuple[Any, Any]] = []  # (client context or None, actor handle)
        self.emit = emit or (lambda kind, **rec: None)
        #: k8s: per cluster, (context, actor) or None while its connection is lost; last snapshot
        self.conn: list[tuple[Any, Any] | None] = []
        self.last: list[dict[str, dict]] = []
        self.retry_at: list[float] = []
        self.reconnect_s = float(cfg.get("reconnect_s", 10.0))
        self.connect_timeout_s = float(cfg.get("connect_timeout_s", 300.0))
        #: how long a Ray Client call waits for a lost connection to come back (Ray's default, 30 s,
        #: would stall every tick while a head is gone)
        self.client_grace_s = int(cfg.get("client_reconnect_grace_s", 5))

    def connect(self) -> None:
        import ray

        from faro.serving.metrics import ACTOR_NAME, NAMESPACE

        if not self.multi:
            ray.init(address=self.clusters[0]["gcs_address"], logging_level="ERROR", log_to_driver=False,
                     namespace=NAMESPACE)
            self.handles = [(None, ray.get_actor(ACTOR_NAME, namespace=NAMESPACE))]
            return
        os.environ.setdefault("RAY_CLIENT_RECONNECT_GRACE_PERIOD", str(self.client_grace_s))
        for i in range(len(self.clusters)):  # a head may still be starting: retry the connection
            got = tenacity.Retrying(stop=tenacity.stop_after_delay(self.connect_timeout_s),
                                    wait=tenacity.wait_exponential_jitter(multiplier=0.5, max=10.0),
                                    reraise=True)(self._connect_one, i)
            self.handles.append(got)
        self.conn = list(self.handles)
        self.last = [{} for _ in self.clusters]
        self.retry_at = [0.0 for _ in self.clusters]

    def _connect_one(self, i: int) -> tuple[Any, Any]:
        """Ray Client connection to cluster ``i`` and its metrics actor (created if missing)."""
        import ray

        from faro.serving.metrics import NAMESPACE, get_or_create_metrics_actor

        ctx = ray.init(address=self.clusters[i]["ray_address"], allow_multiple=True, namespace=NAMESPACE)
        with ctx:
            actor = get_or_create_metrics_actor(on_head=True)
            ray.get(actor.ping.remote(), timeout=60)
        return ctx, actor

    def _snapshot_multi(self, now: float, t0: float, minute_s: float, window_s: float) -> dict[str, dict]:
        """Per cluster: its actor's snapshot, or (connection lost) its last one, reconnecting later."""
        import ray

        out: dict[str, dict] = {}
        for i, c in enumerate(self.clusters):
            if self.conn[i] is None and time.monotonic() >= self.retry_at[i]:
                self.retry_at[i] = time.monotonic() + self.reconnect_s
                if not serve_api.answers(c["dashboard_url"]):  # its head is still gone: don't block on it
                    out.update(self.last[i])
                    continue
                try:
                    self.conn[i] = self._connect_one(i)
                    self.emit("reconnected", cluster=c.get("ray_address"), jobs=list(c["jobs"]))
                except Exception as e:  # noqa: BLE001 - any Ray Client failure: try again later
                    log.warning("cluster %s: Ray Client reconnect failed: %s", c.get("ray_address"), e)
            if self.conn[i] is not None:
                ctx, actor = self.conn[i]
                try:
                    with ctx:
                        self.last[i] = ray.get(actor.snapshot.remote(now, t0, minute_s, window_s), timeout=10)
                except Exception as e:  # noqa: BLE001 - a lost head / connection: keep the last metrics
                    self.conn[i] = None
                    self.retry_at[i] = time.monotonic() + self.reconnect_s
                    with contextlib.suppress(Exception):
                        ctx.disconnect()
                    log.warning("cluster %s: metrics actor unreachable: %s", c.get("ray_address"), e)
                    self.emit("unreachable", op="metrics", cluster=c.get("ray_address"), jobs=list(c["jobs"]),
                              error=f"{type(e).__name__}: {e}"[:300])
            out.update(self.last[i])
        return out

    def available_cpus(self) -> float | None:
        """Ray's available logical CPUs (the ray backend's one cluster); None when unknown (k8s)."""
        if self.multi or not self.handles:
            return None
        import ray

        try:
            return float(ray.available_resources().get("CPU", 0.0))
        except Exception:  # noqa: BLE001 - a busy GCS: unknown this tick
            return None

    def snapshot(self, now: float, t0: float, minute_s: float, window_s: float) -> dict[str, dict]:
        import ray

        if self.multi:
            return self._snapshot_multi(now, t0, minute_s, window_s)
        out: dict[str, dict] = {}
        for ctx, actor in self.handles:
            with ctx if ctx is not None else contextlib.nullcontext():
                out.update(ray.get(actor.snapshot.remote(now, t0, minute_s, window_s), timeout=10))
        return out


class _Stop(Exception):
    pass


class Autoscaler:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.run_dir = Path(cfg["run_dir"])
        self.raw = Path(cfg["raw_dir"]) if cfg.get("raw_dir") else self.run_dir / "raw"
        self.raw.mkdir(parents=True, exist_ok=True)
        from faro.model.trace import parse_trace
        from faro.runspec import RunSpec

        self.spec = run = RunSpec.from_dict(cfg["run"])
        self.jobs = run.job_specs()
        self.names = list(run.jobs)
        self.unit_time = run.unit_time
        self.scale = 60.0 / self.unit_time  # trace seconds per wall second
        self.tick_s = float(run.exp.controller.tick_s)
        self.window_s = float(run.exp.controller.latency_window_s)
        # the oracle forecaster's truth: the replayed trace's counts
        policy = run.build_policy(parse_trace(run.trace_file, run.jobs).counts)
        initial = cfg.get("initial") or policy.initial_replicas()
        self.previous = previous_run(self.raw / "autoscaler.jsonl")
        # a restart: go on from where the last process left (native: Serve kept its own targets)
        if self.previous["allocation"] and not run.native:
            initial = {**initial, **self.previous["allocation"]}
        #: Serve's own autoscaler scales the deployments: observe and record only
        self.native = run.native
        self.actuator = ServeActuator(cfg, {n: int(initial.get(n, 1)) for n in self.names}, emit=self.emit,
                                      services=run.services(), observe=self.native)
        #: the decision records, flushed atomically to raw/decisions.parquet every few ticks
        explain = explain_layer if self.native else instrument(policy)
        self.recorder = DecisionRecorder(run.policy.name, explain)
        self.observer = NativeServe(float(getattr(policy, "target_ongoing_requests", 1.0) or 1.0))
        self.overhead_cpus = int(run.exp.cluster.overhead_cpus)
        #: the latest Prometheus reading per job (native: Serve's own autoscaling metric)
        self.prom: dict[str, dict[str, float]] = {}
        self.records_every = int(cfg.get("records_every_ticks", RECORDS_EVERY))
        self.controller = Controller(
            policy, self.jobs, run.quota, self.actuator,
            rng=np.random.default_rng([run.seed, 7]),
            tick_s=self.tick_s, initial=initial, recorder=self.recorder, **run.controller_options(),
        )
        self.out = open(self.raw / "autoscaler.jsonl", "a", buffering=1)
        self.t0: float | None = None
        self.stop = False
        self.last_running: dict[str, int] = {}
        self.rejected: dict[str, list[tuple[float, float]]] = {n: [] for n in self.names}
        self.actors = MetricsActors(cfg, self.names, emit=self.emit)
        self.connected = False
        self.max_tick_errors = int(cfg.get("max_tick_errors", 30))

    # -- plumbing ------------------------------------------------------------------
    def emit(self, kind: str, **rec: Any) -> None:
        wall = time.time()
        rec = {"kind": kind, "epoch": wall, "wall_s": None if self.t0 is None else wall - self.t0, **rec}
        self.out.write(json.dumps(rec, default=_jsonable) + "\n")

    def connect(self) -> None:
        self.actors.connect()
        self.connected = True

    def replay_signal(self, name: str) -> dict | None:
        """``replay_start.json`` / ``replay_end.json`` of the replayer: a local file in ``raw``, or
        (``replay_signals_url``) a file of the replayer pod's record server; None while absent."""
        url = self.cfg.get("replay_signals_url")
        try:
            if url:
                with urllib.request.urlopen(f"{url.rstrip('/')}/{name}", timeout=3) as r:
                    return json.load(r)
            path = self.raw / name
            return json.loads(path.read_text()) if path.exists() else None
        except (OSError, ValueError):  # not there yet (404, no endpoint) or half written
            return None

    def wait_for_start(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while (start := self.replay_signal("replay_start.json")) is None:
            if self.stop:
                raise _Stop
            if time.monotonic() > deadline:
                raise TimeoutError(f"no replay started within {timeout_s:.0f} s (replay_start.json missing)")
            self.observe_replicas()
            time.sleep(0.5)
        self.t0 = float(start["t0"])

    def observe_replicas(self) -> None:
        states = self.actuator.refresh()
        for job in self.names:
            n = len(states.get(job, {}).get("running", []))
            if self.last_running.get(job) != n:
                self.last_running[job] = n
                self.emit("replicas", job=job, replicas=n, target=states.get(job, {}).get("target"))

    def metrics(self, now_wall: float) -> dict[str, JobMetrics]:
        assert self.t0 is not None
        snap = self.actors.snapshot(now_wall, self.t0, self.unit_time, self.window_s / self.scale)
        prom: dict[str, dict[str, float]] = {}
        for c in self.actuator.clusters:
            prom.update(serve_api.serve_prometheus_url(c["metrics_url"]))
        self.prom = prom
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
                # wall seconds -> the controller's clock (trace seconds)
                busy_s=float(s.get("busy_s", float("nan"))) * self.scale,
            )
        return out

    def free_cpus(self) -> int:
        """Native: the quota's free CPUs, from Ray's available logical CPUs minus the declared
        overhead (:meth:`MetricsActors.available_cpus`); unknown: the quota minus RUNNING replicas."""
        avail = self.actors.available_cpus() if self.connected else None
        if avail is None:
            running = sum(len(self.actuator.states.get(j, {}).get("running", [])) for j in self.names)
            return max(0, self.spec.quota - running)
        return max(0, int(round(avail)) - self.overhead_cpus)

    def observe_tick(self, now: float, metrics: dict[str, JobMetrics]) -> list[Decision]:
        """A native policy's tick: Serve decided, we record (one row per job, nothing actuated).
        Returns the jobs whose Serve target changed since the previous tick."""
        ctl = self.controller
        before = dict(ctl.allocation)
        states = self.actuator.states
        targets = {j: int(states.get(j, {}).get("target") or before[j]) for j in self.names}
        free = self.free_cpus()
        ctl.allocation.update(targets)  # the snapshot's allocation is Serve's target
        ctl.free_cpus = free
        snap = ctl.snapshot(now, metrics)
        self.observer.observe(snap, self.prom)
        actions = [Action(j, target=targets[j], source=NATIVE) for j in self.names]
        decisions = [Decision(time=now, job=j, source=NATIVE, requested=targets[j], previous=before[j],
                              applied=int(metrics[j].active_replicas), outcome=NATIVE, trials_left=0,
                              free_cpus_after=free)
                     for j in self.names]
        self.recorder.record(now, snap, [(self.observer, snap, actions)], actions, decisions, free, free)
        return [d for d in decisions if d.requested != d.previous]

    # -- the loop ------------------------------------------------------------------
    def run(self) -> int:
        if not self.connected:
            self.connect()
        restart = {"restart": self.previous["starts"], "resumed_allocation": self.previous["allocation"]} \
            if self.previous["starts"] else {}
        self.emit("start", pid=os.getpid(), policy=self.spec.policy.name, quota=self.spec.quota,
                  initial=self.actuator.replicas, tick_wall_s=self.tick_s / self.scale, **restart)
        try:
            self.wait_for_start(float(self.cfg.get("start_timeout_s", 900)))
            self.emit("replay_start", t0=self.t0)
            for job, n in self.last_running.items():
                self.emit("replicas", job=job, replicas=n, at_start=True)
            next_tick = self.controller.next_tick(0.0)
            if self.previous["starts"]:  # resume on the trace's clock, not from its first tick
                now0 = (time.time() - self.t0) * self.scale
                while next_tick + self.tick_s <= now0:
                    next_tick = self.controller.next_tick(next_tick)
            errors = 0
            n_ticks = 0
            while not self.stop:
                now_wall = time.time()
                now = (now_wall - self.t0) * self.scale
                try:
                    if now + 1e-9 >= next_tick:
                        self.observe_replicas()
                        m = self.metrics(now_wall)
                        if self.native:
                            decisions = self.observe_tick(next_tick, m)
                        else:
                            decisions = self.controller.tick(next_tick, m)
                        self.emit("tick", now=next_tick, lag_s=(now - next_tick) / self.scale,
                                  metrics={j: dataclasses.asdict(v) for j, v in m.items()},
                                  allocation=dict(self.controller.allocation),
                                  free_cpus=self.controller.free_cpus)
                        for d in decisions:
                            self.emit("decision", **dataclasses.asdict(d))
                        n_ticks += 1
                        if n_ticks % self.records_every == 0:
                            self.recorder.flush(self.raw / RECORDS)
                        next_tick = self.controller.next_tick(next_tick)
                    else:
                        self.observe_replicas()
                    errors = 0
                except Exception as e:
                    # what the per-call retries did not absorb (e.g. a non-JSON answer of a restarting
                    # head): log it, skip this tick, and stop only if it keeps happening
                    errors += 1
                    log.exception("tick failed (%d in a row)", errors)
                    self.emit("error", where="tick", now=next_tick, error=f"{type(e).__name__}: {e}"[:500],
                              in_a_row=errors)
                    if errors >= self.max_tick_errors:
                        raise
                    next_tick = self.controller.next_tick(next_tick) if now + 1e-9 >= next_tick else next_tick
                if self.replay_signal("replay_end.json") is not None:
                    self.emit("replay_end")
                    break
                time.sleep(min(0.5, max(0.02, (next_tick - now) / self.scale)))
        except _Stop:
            pass
        finally:
            self.recorder.flush(self.raw / RECORDS)
            self.emit("stop", signal=self.stop, puts=self.actuator.puts, decision_rows=self.recorder.rows)
            self.out.close()
        return 0


class NativeServe:
    """The decision records' layer of a native policy: Serve's own reading of each job, from its
    Prometheus gauges (``metric``: the look-back total of ongoing requests it decided on;
    ``desired``: that / ``target_ongoing_requests``, before factors, delays and bounds)."""

    record_name = NATIVE

    def __init__(self, target_ongoing_requests: float) -> None:
        self.target = float(target_ongoing_requests)
        self.notes: dict[str, dict[str, Any]] = {}

    def observe(self, snapshot: Snapshot, prom: dict[str, dict[str, float]]) -> None:
        self.notes = {}
        for j in snapshot.jobs:
            total = (prom.get(j.name) or {}).get("serve_total_requests")
            self.notes[j.name] = {"metric": total, "desired": None if total is None else total / self.target,
                                  "mode": NATIVE}

    def explain(self, snapshot: Snapshot) -> dict[str, dict[str, Any]]:
        return {j.name: self.notes[j.name] for j in snapshot.jobs if j.name in self.notes}


def previous_run(path: Path) -> dict[str, Any]:
    """What an earlier process of this run logged in ``path``: how many times it started, and its
    last allocation (the last ``tick`` record's; None before any tick) to resume from."""
    out: dict[str, Any] = {"starts": 0, "allocation": None}
    if not path.is_file():
        return out
    with open(path) as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:  # a line cut by the crash
                continue
            if rec.get("kind") == "start":
                out["starts"] += 1
            elif rec.get("kind") == "tick" and rec.get("allocation"):
                out["allocation"] = {k: int(v) for k, v in rec["allocation"].items()}
    return out


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
