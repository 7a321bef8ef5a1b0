"""Types exchanged by the control loop, the policies and the backends.

A backend produces a :class:`Snapshot` (metrics of every job at one instant);
a policy turns it into :class:`Action` objects; the controller
(:mod:`faro.control.controller`) checks them against its CPU ledger and the
per-job executors and hands the survivors to the backend.  Nothing here knows
which backend is running.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class JobState:
    """Metrics of one job at one instant, as the autoscaler sees them."""

    name: str
    index: int
    #: replicas the controller has allocated (its ledger's view)
    replicas: int
    #: replicas that are running and receive work
    active_replicas: int
    #: requests waiting in the job's head queue (not yet dispatched)
    head_queue: int
    #: requests held by each active replica (in service + waiting)
    replica_queues: tuple[int, ...]
    #: mean latency (ms) of requests finished in the last window; 0 if none
    avg_latency_ms: float
    #: arrivals in complete 60 s bins counted back from now, oldest first
    arrivals_per_min: np.ndarray
    #: True while the job's executor is applying an earlier action
    executor_busy: bool
    #: fraction of requests admitted at the job's entry (Penalty policies)
    admission_rate: float
    slo_ms: float
    processing_ms: float
    #: cumulative busy (service) seconds of the job's replicas since replay start, on the
    #: controller's clock: a CPU-time counter like cAdvisor's; NaN where the backend does not
    #: measure it
    busy_s: float = float("nan")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Metrics of the whole cluster at time ``time`` (seconds since replay start)."""

    time: float
    quota: int
    #: CPUs the controller's ledger still has free
    free_cpus: int
    jobs: tuple[JobState, ...]

    def job(self, name: str) -> JobState:
        for j in self.jobs:
            if j.name == name:
                return j
        raise KeyError(name)


@dataclass(slots=True)
class Action:
    """A request to change one job's replica count.

    Exactly one of ``target`` (absolute replica count) or ``delta`` (relative
    change) is set.  ``trials`` is how many controller ticks the action may be
    retried when it cannot be carried out in full (no CPU left in the ledger, or
    the job's executor is busy).  ``admission_rate`` (0..1), when set, replaces
    the job's admission rate once its replica count actually changes.
    """

    job: str
    target: int | None = None
    delta: int | None = None
    trials: int = 1
    admission_rate: float | None = None
    source: str = ""
    #: part of a predictive step's batch (served in ``batch_upscale_order``)
    batch: bool = False
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.target is None) == (self.delta is None):
            raise ValueError(f"Action for {self.job!r}: set exactly one of target or delta")
        if self.trials < 1:
            raise ValueError(f"Action for {self.job!r}: trials must be >= 1, got {self.trials}")

    def resolve(self, current: int) -> int:
        """The absolute replica count this action asks for, given ``current``."""
        if self.target is not None:
            return self.target
        assert self.delta is not None  # __post_init__: exactly one of target and delta
        return current + int(self.delta)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the controller did with one action (logged by every backend)."""

    time: float
    job: str
    source: str
    requested: int
    previous: int
    applied: int
    outcome: str  # applied | clamped | requeued | busy | dropped | noop
    trials_left: int
    free_cpus_after: int
    admission_rate: float | None = None
