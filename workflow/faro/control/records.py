"""Decision records: one row per job and controller tick, the same on every backend.

The :class:`~faro.control.controller.Controller` hands every tick to a
:class:`DecisionRecorder` (when it has one): the snapshot the policy saw, the layers that
decided and their actions, what the controller did with every action it carried out or
retried (its :class:`~faro.control.types.Decision`), and the ledger's free CPUs before and
after.  A policy's own reasoning (its metric, its unbounded recommendation, its mode, a
solver's objective and predicted utility) comes from an ``explain(layer, snapshot)``
callable given by the backend (:func:`faro.policies.explain.explain_layer`), so this module
knows no policy.  Rows are kept as tuples and turned into a pyarrow table with
:data:`faro.model.schema.DECISIONS_SCHEMA` (times in trace seconds, whatever the controller's clock);
live autoscalers flush the table atomically every few ticks (:meth:`DecisionRecorder.flush`),
the simulator once at the end.

A native policy (Ray Serve's own autoscaler on the ``ray`` backend) is only observed: its
autoscaler process builds the same rows itself (``faro.serving.autoscaler.Autoscaler.observe_tick``),
with outcome ``native``, Serve's target as ``replicas`` and ``requested`` and its RUNNING
replicas as ``applied``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from faro.atomic import atomic_path
from faro.control.types import Action, Decision, Snapshot
from faro.model.schema import DECISIONS_SCHEMA

NAN = float("nan")
#: notes a policy's explain() may give per job, with the column each fills
NOTE_COLUMNS = {
    "metric": "policy_metric",
    "desired": "policy_desired",
    "mode": "policy_mode",
    "quantile": "forecast_quantile",
    "forecast_peak_rps": "forecast_peak_rps",
    "objective": "solver_objective",
    "utility": "solver_utility",
    "evals": "solver_evals",
    "seconds": "solver_seconds",
    "binding": "solver_binding",
}
#: the only note column that holds text (the others are numbers or None)
_STRING_NOTES = {"policy_mode": ""}
Explain = Callable[[Any, Snapshot], Mapping[str, Mapping[str, Any]]]


#: the columns of one row, in the order :meth:`DecisionRecorder.record` builds them
_SEEN = ("time_s", "job", "layers", "replicas", "active_replicas", "head_queue", "held_total", "held_max",
         "avg_latency_ms", "arrivals_last_min", "utilization", "executor_busy", "admission_rate")
_NOTES = tuple(NOTE_COLUMNS.values())
_DID = ("n_actions", "source", "requested", "retry", "outcome", "shortfall", "trials_left", "applied",
        "free_cpus_before", "free_cpus_after")
ROW = _SEEN + _NOTES + _DID
_NO_NOTES = tuple("" if c in _STRING_NOTES else None for c in _NOTES)
_NOTE_KEYS = tuple(NOTE_COLUMNS)
_MODE_AT = _NOTE_KEYS.index("mode")


class DecisionRecorder:
    """Collects the decision records of one run (see module doc): one tuple per row, turned
    into columns only when the table is built (cheap enough to leave on in every run)."""

    def __init__(self, policy: str, explain: Explain | None = None) -> None:
        self.policy = str(policy)
        self.explain = explain
        self._rows: list[tuple] = []
        self._busy_prev: dict[str, tuple[float, float]] = {}
        #: controller seconds per trace second (set by the controller): rows are in trace seconds
        self.time_scale = 1.0

    def use_clock(self, time_scale: float) -> None:
        self.time_scale = float(time_scale)

    @property
    def rows(self) -> int:
        return len(self._rows)

    # -- one tick ------------------------------------------------------------------
    def record(
        self,
        now: float,
        snapshot: Snapshot,
        ran: Sequence[tuple[Any, Snapshot, Sequence[Action]]],
        executed: Sequence[Action],
        decisions: Sequence[Decision],
        free_before: int,
        free_after: int,
    ) -> None:
        layers = ",".join(_layer_name(layer) for layer, _s, _a in ran)
        notes: dict[str, tuple] = {}
        if self.explain is not None and ran:
            merged: Mapping[str, Mapping[str, Any]]
            if len(ran) == 1:
                merged = self.explain(ran[0][0], ran[0][1]) or {}
            else:
                acc: dict[str, dict[str, Any]] = {}
                for layer, snap, _acts in ran:
                    for job, note in (self.explain(layer, snap) or {}).items():
                        acc.setdefault(job, {}).update(note)
                merged = acc
            for job, note in merged.items():
                vals = [note.get(k) for k in _NOTE_KEYS]
                mode = vals[_MODE_AT]
                vals[_MODE_AT] = "" if mode is None else str(mode)
                notes[job] = tuple(vals)
        per_job: dict[str, list[tuple[Action, Decision]]] = {}
        if decisions:
            new_ids = {id(a) for _l, _s, acts in ran for a in acts}
            for a, d in zip(executed, decisions, strict=True):
                per_job.setdefault(d.job, []).append((a, d))
        append = self._rows.append
        for j in snapshot.jobs:
            q = j.replica_queues
            arr = j.arrivals_per_min
            seen = (now / self.time_scale, j.name, layers, j.replicas, j.active_replicas, j.head_queue,
                    sum(q), max(q) if q else 0, float(j.avg_latency_ms), int(arr[-1]) if len(arr) else 0,
                    self._utilization(j.name, now, j.busy_s, j.active_replicas), bool(j.executor_busy),
                    float(j.admission_rate))
            pairs = per_job.get(j.name)
            did: tuple[Any, ...]
            if pairs:
                d = pairs[-1][1]
                did = (len(pairs), d.source, int(d.requested), any(id(x) not in new_ids for x, _ in pairs),
                       "+".join(dd.outcome for _, dd in pairs), int(d.requested - d.applied),
                       int(d.trials_left), int(d.applied), free_before, free_after)
            else:
                did = (0, "", None, False, "none", 0, None, j.replicas, free_before, free_after)
            append(seen + notes.get(j.name, _NO_NOTES) + did)

    def _utilization(self, job: str, now: float, busy_s: float, active: int) -> float | None:
        """Busy fraction of the job's active replicas since the previous tick (None: unmeasured);
        ``now`` and ``busy_s`` both on the controller's clock."""
        if busy_s != busy_s:  # NaN: the backend does not measure it
            return None
        prev = self._busy_prev.get(job)
        self._busy_prev[job] = (now, busy_s)
        if prev is None or now <= prev[0] or active <= 0:
            return None
        return (busy_s - prev[1]) / ((now - prev[0]) * active)

    # -- output --------------------------------------------------------------------
    def table(self) -> pa.Table:
        cols: dict[str, Sequence[Any]]
        if self._rows:
            cols = dict(zip(ROW, zip(*self._rows, strict=True), strict=True))
        else:
            cols = {c: () for c in ROW}
        cols["policy"] = [self.policy] * len(self._rows)
        return pa.Table.from_pydict({f.name: list(cols[f.name]) for f in DECISIONS_SCHEMA},
                                    schema=DECISIONS_SCHEMA)

    def flush(self, path: str | os.PathLike) -> None:
        """Write every row so far to ``path``, atomically (the whole file each time)."""
        with atomic_path(path) as tmp:
            pq.write_table(self.table(), tmp, compression="zstd")


def _layer_name(layer: Any) -> str:
    name = getattr(layer, "record_name", None)
    return str(name) if name else type(layer).__name__.lstrip("_").lower()


__all__ = ["DecisionRecorder", "NOTE_COLUMNS"]
