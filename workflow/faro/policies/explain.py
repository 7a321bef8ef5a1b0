"""Why a policy decided what it did: per-job notes for the decision records.

:func:`instrument` prepares a policy for recording and returns the ``explain(layer,
snapshot)`` callable a :class:`faro.control.records.DecisionRecorder` takes:

* a layer with an ``explain(snapshot)`` method (the production policies) explains itself;
* the predictive layer of a hybrid policy (MArk, Faro) is explained from what it used: the
  forecast rates it asked for (seen through a read-only wrapper of ``rates``), and for Faro
  its step log (objective, quantile, solve time, evaluations) plus each job's utility that
  the solver's model predicts for the chosen allocation at those rates;
* any other layer gives no notes (the records still hold what it saw and asked for).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faro.control.types import Snapshot


def instrument(policy) -> Any:
    """Return ``explain(layer, snapshot)`` for ``policy`` (wrapping a hybrid's ``rates``)."""
    rates = getattr(policy, "rates", None)
    if callable(rates) and hasattr(policy, "steps_log"):
        seen: dict = {}

        def recording_rates(snapshot, quantile):
            out = rates(snapshot, quantile)
            seen[(snapshot.time, quantile)] = out
            return out

        policy.rates = recording_rates
        policy.rates_seen = seen
    return explain_layer


def explain_layer(layer, snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    fn = getattr(layer, "explain", None)
    if callable(fn):
        return fn(snapshot)
    owner = getattr(layer, "owner", None)
    if owner is not None and hasattr(owner, "rates_seen"):
        return _hybrid_notes(owner, snapshot)
    return {}


def _hybrid_notes(owner, snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    seen = owner.rates_seen
    last = owner.steps_log[-1] if owner.steps_log else None
    step = last if last is not None and last.get("time") == snapshot.time else None
    q = step.get("quantile") if step else None
    rates = seen.get((snapshot.time, q))
    if rates is None:  # MArk: a point forecast
        keys = [k for k in seen if k[0] == snapshot.time]
        rates = seen[keys[-1]] if keys else None
        q = keys[-1][1] if keys else None
    seen.clear()
    notes: dict[str, dict[str, Any]] = {j.name: {} for j in snapshot.jobs}
    if rates is not None:
        peak = np.asarray(rates).max(axis=1)
        for k, j in enumerate(snapshot.jobs):
            notes[j.name].update(quantile=0.5 if q is None else float(q), forecast_peak_rps=float(peak[k]))
    if step is None:
        return notes
    util = None
    if rates is not None:
        from faro.solver.utility import job_utilities

        kw = getattr(owner, "solver_kw", {})
        util = job_utilities(
            np.asarray(step["replicas"], float), rates,
            proc_s=np.array([j.processing_ms for j in snapshot.jobs]) / 1000.0,
            slo_s=np.array([j.slo_ms for j in snapshot.jobs]) / 1000.0,
            current=np.array([j.replicas for j in snapshot.jobs], float),
            relaxed=bool(kw.get("relaxed", True)), cold_start=snapshot.free_cpus <= 0,
            mdc=bool(kw.get("mdc", True)),
        )
    binding = int(sum(step["replicas"])) >= snapshot.quota
    for k, j in enumerate(snapshot.jobs):
        notes[j.name].update(
            objective=float(step["objective"]), seconds=float(step["seconds"]), binding=binding,
            evals=int(step["n_evals"]) if "n_evals" in step else None,
            utility=None if util is None else float(util[k]), desired=float(step["replicas"][k]),
        )
    return notes
