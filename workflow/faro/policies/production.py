"""The autoscalers people run today, as policies: Ray Serve's default, the Kubernetes HPA and
Knative's KPA ("beyond the paper" baselines).

Each is written from its project's own source or documentation, with that project's default
settings (cited per class).  None knows the quota: like in production, each keeps its own
*desired* replica count per job (Serve's target, the HPA's ``spec.replicas``, the KPA's
desired pod count), asks for it, and re-asks every interval while the controller's
allocation differs, so whatever the quota lets in starts (the controller clamps an upscale to
the free CPU of its ledger, just as a namespace ResourceQuota refuses pods beyond it).

Mapping onto our metrics (one replica = one single-server pod of 1 CPU):

* *ongoing requests* (Serve) and *concurrency* (Knative) = requests waiting in the job's head
  queue (Serve's handle queue, Knative's activator) plus those held by its replicas;
* *CPU utilisation* (HPA) = busy fraction of the ready replicas, the rate of the cumulative
  busy-seconds counter (``JobState.busy_s``) between two syncs, as metrics-server computes it
  from cAdvisor's CPU-seconds counter;
* *running / ready* replicas = active replicas; *unready pods* = allocated but starting.

Time: our controller ticks every 10 trace seconds (the experiment's ``tick_s``), so a policy
decides at most that often (Serve decides every 0.1 s, the KPA every 2 s); all windows and
delays below are in trace seconds, converted to the controller's clock (``use_clock``) like
the controller's own intervals.

Parameters are class attributes (their defaults are the projects'); the policy file's
``params`` override them by name.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from faro.control.types import Action, JobState, Snapshot
from faro.policies.base import Policy, ceil_int

_DELAY_EPS_S = 1e-6


class ProductionPolicy(Policy):
    """Shared plumbing: parameters from class defaults, the time scale, the desired state."""

    #: parameter name -> documented default (overridden by the policy file's params)
    DEFAULTS: ClassVar[dict[str, float]] = {}
    #: parameter name -> description, where the generic one ("the project's documented default") is wrong
    DESCRIPTIONS: ClassVar[dict[str, str]] = {}
    #: name in decision records and action sources
    record_name: ClassVar[str] = ""
    # parameters every subclass's DEFAULTS declares (set per instance by __init__)
    min_replicas: int
    max_replicas: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Declare ``DEFAULTS`` as the class's parameters (faro.policies.params): the
        documented default, its type, never negative."""
        super().__init_subclass__(**kwargs)
        if "DEFAULTS" in cls.__dict__:
            kinds = {bool: "boolean", int: "integer", float: "number"}
            cls.PARAMS = {
                k: {"type": kinds[type(v)], **({} if isinstance(v, bool) else {"minimum": 0}), "default": v,
                    "description": cls.DESCRIPTIONS.get(k, f"{k} (the project's documented default: {v})")}
                for k, v in cls.DEFAULTS.items()
            }

    def __init__(self, params: Mapping[str, Any] | None = None, *, jobs: Sequence[str] = (), quota: int = 0):
        super().__init__(params, jobs=jobs, quota=quota)
        for key, default in self.DEFAULTS.items():
            setattr(self, key, type(default)(self.params.get(key, default)))
        #: controller seconds per trace second, from the controller (use_clock)
        self.time_scale = 1.0
        #: the policy's own desired replicas per job (Serve's target, the HPA's spec.replicas)
        self.desired: dict[str, int] = {}
        #: per job, what the last decision saw and why (read by the decision records)
        self.notes: dict[str, dict[str, Any]] = {}

    def use_clock(self, time_scale: float) -> None:
        """The controller's clock: ``time_scale`` controller seconds per trace second (the
        simulator of a compressed replay runs faster; live autoscalers run in trace seconds)."""
        self.time_scale = float(time_scale)

    def s(self, seconds: float) -> float:
        """A duration in trace seconds, on the controller's clock."""
        return float(seconds) * self.time_scale

    def bounded(self, n: float) -> int:
        return int(max(self.min_replicas, min(self.max_replicas, n)))

    def ask(self, job: JobState, desired: int) -> list[Action]:
        """Keep ``desired`` as the job's desired state; ask for it while the allocation differs."""
        self.desired[job.name] = int(desired)
        if desired == job.replicas:
            return []
        return [Action(job.name, target=int(desired), source=self.record_name)]

    def explain(self, snapshot: Snapshot) -> dict[str, dict[str, Any]]:
        return {j.name: self.notes[j.name] for j in snapshot.jobs if j.name in self.notes}


