"""The discrete-event simulator of one run (docs/model.md section 3).

The cluster model (pods, replicas, the node's CPUs, cold/warm starts, idle
timeouts, retries) and the global event loop live here, in Python; the request
queues run in the compiled :mod:`faro.backends.sim.kernel`.  The autoscaler is the shared
:class:`faro.control.controller.Controller`, driven on the simulated clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from faro.backends.sim.frames import replicas_frame, requests_frame
from faro.backends.sim.kernel import R_ACTIVE, R_DRAINING, R_FREE, KernelState
from faro.backends.sim.random import RunStreams
from faro.control.controller import Controller, JobMetrics, JobSpec
from faro.model.arrivals import job_arrivals
from faro.model.experiment import Experiment
from faro.model.trace import Trace

# event priorities at equal times: pods first, then the monitor, then the controller
P_ACTIVATE, P_RETRY, P_POD_READY, P_MONITOR, P_TICK = 0, 1, 2, 3, 4


@dataclass(eq=False)
class Pod:
    job: int
    ready_at: float
    replica: Replica | None = None
    idle_since: float = 0.0


@dataclass(eq=False)
class Replica:
    job: int
    serial: int
    state: str = "pending"  # pending (no pod yet) | starting | active | removed
    pod: Pod | None = None
    slot: int = -1


@dataclass
class SimResult:
    """Raw output of one simulated run (arrays, to keep memory low)."""

    jobs: tuple[str, ...]
    seed: int
    job: np.ndarray  # int16 job index per request
    arrival: np.ndarray
    start: np.ndarray
    end: np.ndarray
    status: np.ndarray  # kernel status codes (S_OK, S_DROP_QUEUE, S_DROP_ADMISSION)
    replica_log: np.ndarray  # rows (time, job index, active replicas)
    decisions: list[dict]
    info: dict = field(default_factory=dict)

    def requests_frame(self) -> pd.DataFrame:
        """The requests in the Parquet schema's columns."""
        return requests_frame(self.jobs, self.seed, self.job, self.arrival, self.start, self.end, self.status)

    def replicas_frame(self) -> pd.DataFrame:
        return replicas_frame(self.jobs, self.replica_log)


