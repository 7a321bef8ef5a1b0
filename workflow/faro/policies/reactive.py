"""Reactive policies driven by the latency counter (docs/model.md section 4).

Per job and tick: while ``avg_latency`` exceeds the SLO the counter climbs (reset
to +1 if it was negative) and at ``+upscale_ticks`` emits an upscale and resets;
otherwise it falls (reset to -1 if positive) and at ``-downscale_ticks`` emits a
downscale and resets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from faro.control.types import Action, JobState, Snapshot
from faro.policies.base import Policy, ceil_int

UP, DOWN, NONE = 1, -1, 0


def step_counter(counter: int, latency_ms: float, slo_ms: float, up_ticks: int,
                 down_ticks: int) -> tuple[int, int]:
    """One tick of the reactive counter: returns (new counter, signal UP/DOWN/NONE)."""
    if latency_ms > slo_ms:
        counter = counter + 1 if counter >= 0 else 1
        if counter >= up_ticks:
            return 0, UP
    else:
        counter = counter - 1 if counter <= 0 else -1
        if counter <= -down_ticks:
            return 0, DOWN
    return counter, NONE


class Reactive(Policy):
    """Base of AIAD, Oneshot and AI: the counter plus ``upscale``/``downscale`` rules."""

    interval_s = 10.0
    #: AI in hybrid policies acts only on jobs whose executor is idle
    only_idle_executors = False
    #: a downscale signal that does nothing also keeps the counter running (AI)
    ignore_downscale = False

    PARAMS = {
        "upscale_ticks": {"type": "integer", "minimum": 1, "default": 3,
                          "description": "ticks above the SLO before an upscale"},
        "downscale_ticks": {"type": "integer", "minimum": 1, "default": 60,
                            "description": "ticks below the SLO before a downscale"},
        "only_idle_executors": {"type": "boolean",
                                "description": "act only on jobs whose executor is idle "
                                               "(default: the class's)"},
    }

    def __init__(self, params: Mapping[str, Any] | None = None, *, jobs: Sequence[str] = (), quota: int = 0):
        super().__init__(params, jobs=jobs, quota=quota)
        self.up_ticks = int(self.params["upscale_ticks"])
        self.down_ticks = int(self.params["downscale_ticks"])
        self.only_idle_executors = bool(self.params.get("only_idle_executors", self.only_idle_executors))
        self.counters: dict[str, int] = {j: 0 for j in self.jobs}

    def reset(self) -> None:
        for j in self.counters:
            self.counters[j] = 0

    def decide(self, snapshot: Snapshot) -> list[Action]:
        actions = []
        for job in snapshot.jobs:
            if self.only_idle_executors and job.executor_busy:
                continue
            old = self.counters.get(job.name, 0)
            counter, signal = step_counter(old, job.avg_latency_ms, job.slo_ms, self.up_ticks,
                                           self.down_ticks)
            if signal == DOWN and self.ignore_downscale:
                counter = old - 1 if old <= 0 else -1
                signal = NONE
            self.counters[job.name] = counter
            if signal == UP:
                actions.append(self.upscale(job, snapshot))
            elif signal == DOWN:
                actions.append(self.downscale(job, snapshot))
        return [a for a in actions if a is not None]

    def upscale(self, job: JobState, snapshot: Snapshot) -> Action | None:
        raise NotImplementedError

    def downscale(self, job: JobState, snapshot: Snapshot) -> Action | None:
        raise NotImplementedError


class AIAD(Reactive):
    """Additive increase, additive decrease: +1 / -1 replica."""

    def upscale(self, job, snapshot):
        return Action(job.name, delta=+1, source="aiad")

    def downscale(self, job, snapshot):
        return Action(job.name, delta=-1, source="aiad")


class AI(AIAD):
    """Additive increase only: the reactive layer of MArk and Faro."""

    ignore_downscale = True

    def downscale(self, job, snapshot):  # pragma: no cover - never emitted
        return None


class Oneshot(Reactive):
    """HPA-like: new count = ceil(current * avg_latency / SLO), both directions."""

    def _target(self, job: JobState) -> int:
        return max(1, ceil_int(job.replicas * job.avg_latency_ms / job.slo_ms))

    def upscale(self, job, snapshot):
        return Action(job.name, target=self._target(job), source="oneshot")

    def downscale(self, job, snapshot):
        return Action(job.name, target=self._target(job), source="oneshot")


class FairShare(Policy):
    """Static floor(quota / N) replicas per job; never acts."""

    interval_s = math.inf

    @property
    def first_at_s(self) -> float:
        return math.inf

    def initial_replicas(self) -> dict[str, int]:
        n = max(1, self.quota // max(1, len(self.jobs)))
        return {j: n for j in self.jobs}

    def layers(self):
        return []

    def decide(self, snapshot):  # pragma: no cover - no layers
        return []