def ongoing(job: JobState) -> int:
    """Requests waiting at the job's entry plus those held by its replicas."""
    return int(job.head_queue) + int(sum(job.replica_queues))


def window_mean(samples: deque, now: float, window: float) -> float:
    """Mean of the (time, value) samples in ``(now - window, now]``, dropping older ones."""
    while samples and samples[0][0] <= now - window + 1e-9:
        samples.popleft()
    return sum(v for _, v in samples) / len(samples) if samples else 0.0


# ----------------------------------------------------------------------------- Ray Serve


class RayServeDefault(ProductionPolicy):
    """Ray Serve's default autoscaling policy, as in ray 2.60.0 (the pinned version).

    ``ray/serve/autoscaling_policy.py`` (``replica_queue_length_autoscaling_policy`` wrapped by
    ``_apply_autoscaling_config``), defaults from ``ray/serve/config.py`` (``AutoscalingConfig``,
    ``AutoscalingConfig.default()``) and ``ray/serve/_private/constants.py``:

    * metric: total ongoing requests (queued at handles + running at replicas), averaged
      (``aggregation_function: mean``) over ``look_back_period_s`` = 30 s;
    * desired = running x total / (``target_ongoing_requests`` x running) with
      ``target_ongoing_requests`` = 2 (``DEFAULT_TARGET_ONGOING_REQUESTS``);
    * scaling factors: ceil(current + factor x (desired - current)), factor 1.0 (the
      ``smoothing_factor`` default; ``upscaling_factor``/``downscaling_factor`` unset), and
      -1 when a downscale would otherwise be stuck;
    * delays against the current target, measured in time since the first consecutive
      decision in that direction: ``upscale_delay_s`` = 30 s, ``downscale_delay_s`` = 600 s;
      a decision in the other direction or "no change" resets the timer;
    * no running replica: keep the target (the cold-start path only applies to 0 replicas);
    * bounds ``min_replicas`` = 1, ``max_replicas`` = 100 (``AutoscalingConfig.default()``);
    * control loop: every ``CONTROL_LOOP_INTERVAL_S`` = 0.1 s in Serve; here every controller
      tick (10 s), so a delay ends on the first tick at or after it;
    * ``metrics_interval_s`` = 10 s (``DEFAULT_METRICS_INTERVAL_S``: how often a handle pushes
      its queued + ongoing counts to Serve's controller): not used by the emulation, which
      samples the metric once per 10 s tick; it is passed on natively.

    ``native: true`` (the ``ray`` backend only, refused elsewhere): the emulation does not run;
    each job's deployment gets Serve's own ``autoscaling_config`` built from these parameters
    (:func:`serve_autoscaling_config`) and Serve scales it by itself, while the autoscaler
    process only observes and records.
    """

    record_name = "ray_serve_default"
    interval_s = 10.0
    DEFAULTS = {
        "target_ongoing_requests": 2.0,
        "look_back_period_s": 30.0,
        "upscale_delay_s": 30.0,
        "downscale_delay_s": 600.0,
        "upscaling_factor": 1.0,
        "downscaling_factor": 1.0,
        "min_replicas": 1,
        "max_replicas": 100,
        "metrics_interval_s": 10.0,
        "native": False,
    }
    DESCRIPTIONS = {
        "native": "true: Ray Serve's own autoscaler scales the deployments (autoscaling_config from "
                  "these parameters) and our autoscaler only observes; ray backend only",
        "metrics_interval_s": "how often Serve's handles push their metrics (Serve's default 10 s); "
                              "used natively only",
    }
    # the parameters (set per instance from DEFAULTS and the policy's params)
    target_ongoing_requests: float
    look_back_period_s: float
    upscale_delay_s: float
    downscale_delay_s: float
    upscaling_factor: float
    downscaling_factor: float
    metrics_interval_s: float
    native: bool

    def __init__(self, params=None, *, jobs=(), quota=0):
        super().__init__(params, jobs=jobs, quota=quota)
        self.samples: dict[str, deque] = {}
        #: per job: (direction +1/-1/0, time of the first consecutive decision in it)
        self.pending: dict[str, tuple[int, float | None]] = {}

    def scaled(self, desired: float, current: int) -> int:
        """``_apply_scaling_factors``."""
        if current == 0:
            return math.ceil(desired)
        delta = desired - current
        factor = self.upscaling_factor if delta > 0 else self.downscaling_factor
        n = math.ceil(current + factor * delta)
        if math.ceil(desired) < current and n == current:
            n -= 1
        return n

    def delayed(self, name: str, desired: int, target: int, now: float) -> tuple[int, str]:
        """``_apply_delay_logic``: the new target and why."""
        direction, since = self.pending.get(name, (0, None))
        if desired > target:
            if direction < 0:
                since = None
            since = now if since is None else since
            if now - since + _DELAY_EPS_S >= self.s(self.upscale_delay_s):
                self.pending[name] = (0, None)
                return desired, "up"
            self.pending[name] = (1, since)
            return target, "up-delay"
        if desired < target:
            if direction > 0:
                since = None
            since = now if since is None else since
            if now - since + _DELAY_EPS_S >= self.s(self.downscale_delay_s):
                self.pending[name] = (0, None)
                return max(1, desired), "down"
            self.pending[name] = (-1, since)
            return target, "down-delay"
        self.pending[name] = (0, None)
        return target, ""

    def decide(self, snapshot: Snapshot) -> list[Action]:
        out = []
        now = snapshot.time
        for job in snapshot.jobs:
            target = self.desired.get(job.name, job.replicas)
            samples = self.samples.setdefault(job.name, deque())
            samples.append((now, ongoing(job)))
            total = window_mean(samples, now, self.s(self.look_back_period_s))
            running = job.active_replicas
            if running == 0:
                raw, new, mode = float(target), target, "no-running"
                self.pending[job.name] = (0, None)
            else:
                raw = running * total / (self.target_ongoing_requests * running)
                new, mode = self.delayed(job.name, max(0, self.scaled(raw, running)), target, now)
            new = self.bounded(new)
            self.notes[job.name] = {"metric": total, "desired": raw, "mode": mode}
            out += self.ask(job, new)
        return out


