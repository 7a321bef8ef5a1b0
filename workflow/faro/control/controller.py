"""The backend-agnostic autoscaler control loop.

Metrics snapshot -> policy layers -> actions -> (ledger, executors) -> actuator.
The simulator drives it on a simulated clock; the live backends drive it on the
wall clock from their own autoscaler process.  Behaviour follows docs/model.md
sections 3 and 4:

* every layer decides when due (first at ``layer.first_at_s``, then every
  ``layer.interval_s``); layers are consulted in the order the policy returns;
* queued actions (new ones plus retries) are carried out downscales first, then
  the upscales of a predictive step's batch (job order by default, as the
  artifact's predictive controller submits them), then single reactive upscales
  (a random order each tick by default; see docs/model.md section 3);
* a per-job executor carries out one action at a time: busy for
  ``downscale_busy_s`` after a downscale and while an upscale's replicas are
  still starting (asked from the actuator); an action meeting a busy executor
  loses a trial;
* the CPU ledger starts at quota minus the initial replicas, frees CPU at once
  on a downscale and reserves it only for actions that are carried out; an
  upscale is clamped to the free CPU and its remainder re-queued with one trial
  fewer;
* replica counts are clamped to ``[min_replicas, max_replicas]``;
* with a ``recorder`` (:mod:`faro.control.records`), every tick leaves one decision record
  per job; a policy or recorder with ``use_clock(time_scale)`` learns the controller's clock
  (controller seconds per trace second).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from faro.control.types import Action, Decision, JobState, Snapshot


class Actuator(Protocol):
    """What a backend offers the controller."""

    def set_replicas(self, job: str, replicas: int, now: float) -> None: ...

    def set_admission(self, job: str, rate: float, now: float) -> None: ...

    def is_settling(self, job: str, now: float) -> bool:
        """True while replicas of an earlier upscale of ``job`` are still starting."""
        ...


@dataclass(frozen=True, slots=True)
class JobMetrics:
    """Raw metrics a backend measures for one job (the controller adds its own view)."""

    active_replicas: int
    head_queue: int
    replica_queues: tuple[int, ...]
    avg_latency_ms: float
    arrivals_per_min: np.ndarray
    #: cumulative busy seconds of the job's replicas, on the controller's clock (NaN: not measured)
    busy_s: float = float("nan")


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    slo_ms: float
    processing_ms: float


class Controller:
    """Runs a policy's layers against a backend through a CPU ledger."""

    def __init__(
        self,
        policy,
        jobs: Sequence[JobSpec],
        quota: int,
        actuator: Actuator,
        *,
        rng: np.random.Generator,
        tick_s: float = 10.0,
        downscale_busy_s: float = 3.0,
        upscale_order: str = "random",
        batch_upscale_order: str = "job",
        min_replicas: int = 1,
        max_replicas: int = 100,
        initial: Mapping[str, int] | None = None,
        time_scale: float = 1.0,
        recorder=None,
    ) -> None:
        for key, val in (("upscale_order", upscale_order), ("batch_upscale_order", batch_upscale_order)):
            if val not in ("random", "job"):
                raise ValueError(f"{key} must be 'random' or 'job', got {val!r}")
        self.policy = policy
        self.jobs = list(jobs)
        self.names = [j.name for j in self.jobs]
        self.quota = int(quota)
        self.actuator = actuator
        self.rng = rng
        #: controller times (ticks, layer intervals, busy periods) are trace seconds; a replay
        #: whose trace minute lasts ``unit_time`` wall seconds runs them ``unit_time / 60`` faster
        self.time_scale = float(time_scale)
        self.tick_s = float(tick_s) * self.time_scale
        self.downscale_busy_s = float(downscale_busy_s) * self.time_scale
        self.upscale_order = upscale_order
        self.batch_upscale_order = batch_upscale_order
        self.min_replicas = int(min_replicas)
        self.max_replicas = int(max_replicas)
        init = dict(initial or policy.initial_replicas())
        self.allocation: dict[str, int] = {n: int(init.get(n, 1)) for n in self.names}
        used = sum(self.allocation.values())
        if used > self.quota:
            raise ValueError(f"initial replicas ({used}) exceed the quota ({self.quota})")
        self.free_cpus = self.quota - used
        self.admission: dict[str, float] = {n: 1.0 for n in self.names}
        self._busy_until: dict[str, float] = {n: -np.inf for n in self.names}
        self._queue: list[Action] = []
        self.layers = list(policy.layers())
        self._next_due = [float(layer.first_at_s) * self.time_scale for layer in self.layers]
        self.decisions: list[Decision] = []
        #: optional :class:`faro.control.records.DecisionRecorder`: one row per job and tick
        self.recorder = recorder
        self._executed: list[Action] = []
        # policies that keep their own time windows (delays, look-backs) learn this clock
        for who in (policy, recorder):
            use_clock = getattr(who, "use_clock", None)
            if callable(use_clock):
                use_clock(self.time_scale)

    # -- time --------------------------------------------------------------
    def next_tick(self, now: float) -> float:
        """The controller ticks on a fixed grid of ``tick_s`` (first at ``tick_s``)."""
        k = int(np.floor(now / self.tick_s + 1e-9)) + 1
        return k * self.tick_s

    def executor_busy(self, job: str, now: float) -> bool:
        return now < self._busy_until[job] or self.actuator.is_settling(job, now)

    # -- snapshot ------------------------------------------------------------
    def snapshot(self, now: float, metrics: Mapping[str, JobMetrics]) -> Snapshot:
        states = []
        for i, spec in enumerate(self.jobs):
            m = metrics[spec.name]
            states.append(
                JobState(
                    name=spec.name,
                    index=i,
                    replicas=self.allocation[spec.name],
                    active_replicas=m.active_replicas,
                    head_queue=m.head_queue,
                    replica_queues=m.replica_queues,
                    avg_latency_ms=m.avg_latency_ms,
                    arrivals_per_min=m.arrivals_per_min,
                    executor_busy=self.executor_busy(spec.name, now),
                    admission_rate=self.admission[spec.name],
                    slo_ms=spec.slo_ms,
                    processing_ms=spec.processing_ms,
                    busy_s=m.busy_s,
                )
            )
        return Snapshot(time=now, quota=self.quota, free_cpus=self.free_cpus, jobs=tuple(states))

    # -- one tick ------------------------------------------------------------
    def due_layers(self, now: float) -> list[int]:
        return [i for i, t in enumerate(self._next_due) if now + 1e-9 >= t]

    def tick(self, now: float, metrics: Mapping[str, JobMetrics]) -> list[Decision]:
        """Run every due layer, then carry out the queued actions. Returns this tick's decisions."""
        due = self.due_layers(now)
        ran = []
        for i in due:
            layer = self.layers[i]
            snap = self.snapshot(now, metrics)
            actions = layer.decide(snap)
            self._queue.extend(actions)
            if self.recorder is not None:
                ran.append((layer, snap, actions))
            step = float(layer.interval_s) * self.time_scale
            self._next_due[i] += step
            # a layer that was far behind (e.g. first_at past several intervals) catches up once
            while self._next_due[i] <= now + 1e-9:
                self._next_due[i] += step
        if self.recorder is None:
            return self._execute(now)
        free_before = self.free_cpus
        out = self._execute(now)
        snap = ran[0][1] if ran else self.snapshot(now, metrics)
        self.recorder.record(now, snap, ran, self._executed, out, free_before, self.free_cpus)
        return out

    def _execute(self, now: float) -> list[Decision]:
        queue, self._queue = self._queue, []
        for a in queue:
            if a.job not in self.allocation:
                raise KeyError(f"policy emitted an action for unknown job {a.job!r}")
        downs: list[Action] = []
        ups: list[Action] = []
        for a in queue:
            want = self._clamp(a.resolve(self.allocation[a.job]))
            (downs if want < self.allocation[a.job] else ups).append(a)
        # a predictive step's batch (and its retries) first, then the reactive actions
        batch = self._order([a for a in ups if a.batch], self.batch_upscale_order)
        single = self._order([a for a in ups if not a.batch], self.upscale_order)
        order = downs + batch + single
        out = [self._apply(a, now) for a in order]
        if self.recorder is not None:
            self._executed = order
        self.decisions.extend(out)
        return out

    def _order(self, ups: list[Action], how: str) -> list[Action]:
        if how == "random" and len(ups) > 1:
            return [ups[k] for k in self.rng.permutation(len(ups))]
        if how == "job":
            order = {n: i for i, n in enumerate(self.names)}
            return sorted(ups, key=lambda a: order[a.job])  # stable: a job's own actions keep their order
        return ups

    def _clamp(self, n: int) -> int:
        return max(self.min_replicas, min(self.max_replicas, int(n)))

    def _retry(self, a: Action) -> bool:
        if a.trials > 1:
            a.trials -= 1
            self._queue.append(a)
            return True
        return False

    def _decision(self, now, a, requested, previous, applied, outcome) -> Decision:
        return Decision(
            time=now,
            job=a.job,
            source=a.source,
            requested=requested,
            previous=previous,
            applied=applied,
            outcome=outcome,
            trials_left=a.trials,
            free_cpus_after=self.free_cpus,
            admission_rate=a.admission_rate,
        )

    def _apply(self, a: Action, now: float) -> Decision:
        job = a.job
        cur = self.allocation[job]
        want = self._clamp(a.resolve(cur))
        if want == cur:
            return self._decision(now, a, want, cur, cur, "noop")
        if self.executor_busy(job, now):
            outcome = "busy" if self._retry(a) else "dropped"
            return self._decision(now, a, want, cur, cur, outcome)
        if want < cur:
            self.free_cpus += cur - want
            self._set(job, want, a, now)
            self._busy_until[job] = now + self.downscale_busy_s
            return self._decision(now, a, want, cur, want, "applied")
        grant = min(want - cur, self.free_cpus)
        if grant <= 0:
            if a.delta is not None:
                # a reactive delta is clamped to the free CPU: nothing left, nothing to do
                return self._decision(now, a, want, cur, cur, "dropped")
            outcome = "requeued" if self._retry(a) else "dropped"
            return self._decision(now, a, want, cur, cur, outcome)
        new = cur + grant
        self.free_cpus -= grant
        self._set(job, new, a, now)
        outcome = "applied"
        if new < want:
            outcome = "clamped"
            if a.delta is None:
                # the remainder keeps the absolute target and tries again next tick
                self._retry(a)
        return self._decision(now, a, want, cur, new, outcome)

    def _set(self, job: str, n: int, a: Action, now: float) -> None:
        self.allocation[job] = n
        self.actuator.set_replicas(job, n, now)
        if a.admission_rate is not None:
            # takes effect only when the replica count actually changes
            self.admission[job] = float(a.admission_rate)
            self.actuator.set_admission(job, float(a.admission_rate), now)


def clear_queue_for(controller: Controller, jobs: Sequence[str] | None = None) -> None:
    """Forget queued retries (all, or those of ``jobs``)."""
    if jobs is None:
        controller._queue.clear()
    else:
        keep = set(jobs)
        controller._queue[:] = [a for a in controller._queue if a.job not in keep]


__all__ = ["Actuator", "Controller", "JobMetrics", "JobSpec", "Decision", "clear_queue_for"]