class SimCluster:
    """The simulated cluster: implements the controller's ``Actuator`` protocol."""

    def __init__(self, exp: Experiment, quota: int, kernel: KernelState, rng: np.random.Generator):
        self.exp = exp
        self.c = exp.cluster
        self.kernel = kernel
        self.rng = rng
        self.index = {name: i for i, name in enumerate(exp.jobs)}
        n = exp.n_jobs
        self.node_free = int(quota)
        self.pods: list[list[Pod]] = [[] for _ in range(n)]
        self.replicas: list[list[Replica]] = [[] for _ in range(n)]
        self.active_count = np.zeros(n, np.int64)
        self.events: list = []
        self._seq = itertools.count()
        self._serial = itertools.count()
        self.replica_log: list[tuple[float, int, int]] = []
        self.admission_draws: Callable[[], np.ndarray] | None = None

    # -- bookkeeping -------------------------------------------------------
    def push(self, t: float, prio: int, kind: str, obj) -> None:
        heapq.heappush(self.events, (t, prio, next(self._seq), kind, obj))

    def _record(self, job: int, now: float) -> None:
        self.replica_log.append((now, job, int(self.active_count[job])))

    def _reshuffle(self, job: int) -> None:
        slots = np.array([r.slot for r in self.replicas[job] if r.state == "active"], np.int64)
        self.kernel.set_dispatch_order(job, self.rng.permutation(slots) if len(slots) > 1 else slots)

    def start_replicas(self, job: int, n: int) -> None:
        """Initial replicas: active at t = 0, each on its own pod."""
        for _ in range(n):
            pod = Pod(job, ready_at=0.0)
            r = Replica(job, next(self._serial), pod=pod)
            pod.replica = r
            self.node_free -= 1
            self.pods[job].append(pod)
            self.replicas[job].append(r)
            self._activate(r, 0.0)
        if self.node_free < 0:
            raise ValueError("initial replicas exceed the quota")

    # -- Actuator protocol ---------------------------------------------------
    def set_replicas(self, job_name: str, n: int, now: float) -> None:
        job = self.index[job_name]
        live = [r for r in self.replicas[job] if r.state != "removed"]
        if n > len(live):
            for _ in range(n - len(live)):
                r = Replica(job, next(self._serial))
                self.replicas[job].append(r)
                self._place(r, now)
        elif n < len(live):
            for r in sorted(live, key=lambda r: r.serial, reverse=True)[: len(live) - n]:
                self._remove(r, now)
        self.replicas[job] = [r for r in self.replicas[job] if r.state != "removed"]

    def set_admission(self, job_name: str, rate: float, now: float) -> None:
        if rate < 1.0 and self.admission_draws is not None:
            # the admission stream is drawn only once a policy first drops requests
            self.kernel.admit_u = self.admission_draws()
            self.admission_draws = None
        self.kernel.admission[self.index[job_name]] = float(rate)

    def is_settling(self, job_name: str, now: float) -> bool:
        return any(r.state in ("pending", "starting") for r in self.replicas[self.index[job_name]])

    # -- pods and replicas -------------------------------------------------------
    def _place(self, r: Replica, now: float) -> None:
        idle = [p for p in self.pods[r.job] if p.replica is None]
        if idle:
            pod = idle[0]
            pod.replica = r
            r.pod = pod
            r.state = "starting"
            self.push(max(now + self.c.warm_start_s, pod.ready_at), P_ACTIVATE, "activate", r)
        elif self.node_free >= self.c.cpu_per_replica:
            self.node_free -= self.c.cpu_per_replica
            pod = Pod(r.job, ready_at=now + self.c.cold_start_s, replica=r)
            self.pods[r.job].append(pod)
            r.pod = pod
            r.state = "starting"
            self.push(pod.ready_at, P_ACTIVATE, "activate", r)
        else:
            r.state = "pending"
            self.push(now + self.c.retry_s, P_RETRY, "retry", r)

    def _activate(self, r: Replica, now: float) -> None:
        k = self.kernel
        free = np.flatnonzero(k.r_state[r.job] == R_FREE)
        if len(free) == 0:
            raise RuntimeError(f"job {r.job}: no free replica slot")
        s = int(free[0])
        k.r_state[r.job, s] = R_ACTIVE
        k.rq_len[r.job, s] = 0
        k.rq_head[r.job, s] = 0
        r.slot = s
        r.state = "active"
        self.active_count[r.job] += 1
        self._reshuffle(r.job)
        self._record(r.job, now)

    def _remove(self, r: Replica, now: float) -> None:
        prev = r.state
        r.state = "removed"
        if r.pod is not None:
            r.pod.replica = None
            r.pod.idle_since = max(now, r.pod.ready_at)
        if prev == "active":
            k = self.kernel
            k.r_state[r.job, r.slot] = R_DRAINING if k.rq_len[r.job, r.slot] > 0 else R_FREE
            self.active_count[r.job] -= 1
            self._reshuffle(r.job)
            self._record(r.job, now)

    def handle(self, kind: str, obj, now: float) -> None:
        if kind == "activate":
            if obj.state == "starting":
                self._activate(obj, now)
        elif kind == "retry":
            if obj.state == "pending":
                self._place(obj, now)
        elif kind == "monitor":
            self._monitor(now)

    def _monitor(self, now: float) -> None:
        """Remove pods idle for the idle timeout (never a job's last pod)."""
        for _job, pods in enumerate(self.pods):
            for p in list(pods):
                if len(pods) <= self.c.min_replicas:
                    break
                if p.replica is None and now >= p.ready_at and now - p.idle_since >= self.c.idle_timeout_s:
                    pods.remove(p)
                    self.node_free += self.c.cpu_per_replica

    # -- metrics -----------------------------------------------------------------
    def metrics(self, now: float, arrivals_cum: np.ndarray, window_s: float,
                bin_s: float) -> dict[str, JobMetrics]:
        """What the autoscaler reads at ``now``; arrival counts in complete ``bin_s`` bins
        (one trace minute) counted back from now."""
        k = self.kernel
        n_bins = int(now // bin_s + 1e-9)
        edges = np.rint(now - bin_s * np.arange(n_bins, -1, -1)).astype(np.int64)
        out = {}
        for j, name in enumerate(self.exp.jobs):
            active = [r.slot for r in self.replicas[j] if r.state == "active"]
            cum = arrivals_cum[j]
            edges = np.clip(edges, 0, len(cum) - 1)
            per_min = np.diff(cum[edges]) if n_bins else np.zeros(0, np.int64)
            out[name] = JobMetrics(
                active_replicas=len(active),
                head_queue=int(k.hq_len[j]),
                replica_queues=tuple(int(k.rq_len[j, s]) for s in active),
                avg_latency_ms=k.window_latency_ms(j, now, window_s),
                arrivals_per_min=per_min,
                busy_s=float(k.busy[j]),
            )
        return out


def simulate(
    exp: Experiment,
    trace: Trace,
    policy,
    quota: int,
    seed: int,
    *,
    unit_time: float = 60.0,
    replica_overhead_s: float = 0.0,
    on_tick: Callable[[float], None] | None = None,
    recorder=None,
) -> SimResult:
    """Simulate one run: replay ``trace`` under ``policy`` at ``quota`` CPUs with ``seed``.

    ``replica_overhead_s`` is added to every drawn service time (a host's per-request
    replica overhead, calibrated against a real backend; 0 for the paper's model).
    ``recorder`` (a :class:`faro.control.records.DecisionRecorder`) receives every tick.
    """
    if replica_overhead_s < 0:
        raise ValueError(f"replica_overhead_s must be >= 0, got {replica_overhead_s}")
    if trace.jobs != exp.jobs:
        raise ValueError(f"trace jobs {trace.jobs} differ from the experiment's {exp.jobs}")
    streams = RunStreams(seed, exp.n_jobs)
    arrivals = job_arrivals(trace.counts, unit_time, seed)  # the replayer's too (faro.model.arrivals)
    sizes = np.array([len(a) for a in arrivals], np.int64)
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    arrival = np.concatenate(arrivals) if arrivals else np.zeros(0)
    del arrivals
    jobs = range(exp.n_jobs)
    f4 = np.float32
    service = np.concatenate([exp.job_models[j].service_time.draw(streams.service(j), sizes[j]).astype(f4)
                              for j in jobs])
    if replica_overhead_s:
        service += f4(replica_overhead_s)
    router_in = np.concatenate([exp.router.draw(streams.router(j, 0), sizes[j]).astype(f4) for j in jobs])
    router_out = np.concatenate([exp.router.draw(streams.router(j, 1), sizes[j]).astype(f4) for j in jobs])

    def admission_draws() -> np.ndarray:
        return np.concatenate([streams.admission(j).random(sizes[j], dtype=f4) for j in jobs])

    horizon = trace.n_minutes * unit_time + 3600.0
    c = exp.cluster
    kernel = KernelState.create(
        arrival, service, router_in, router_out, np.zeros(1, f4), offsets,
        n_slots=2 * c.max_replicas + 8, horizon_s=horizon,
        max_queued=c.max_queued_requests, max_held=c.max_ongoing_requests,
    )
    # per-second cumulative arrivals, for the per-minute counts the policies see
    n_sec = int(np.ceil(horizon)) + 2
    arrivals_cum = np.zeros((exp.n_jobs, n_sec + 1), np.int64)
    for j in jobs:
        a = arrival[offsets[j] : offsets[j + 1]]
        arrivals_cum[j, 1:] = np.cumsum(np.bincount(np.minimum(a.astype(np.int64), n_sec - 1),
                                                    minlength=n_sec))

    cluster = SimCluster(exp, quota, kernel, streams.dispatch())
    cluster.admission_draws = admission_draws
    specs = [JobSpec(n, m.slo_ms, m.processing_ms) for n, m in zip(exp.jobs, exp.job_models, strict=True)]
    ctl = exp.controller
    controller = Controller(
        policy, specs, quota, cluster, rng=streams.controller(),
        tick_s=ctl.tick_s, downscale_busy_s=ctl.downscale_busy_s, upscale_order=ctl.upscale_order,
        batch_upscale_order=ctl.batch_upscale_order,
        min_replicas=c.min_replicas, max_replicas=c.max_replicas, time_scale=unit_time / 60.0,
        recorder=recorder,
    )
    for name, n in controller.allocation.items():
        cluster.start_replicas(cluster.index[name], n)

    cluster.push(c.monitor_interval_s, P_MONITOR, "monitor", None)
    cluster.push(controller.next_tick(0.0), P_TICK, "tick", None)
    n_ticks = 0
    while True:
        t, _prio, _seq, kind, obj = heapq.heappop(cluster.events)
        if kernel.advance(t) == 0:
            break
        if kind == "tick":
            metrics = cluster.metrics(t, arrivals_cum, ctl.latency_window_s * unit_time / 60.0, unit_time)
            controller.tick(t, metrics)
            n_ticks += 1
            if on_tick is not None:
                on_tick(t)
            cluster.push(controller.next_tick(t), P_TICK, "tick", None)
        elif kind == "monitor":
            cluster.handle(kind, obj, t)
            cluster.push(t + c.monitor_interval_s, P_MONITOR, "monitor", None)
        else:
            cluster.handle(kind, obj, t)

    return _result(exp, kernel, cluster, controller, seed, offsets, n_ticks)


def _result(exp, kernel, cluster, controller, seed, offsets, n_ticks) -> SimResult:
    job_idx = np.repeat(np.arange(exp.n_jobs, dtype=np.int16), np.diff(offsets))
    rep = np.array(cluster.replica_log, dtype=float).reshape(-1, 3)
    info = {"ticks": n_ticks, "last_end_s": float(np.nanmax(kernel.end)) if len(kernel.end) else 0.0}
    return SimResult(
        jobs=tuple(exp.jobs),
        seed=int(seed),
        job=job_idx,
        arrival=kernel.arrival,
        start=kernel.start,
        end=kernel.end,
        status=kernel.status,
        replica_log=rep,
        decisions=[_asdict(d) for d in controller.decisions],
        info=info,
    )


def _asdict(d) -> dict:
    return {f: getattr(d, f) for f in d.__slots__}