def is_native(params: Mapping[str, Any] | None) -> bool:
    """Does a policy's parameter set ask for Serve's own autoscaler (``native: true``)?"""
    return bool((params or {}).get("native", False))


def serve_autoscaling_config(policy: RayServeDefault, *, initial: int, unit_time: float,
                             min_replicas: int = 1, max_replicas: int = 100) -> dict[str, Any]:
    """Serve's ``autoscaling_config`` (ray 2.60 ``ray.serve.config.AutoscalingConfig``) of one
    deployment, from the policy's parameters: the one place where the emulation's parameters
    become Serve's.

    Time scale: the policy's windows and delays are in *trace* seconds; a live replay plays
    each trace minute in ``unit_time`` wall seconds and Serve's clock is the wall clock, so
    every duration is multiplied by ``unit_time / 60`` (local_small, unit_time 10: look-back
    30 -> 5 s, upscale delay 30 -> 5 s, downscale delay 600 -> 100 s, metrics interval
    10 -> 1.667 s) and means the same trace-time window as in the emulation.  Not scaled:
    Serve's control loop (0.1 wall s, ``RAY_SERVE_CONTROL_LOOP_INTERVAL_S``), which then
    decides every 0.6 trace s instead of the emulation's 10 s tick.

    Replica bounds: the policy's, narrowed to the experiment's (``min_replicas`` /
    ``max_replicas``, which the controller imposes on the emulation); ``initial`` is the
    replica count the deployment starts with (the policy's starting allocation), within them.
    ``metrics_interval_s`` is deprecated in ray 2.60 but still sets how often a handle pushes
    (and, with the look-back, records) its metrics; Serve warns when the look-back is not
    longer than it (5 > 1.667 here).
    """
    if unit_time <= 0:
        raise ValueError(f"unit_time must be positive, got {unit_time}")
    k = float(unit_time) / 60.0  # wall seconds per trace second
    lo = max(int(policy.min_replicas), int(min_replicas))
    hi = max(lo, 1, min(int(policy.max_replicas), int(max_replicas)))
    return {
        "min_replicas": lo,
        "max_replicas": hi,
        "initial_replicas": int(max(lo, min(hi, int(initial)))),
        "target_ongoing_requests": float(policy.target_ongoing_requests),
        "metrics_interval_s": float(policy.metrics_interval_s) * k,
        "look_back_period_s": float(policy.look_back_period_s) * k,
        "upscale_delay_s": float(policy.upscale_delay_s) * k,
        "downscale_delay_s": float(policy.downscale_delay_s) * k,
        "upscaling_factor": float(policy.upscaling_factor),
        "downscaling_factor": float(policy.downscaling_factor),
    }


