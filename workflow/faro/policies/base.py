"""The policy interface.

A policy is any object with ``interval_s`` (seconds between decisions),
``first_at_s`` (time of its first decision) and ``decide(snapshot) -> list[Action]``.
Subclass :class:`Policy` for defaults.  A *hybrid* policy (MArk, Faro) is made of
several layers with their own intervals: it returns them from ``layers()``; the
controller calls every layer when it is due, in the order returned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from faro.control.types import Action, Snapshot
from faro.policies.params import resolve_params


@runtime_checkable
class Layer(Protocol):
    interval_s: float

    @property
    def first_at_s(self) -> float: ...

    def decide(self, snapshot: Snapshot) -> list[Action]: ...


class Policy:
    """Base class for policies: one layer deciding every ``interval_s`` seconds.

    ``params`` come from the policy's YAML file (``config/policies/<name>.yaml``), checked
    against the class's declared ``PARAMS`` (defaults filled in) before ``self.params`` is set.
    ``jobs`` are the job names, ``quota`` the CPU quota of the cell.
    """

    #: seconds between decisions
    interval_s: float = 10.0
    #: declared parameters (JSON-schema properties; subclasses add theirs, see faro.policies.params)
    PARAMS: dict[str, dict[str, Any]] = {
        "interval_s": {"type": "number", "exclusiveMinimum": 0,
                       "description": "seconds between decisions (default: the class's interval_s)"},
    }
    #: replica counts at t = 0 (None: every job starts with 1 replica)
    def __init__(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        jobs: Sequence[str] = (),
        quota: int = 0,
    ) -> None:
        self.params = resolve_params(type(self), params)  # unknown/out-of-range keys fail here
        self.jobs = list(jobs)
        self.quota = int(quota)
        if "interval_s" in self.params:
            self.interval_s = float(self.params["interval_s"])

    @property
    def first_at_s(self) -> float:
        """First decision: one interval in, but at most 60 s (docs/model.md section 3)."""
        return self.interval_s if self.interval_s <= 60 else 60.0

    def initial_replicas(self) -> dict[str, int]:
        """Replicas each job starts with (before the trace replay begins)."""
        return {j: 1 for j in self.jobs}

    def bind(self, context: Mapping[str, Any]) -> None:
        """Receive the run's context (``unit_time``, ``data_dir``, ...) before the run starts."""
        self.context = dict(context)

    def layers(self) -> Sequence[Layer]:
        return [self]

    def decide(self, snapshot: Snapshot) -> list[Action]:  # pragma: no cover - abstract
        raise NotImplementedError


def ceil_int(x: float) -> int:
    """ceil() that tolerates float noise (ceil(3.0000000001) is 3)."""
    return int(math.ceil(x - 1e-9))
