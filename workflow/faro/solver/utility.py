"""Per-job utilities of Faro's solver (docs/model.md section 4).

A job's utility is the mean, over the forecast steps, of a per-step utility of
its estimated p99 latency: the "relaxed" (inverse) utility ``min(1, SLO/L)``,
which gives the optimiser a slope to follow, or the step utility
``1[L <= SLO]``.  The admission penalty of the Penalty variants is here too.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from faro.solver.fastpath import job_utilities_2d
from faro.solver.latency import RHO_CAP

#: knots of the linear admission penalty pen(drop fraction) (docs/model.md section 4)
PENALTY_KNOTS_X: tuple[float, ...] = (0.0, 0.001, 0.03, 0.08, 1.0)
PENALTY_KNOTS_Y: tuple[float, ...] = (0.0, 0.0, 0.25, 0.5, 1.0)


def relaxed_utility(latency_s: ArrayLike, slo_s: ArrayLike) -> NDArray[np.float64]:
    """``min(1, SLO/L)``; an infinite latency gives 0."""
    lat = np.asarray(latency_s, dtype=np.float64)
    return np.minimum(1.0, np.asarray(slo_s, dtype=np.float64) / lat)


def step_utility(latency_s: ArrayLike, slo_s: ArrayLike) -> NDArray[np.float64]:
    """``1[L <= SLO]`` as floats."""
    return (np.asarray(latency_s) <= np.asarray(slo_s)).astype(np.float64)


def admission_penalty(drop: ArrayLike) -> NDArray[np.float64]:
    """pen(d): linear through (0,0), (0.001,0), (0.03,0.25), (0.08,0.5), (1,1).

    ``drop`` is the fraction of requests dropped, ``1 - admission_rate``; values
    outside [0, 1] are clamped.
    """
    d = np.clip(np.asarray(drop, dtype=np.float64), 0.0, 1.0)
    return np.interp(d, PENALTY_KNOTS_X, PENALTY_KNOTS_Y)


def effective_replicas(
    x: ArrayLike, current: ArrayLike, n_steps: int, *, cold_start: bool
) -> NDArray[np.float64]:
    """Replicas in effect at each forecast step, shape ``x.shape + (n_steps,)``.

    With ``cold_start`` (the cluster has no free CPU, so new pods must wait) the
    first step of an upscaled job (``x > current``) still runs on its old count.
    The rule is skipped for a single-step input.
    """
    x = np.asarray(x, dtype=np.float64)
    eff = np.repeat(x[..., None], n_steps, axis=-1)
    if cold_start and n_steps > 1:
        cur = np.broadcast_to(np.asarray(current, dtype=np.float64), x.shape)
        eff[..., 0] = np.where(x > cur, cur, x)
    return eff


def job_utilities(
    x: ArrayLike,
    rates: ArrayLike,
    *,
    proc_s: ArrayLike,
    slo_s: ArrayLike,
    current: ArrayLike | None = None,
    relaxed: bool = True,
    cold_start: bool = False,
    mdc: bool = True,
    rho_cap: float = RHO_CAP,
) -> NDArray[np.float64]:
    """Utility of every job for replica vector(s) ``x``.

    ``x`` has shape ``(..., n_jobs)`` (any leading batch shape, e.g. candidate
    allocations), ``rates`` ``(n_jobs, n_steps)`` in requests/s, ``proc_s`` and
    ``slo_s`` one value per job (or scalars).  Returns shape ``(..., n_jobs)``:
    the mean over steps of the per-step utility; a job with ``x <= 0`` gets 0.
    Computed by the compiled kernel (:mod:`faro.solver.fastpath`), identical bits on
    every machine.
    """
    x = np.asarray(x, dtype=np.float64)
    rates = np.ascontiguousarray(np.atleast_2d(np.asarray(rates, dtype=np.float64)))
    n_jobs = rates.shape[0]
    proc = np.ascontiguousarray(np.broadcast_to(np.asarray(proc_s, dtype=np.float64), (n_jobs,)))
    slo = np.ascontiguousarray(np.broadcast_to(np.asarray(slo_s, dtype=np.float64), (n_jobs,)))
    xs = np.ascontiguousarray(x.reshape(-1, n_jobs))
    cur = xs if current is None else np.ascontiguousarray(
        np.broadcast_to(np.asarray(current, dtype=np.float64), x.shape).reshape(-1, n_jobs))
    u = job_utilities_2d(xs, rates, proc, slo, cur, relaxed, cold_start and current is not None, mdc,
                         float(rho_cap))
    return u.reshape(x.shape)