# ----------------------------------------------------------------------------- Kubernetes HPA


class K8sHPA(ProductionPolicy):
    """The Kubernetes HorizontalPodAutoscaler (autoscaling/v2) on CPU utilisation.

    From the Kubernetes documentation ("Horizontal Pod Autoscaling", algorithm details) and
    source (``pkg/controller/podautoscaler``: ``replica_calculator.go`` GetResourceReplicas,
    ``horizontal.go`` stabilizeRecommendationWithBehaviors and
    convertDesiredReplicasWithBehaviorRate; ``pkg/apis/autoscaling/v2/defaults.go``), with the
    defaults of kube-controller-manager and the API:

    * desired = ceil(ready pods x utilisation / target); skip when |ratio - 1| <= 0.1
      (``--horizontal-pod-autoscaler-tolerance``); target 80 % (``DefaultCPUUtilization``,
      what ``kubectl autoscale`` and autoscaling/v1 use when none is given);
    * not-yet-ready pods: when the ratio says "up", they count at 0 % and the ratio is
      recomputed; if that reverses the direction or lands within the tolerance, no change;
    * sync every 15 s (``--horizontal-pod-autoscaler-sync-period``); utilisation is the busy
      fraction over the time since the previous sync (metrics-server's rate of the CPU counter);
    * scale-down stabilisation: the highest recommendation of the last 300 s
      (``--horizontal-pod-autoscaler-downscale-stabilization``); scale-up: none (0 s);
    * default rate policies: up by max(4 pods, 100 %) per 15 s; down by 100 % per 15 s;
    * bounds: ``minReplicas`` 1; ``maxReplicas`` (required in the API) 100, the experiment's cap;
    * no metric from any ready pod: no change (the HPA reports an error and keeps the scale).
    """

    record_name = "k8s_hpa"
    interval_s = 15.0
    DEFAULTS = {
        "target_utilization": 0.8,
        "tolerance": 0.1,
        "downscale_stabilization_s": 300.0,
        "upscale_stabilization_s": 0.0,
        "scale_up_pods": 4,
        "scale_up_percent": 100.0,
        "scale_up_period_s": 15.0,
        "scale_down_percent": 100.0,
        "scale_down_period_s": 15.0,
        "min_replicas": 1,
        "max_replicas": 100,
    }
    # the parameters (set per instance from DEFAULTS and the policy's params)
    target_utilization: float
    tolerance: float
    downscale_stabilization_s: float
    upscale_stabilization_s: float
    scale_up_pods: int
    scale_up_percent: float
    scale_up_period_s: float
    scale_down_percent: float
    scale_down_period_s: float

    def __init__(self, params=None, *, jobs=(), quota=0):
        super().__init__(params, jobs=jobs, quota=quota)
        self.last_busy: dict[str, tuple[float, float]] = {}
        #: per job: (time, unstabilised recommendation)
        self.recommendations: dict[str, list[tuple[float, int]]] = {}
        #: per job: (time, replicas added (+) or removed (-)) by this HPA
        self.events: dict[str, list[tuple[float, int]]] = {}

    def utilization(self, job: JobState, now: float) -> float | None:
        prev = self.last_busy.get(job.name)
        if job.busy_s is None or math.isnan(job.busy_s):
            return None
        self.last_busy[job.name] = (now, job.busy_s)
        if prev is None or now <= prev[0] or job.active_replicas <= 0:
            return None
        return (job.busy_s - prev[1]) / ((now - prev[0]) * job.active_replicas)

    def replica_count(self, current: int, ready: int, unready: int, util: float) -> tuple[int, str]:
        """GetResourceReplicas (no missing metrics: every ready pod reports)."""
        ratio = util / self.target_utilization
        if unready == 0 or ratio <= 1.0:
            if abs(1.0 - ratio) <= self.tolerance:
                return current, "tolerance"
            return ceil_int(ratio * ready), ""
        new_ratio = util * ready / (self.target_utilization * (ready + unready))
        if abs(1.0 - new_ratio) <= self.tolerance or new_ratio < 1.0:
            return current, "unready"
        n = ceil_int(new_ratio * (ready + unready))
        return (current, "unready") if n < current else (n, "")

    def stabilized(self, name: str, desired: int, current: int, now: float) -> int:
        recs = self.recommendations.setdefault(name, [])
        up_cut = now - self.s(self.upscale_stabilization_s)
        down_cut = now - self.s(self.downscale_stabilization_s)
        up = min([r for t, r in recs if t > up_cut] + [desired])
        down = max([r for t, r in recs if t > down_cut] + [desired])
        rec = max(current, up)
        rec = min(rec, down)
        recs[:] = [(t, r) for t, r in recs if t > min(up_cut, down_cut)] + [(now, desired)]
        return rec

    def rate_limited(self, name: str, rec: int, current: int, now: float) -> int:
        events = self.events.setdefault(name, [])
        if rec > current:
            added = sum(d for t, d in events if t > now - self.s(self.scale_up_period_s) and d > 0)
            start = current - added
            limit = max(start + self.scale_up_pods, ceil_int(start * (1 + self.scale_up_percent / 100.0)))
            limit = max(limit, current)
            return min(rec, min(self.max_replicas, limit))
        if rec < current:
            removed = -sum(d for t, d in events if t > now - self.s(self.scale_down_period_s) and d < 0)
            start = current + removed
            limit = int(start * (1 - self.scale_down_percent / 100.0))
            return max(rec, max(self.min_replicas, limit))
        return self.bounded(rec)

    def decide(self, snapshot: Snapshot) -> list[Action]:
        out = []
        now = snapshot.time
        for job in snapshot.jobs:
            current = self.desired.get(job.name, job.replicas)
            util = self.utilization(job, now)
            ready = job.active_replicas
            unready = max(0, job.replicas - ready)
            if util is None or ready == 0:
                self.notes[job.name] = {"metric": util, "desired": None, "mode": "no-metrics"}
                out += self.ask(job, current)
                continue
            desired, mode = self.replica_count(current, ready, unready, util)
            desired = self.bounded(desired)
            rec = self.stabilized(job.name, desired, current, now)
            new = self.rate_limited(job.name, rec, current, now)
            if not mode and rec != desired:
                mode = "stabilized"
            if not mode and new != rec:
                mode = "rate-limited"
            if new != current:
                ev = self.events.setdefault(job.name, [])
                keep = now - self.s(max(self.scale_up_period_s, self.scale_down_period_s))
                ev[:] = [(t, d) for t, d in ev if t > keep] + [(now, new - current)]
            self.notes[job.name] = {"metric": util, "desired": float(desired), "mode": mode}
            out += self.ask(job, new)
        return out


# ----------------------------------------------------------------------------- Knative KPA


class KnativeKPA(ProductionPolicy):
    """Knative Serving's KPA on concurrency, as in knative/serving v1.23 (``pkg/autoscaler/
    scaling/autoscaler.go`` Scale, ``pkg/reconciler/autoscaling/resources/target.go``
    ResolveMetricTarget, defaults from ``config/core/configmaps/autoscaler.yaml``):

    * target per pod = containerConcurrency x ``container-concurrency-target-percentage``
      = 4 x 70 % = 2.8, with containerConcurrency = 4, the hard limit of a replica (the
      experiment's ``max_ongoing_requests``);
    * observed concurrency averaged over the stable window (60 s) and the panic window
      (``panic-window-percentage`` 10 % of it: 6 s; with our 10 s ticks, the latest sample);
    * desired stable/panic pods = ceil(observed / target), kept within
      [floor(ready / ``max-scale-down-rate`` 2), ceil(``max-scale-up-rate`` 1000 x ready)];
    * panic when desired panic pods / ready pods >= ``panic-threshold-percentage`` 200 %;
      in panic never scale down (keep the highest panic count); leave panic after a stable
      window without crossing the threshold;
    * ``scale-down-delay`` 0 s (no delay window); bounds 1..100 (min-scale 1: the experiment
      keeps one replica per job; max-scale 0 = unbounded, capped at the experiment's 100);
    * decisions every 2 s in Knative (``tickInterval``); here every controller tick (10 s).
    """

    record_name = "knative_kpa"
    interval_s = 10.0
    DEFAULTS = {
        "container_concurrency": 4,
        "target_utilization": 0.7,
        "stable_window_s": 60.0,
        "panic_window_percentage": 10.0,
        "panic_threshold": 2.0,
        "max_scale_up_rate": 1000.0,
        "max_scale_down_rate": 2.0,
        "scale_down_delay_s": 0.0,
        "min_replicas": 1,
        "max_replicas": 100,
    }
    # the parameters (set per instance from DEFAULTS and the policy's params)
    container_concurrency: int
    target_utilization: float
    stable_window_s: float
    panic_window_percentage: float
    panic_threshold: float
    max_scale_up_rate: float
    max_scale_down_rate: float
    scale_down_delay_s: float

    def __init__(self, params=None, *, jobs=(), quota=0):
        super().__init__(params, jobs=jobs, quota=quota)
        self.target = max(0.01, self.container_concurrency * self.target_utilization)
        self.stable: dict[str, deque] = {}
        self.panic: dict[str, deque] = {}
        self.panic_time: dict[str, float | None] = {}
        self.max_panic_pods: dict[str, int] = {}
        self.delay: dict[str, deque] = {}

    def decide(self, snapshot: Snapshot) -> list[Action]:
        out = []
        now = snapshot.time
        stable_w = self.s(self.stable_window_s)
        panic_w = stable_w * self.panic_window_percentage / 100.0
        for job in snapshot.jobs:
            c = ongoing(job)
            st = self.stable.setdefault(job.name, deque())
            pn = self.panic.setdefault(job.name, deque())
            st.append((now, c))
            pn.append((now, c))
            obs_stable = window_mean(st, now, stable_w)
            obs_panic = window_mean(pn, now, panic_w)
            ready = max(1.0, float(job.active_replicas))
            max_up = math.ceil(self.max_scale_up_rate * ready)
            max_down = math.floor(ready / self.max_scale_down_rate)
            dspc = math.ceil(obs_stable / self.target)
            dppc = math.ceil(obs_panic / self.target)
            stable_pods = int(min(max(dspc, max_down), max_up))
            panic_pods = int(min(max(dppc, max_down), max_up))
            over = dppc / ready >= self.panic_threshold
            since = self.panic_time.get(job.name)
            if since is None and over:
                since = now
            elif over:
                since = now
            elif since is not None and since + stable_w < now:
                since = None
                self.max_panic_pods[job.name] = 0
            self.panic_time[job.name] = since
            desired = stable_pods
            if since is not None:
                desired = max(desired, panic_pods)
                self.max_panic_pods[job.name] = max(self.max_panic_pods.get(job.name, 0), desired)
                desired = self.max_panic_pods[job.name]
            if self.scale_down_delay_s > 0:
                win = self.delay.setdefault(job.name, deque())
                win.append((now, desired))
                while win and win[0][0] <= now - self.s(self.scale_down_delay_s) + 1e-9:
                    win.popleft()
                desired = max(d for _, d in win)
            self.notes[job.name] = {"metric": obs_stable, "desired": float(dspc),
                                    "mode": "panic" if since is not None else "stable"}
            out += self.ask(job, self.bounded(desired))
        return out


__all__ = ["K8sHPA", "KnativeKPA", "RayServeDefault", "is_native", "serve_autoscaling_config"]
