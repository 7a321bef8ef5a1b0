"""Faro's cluster-wide replica allocation (docs/model.md section 4).

Pipeline of :func:`solve`:

1. Relaxation: maximise the objective over real-valued replica counts ``x``
   (``sum x <= quota``, ``x_i >= min``) with COBYLA (or SLSQP, or differential
   evolution for comparison) starting from the current counts.  Penalty
   variants add one admission variable per job, scaled to 0-100 inside the
   optimiser (as in the artifact, which sets COBYLA's step size relative to it)
   and reported as a rate in [0, 1].
2. Round every count up (a plain ceiling: COBYLA's 1.0000000002 at a bound becomes 2);
   while over the quota remove the replica whose removal hurts the objective least,
   candidates compared on the objective rounded to 4 decimals (ties: the job whose
   count ends closest to its current one, then the lowest index).
3. Adjust (optional): for each job in turn remove single replicas while the
   objective worsens by at most ``tol``; if anything was removed, offer all
   leftover CPU to each job in turn, give it to the first job for which it
   improves the objective by more than ``tol``, and adjust again (at most
   ``4 quota + 4`` rounds, a safety limit that no decision of the main experiment
   reaches).

Steps 2-3 work on integers, so job utilities are tabulated once for every
replica count 0..quota (one vectorised call) and the passes are table look-ups.
Admission rates found by the relaxation are kept fixed during steps 2-3.

:func:`solve_hierarchical` splits many jobs into groups, :func:`solve_with_slack`
escalates the forecast quantile while CPU is left unused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import LinearConstraint, differential_evolution, minimize

from faro.solver.fastpath import job_utilities_1d
from faro.solver.latency import RHO_CAP
from faro.solver.names import METHODS
from faro.solver.objectives import Objective, apply_admission, combine, parse_objective, total_utility
from faro.solver.utility import job_utilities

log = logging.getLogger("faro.solver")

#: the artifact's admission variables run 0..ADMISSION_SCALE inside the optimiser
ADMISSION_SCALE: float = 100.0
#: objective tolerance of the adjust pass (docs/model.md section 4: 1e-4)
ADJUST_TOL: float = 1e-4
#: adjust rounds per CPU of quota before giving up (a safety limit against a cycle)
ADJUST_MAX_ROUNDS_PER_CPU: int = 4
#: removal candidates are compared on the objective rounded to this many decimals (docs/model.md section 4)
REMOVAL_DECIMALS: int = 4


@dataclass(frozen=True, slots=True)
class SolveResult:
    """Outcome of one cluster-wide decision."""

    #: integer replicas per job
    replicas: NDArray[np.int64]
    #: admission rate per job in [0, 1] (Penalty variants), else None
    admission: NDArray[np.float64] | None
    #: objective of the integer allocation
    objective: float
    #: objective evaluations of the relaxation (vectors, batched or not)
    n_evals: int
    #: wall time of the whole decision
    seconds: float
    #: real-valued solution of the relaxation
    relaxed_x: NDArray[np.float64] | None = None
    #: forecast quantile the result was solved at (slack escalation), else None
    quantile: float | None = None


@dataclass(slots=True)
class _Problem:
    rates: NDArray[np.float64]
    current: NDArray[np.float64]
    quota: int
    proc: NDArray[np.float64]
    slo: NDArray[np.float64]
    min_r: NDArray[np.int64]
    objective: Objective
    relaxed: bool
    cold_start: bool
    mdc: bool
    rho_cap: float
    n_evals: int = 0

    @property
    def n(self) -> int:
        return int(self.rates.shape[0])

    def utilities(self, x: ArrayLike) -> NDArray[np.float64]:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:  # compiled single-vector path (COBYLA/SLSQP calls)
            return job_utilities_1d(x, self.rates, self.proc, self.slo, self.current, self.relaxed,
                                    self.cold_start, self.mdc, self.rho_cap)
        return job_utilities(
            x, self.rates, proc_s=self.proc, slo_s=self.slo, current=self.current,
            relaxed=self.relaxed, cold_start=self.cold_start, mdc=self.mdc, rho_cap=self.rho_cap,
        )

    def continuous(self, z: NDArray[np.float64]) -> NDArray[np.float64]:
        """Objective of optimiser vector(s) ``z`` (``(..., n)`` or ``(..., 2n)`` with admission)."""
        z = np.asarray(z, dtype=np.float64)
        self.n_evals += int(np.prod(z.shape[:-1], dtype=np.int64))
        x = z[..., : self.n]
        adm = z[..., self.n :] / ADMISSION_SCALE if self.objective.penalty else None
        return self.objective.value(self.utilities(x), adm)

    def table(self) -> NDArray[np.float64]:
        """Job utilities for every integer count: shape (n, quota + 1)."""
        k = np.arange(self.quota + 1, dtype=np.float64)
        grid = np.repeat(k[:, None], self.n, axis=1)
        return self.utilities(grid).T.copy()


def _as_jobs(v: ArrayLike, n: int, name: str) -> NDArray[np.float64]:
    arr = np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _make_problem(
    rates: ArrayLike, current: ArrayLike, quota: int, objective: str | Objective,
    slo_s: ArrayLike, proc_s: ArrayLike, min_replicas: int | ArrayLike, relaxed: bool,
    cold_start: bool, mdc: bool, fair_weight: float, rho_cap: float,
) -> _Problem:
    r = np.atleast_2d(np.asarray(rates, dtype=np.float64))
    if r.ndim != 2 or not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("rates must be a finite, non-negative (n_jobs, n_steps) array")
    if r.shape[1] == 0:
        raise ValueError("rates need at least one forecast step")
    n = r.shape[0]
    cur = _as_jobs(current, n, "current")
    min_r = np.broadcast_to(np.asarray(min_replicas, dtype=np.int64), (n,)).copy()
    if int(quota) < int(min_r.sum()):
        raise ValueError(f"quota {quota} is below the minimum total {int(min_r.sum())}")
    obj = objective if isinstance(objective, Objective) else parse_objective(objective,
                                                                             fair_weight=fair_weight)
    return _Problem(
        rates=r, current=cur, quota=int(quota), proc=_as_jobs(proc_s, n, "proc_s"),
        slo=_as_jobs(slo_s, n, "slo_s"), min_r=min_r, objective=obj, relaxed=relaxed,
        cold_start=cold_start, mdc=mdc, rho_cap=rho_cap,
    )


def _relax(
    prob: _Problem, method: str, rhobeg: float, maxiter: int, tol: float | None,
    x0_admission: NDArray[np.float64], seed: int, de_maxiter: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Solve the relaxation; returns (real x, admission in [0,1] or None)."""
    n, q = prob.n, float(prob.quota)
    pen = prob.objective.penalty
    x0 = prob.current.copy()
    if pen:
        x0 = np.concatenate([x0, ADMISSION_SCALE * x0_admission])
    min_f = prob.min_r.astype(np.float64)

    def neg(z: NDArray[np.float64]) -> float:
        return -float(prob.continuous(z))

    if method == "cobyla":
        def cons(z: NDArray[np.float64]) -> NDArray[np.float64]:
            x = z[:n]
            parts = [np.array([q - x.sum()]), x - min_f]
            if pen:
                a = z[n:]
                parts += [a, ADMISSION_SCALE - a]
            return np.concatenate(parts)

        opts: dict[str, Any] = {"rhobeg": rhobeg, "maxiter": maxiter}
        res = minimize(neg, x0, method="COBYLA", constraints=[{"type": "ineq", "fun": cons}],
                       tol=tol, options=opts)
        z = res.x
    elif method == "slsqp":
        ones = np.concatenate([np.ones(n), np.zeros(n if pen else 0)])
        bounds = [(float(m), q) for m in min_f] + ([(0.0, ADMISSION_SCALE)] * n if pen else [])
        res = minimize(neg, np.clip(x0, [b[0] for b in bounds], [b[1] for b in bounds]),
                       method="SLSQP", bounds=bounds, tol=tol,
                       constraints=[{"type": "ineq", "fun": lambda z: q - ones @ z, "jac": lambda z: -ones}],
                       options={"maxiter": maxiter})
        z = res.x
    elif method == "de":
        bounds = [(float(m), q) for m in min_f] + ([(0.0, ADMISSION_SCALE)] * n if pen else [])
        a_mat = np.concatenate([np.ones(n), np.zeros(n if pen else 0)])[None, :]

        def neg_batch(zz: NDArray[np.float64]) -> NDArray[np.float64]:
            return -prob.continuous(zz.T)  # scipy passes (n_params, S)

        res = differential_evolution(
            neg_batch, bounds, constraints=LinearConstraint(a_mat, -np.inf, q), seed=seed,
            maxiter=de_maxiter, polish=False, vectorized=True, updating="deferred", tol=tol or 0.01,
        )
        z = res.x
    else:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    x = np.asarray(z[:n], dtype=np.float64)
    adm = np.clip(np.asarray(z[n:]) / ADMISSION_SCALE, 0.0, 1.0) if pen else None
    return x, adm


class _IntObjective:
    """Objective of integer allocations by table look-up (fixed admission rates)."""

    def __init__(self, prob: _Problem, admission: NDArray[np.float64] | None) -> None:
        self.prob = prob
        self.table = prob.table()
        self.adm = admission
        self.rows = np.arange(prob.n)

    def __call__(self, xs: NDArray[np.int64]) -> NDArray[np.float64]:
        xs = np.clip(xs, 0, self.prob.quota)
        u = self.table[self.rows, xs]
        return self.prob.objective.value(u, self.adm)


def _round_to_quota(x_real: NDArray[np.float64], prob: _Problem, f: _IntObjective) -> NDArray[np.int64]:
    """Round up, then remove the least harmful replica while over the quota."""
    others_min = prob.min_r.sum() - prob.min_r
    x = np.ceil(np.nan_to_num(x_real, nan=1.0)).astype(np.int64)
    x = np.clip(x, prob.min_r, prob.quota - others_min)
    cur = prob.current
    eye = np.eye(prob.n, dtype=np.int64)
    while x.sum() > prob.quota:
        movable = np.flatnonzero(x > prob.min_r)
        cands = x[None, :] - eye[movable]
        vals = np.round(f(cands), REMOVAL_DECIMALS)
        tied = movable[vals == vals.max()]
        dist = np.abs(x[tied] - 1 - cur[tied])
        j = tied[np.argmin(dist)]  # argmin takes the lowest index among equal distances
        x[j] -= 1
    return x


def _adjust(x: NDArray[np.int64], prob: _Problem, f: _IntObjective, tol: float) -> NDArray[np.int64]:
    """The adjust pass (docs/model.md section 4): shed replicas that do not pay, re-offer the freed CPU."""
    x = x.copy()
    for _ in range(ADJUST_MAX_ROUNDS_PER_CPU * prob.quota + 4):
        removed = False
        val = float(f(x))
        for i in range(prob.n):
            while x[i] > prob.min_r[i]:
                x[i] -= 1
                new = float(f(x))
                if new >= val - tol:
                    val, removed = new, True
                else:
                    x[i] += 1
                    break
        if not removed:
            return x
        left = prob.quota - int(x.sum())
        if left <= 0:
            return x
        offered = False
        for i in range(prob.n):
            x[i] += left
            if float(f(x)) > val + tol:
                offered = True
                break
            x[i] -= left
        if not offered:
            return x
    log.warning("adjust: no fixed point after %d rounds (quota %d); keeping %s", ADJUST_MAX_ROUNDS_PER_CPU
                * prob.quota + 4, prob.quota, x.tolist())
    return x


def solve(
    rates: ArrayLike,
    current: ArrayLike,
    quota: int,
    *,
    objective: str | Objective,
    slo_s: ArrayLike,
    proc_s: ArrayLike,
    method: str = "cobyla",
    relaxed: bool = True,
    cold_start: bool = False,
    rhobeg: float = 3.0,
    min_replicas: int | ArrayLike = 1,
    fair_weight: float = 0.0,
    adjust: bool = True,
    adjust_tol: float = ADJUST_TOL,
    mdc: bool = True,
    rho_cap: float = RHO_CAP,
    current_admission: ArrayLike = 1.0,
    maxiter: int = 1000,
    tol: float | None = None,
    seed: int = 0,
    de_maxiter: int = 100,
) -> SolveResult:
    """One Faro decision: replicas (and admission rates) for every job.

    ``rates`` is ``(n_jobs, n_steps)`` requests/s (the forecast), ``current`` the
    replicas now, ``quota`` the CPUs for workers (1 CPU per replica).
    ``objective`` is one of ``sum``, ``fair``, ``fair_sum``, ``penalty_sum``,
    ``penalty_fair_sum`` (``faro_`` prefix allowed); ``fair_weight`` weights U in
    ``fair``.  ``cold_start`` should be True when the cluster has no free CPU.
    ``relaxed=False`` uses the step utility; ``adjust=False`` and ``mdc=False``
    switch off the adjust pass and the M/D/c halving (ablation).
    ``tol``/``maxiter`` go to the relaxation's optimiser (scipy defaults if None);
    ``seed``/``de_maxiter`` only affect ``method="de"``.
    """
    t0 = time.perf_counter()
    prob = _make_problem(rates, current, quota, objective, slo_s, proc_s, min_replicas,
                         relaxed, cold_start, mdc, fair_weight, rho_cap)
    adm0 = np.clip(_as_jobs(current_admission, prob.n, "current_admission"), 0.0, 1.0)
    if prob.quota == int(prob.min_r.sum()):
        x_real, adm = prob.min_r.astype(np.float64), (adm0 if prob.objective.penalty else None)
    else:
        x_real, adm = _relax(prob, method, rhobeg, maxiter, tol, adm0, seed, de_maxiter)
    f = _IntObjective(prob, adm)
    x = _round_to_quota(x_real, prob, f)
    if adjust:
        x = _adjust(x, prob, f, adjust_tol)
    return SolveResult(
        replicas=x, admission=adm, objective=float(f(x)), n_evals=prob.n_evals,
        seconds=time.perf_counter() - t0, relaxed_x=x_real,
    )


def evaluate(
    replicas: ArrayLike,
    rates: ArrayLike,
    *,
    objective: str | Objective,
    slo_s: ArrayLike,
    proc_s: ArrayLike,
    current: ArrayLike | None = None,
    admission: ArrayLike | None = None,
    relaxed: bool = True,
    cold_start: bool = False,
    mdc: bool = True,
    fair_weight: float = 0.0,
) -> float:
    """Objective of a given allocation (for comparisons and the hierarchical result)."""
    obj = objective if isinstance(objective, Objective) else parse_objective(objective,
                                                                             fair_weight=fair_weight)
    x = np.asarray(replicas, dtype=np.float64)
    u = job_utilities(x, rates, proc_s=proc_s, slo_s=slo_s, current=current, relaxed=relaxed,
                      cold_start=cold_start and current is not None, mdc=mdc)
    return float(obj.value(u, admission))


def hand_out_leftover(
    replicas: ArrayLike,
    rates: ArrayLike,
    quota: int,
    *,
    objective: str | Objective,
    slo_s: ArrayLike,
    proc_s: ArrayLike,
    current: ArrayLike | None = None,
    admission: ArrayLike | None = None,
    relaxed: bool = True,
    cold_start: bool = False,
    mdc: bool = True,
    fair_weight: float = 0.0,
    tol: float = 1e-4,
) -> NDArray[np.int64]:
    """Give CPUs a hierarchical solve left unused, one at a time, to the job whose extra
    replica improves the whole objective most (by more than ``tol``).

    A group solved as one job with summed rates is a pooled queue, which needs fewer
    replicas than its members' separate queues; the inner solves are capped by the
    group's share, so without this pass CPUs stay idle while jobs miss their SLO.
    """
    obj = objective if isinstance(objective, Objective) else parse_objective(objective,
                                                                             fair_weight=fair_weight)
    x = np.asarray(replicas, dtype=np.int64).copy()
    cs = cold_start and current is not None

    def utilities(v: NDArray[np.int64]) -> NDArray[np.float64]:
        u = job_utilities(v.astype(np.float64), rates, proc_s=proc_s, slo_s=slo_s, current=current,
                          relaxed=relaxed, cold_start=cs, mdc=mdc)
        return apply_admission(u, admission) if obj.penalty and admission is not None else np.asarray(u)

    # a job's utility depends on its own count only: keep u(x) and u(x + 1) per job
    u0, u1 = utilities(x), utilities(x + 1)
    best = float(combine(u0, obj.kind, fair_weight=obj.fair_weight))
    while x.sum() < quota:
        vals = _replace_one(u0, u1, obj.kind, obj.fair_weight)
        k = int(np.argmax(vals))
        if vals[k] <= best + tol:
            break
        x[k] += 1
        best = float(vals[k])
        u0[k] = u1[k]
        u1[k] = utilities(x + np.eye(len(x), dtype=np.int64)[k])[k]
    return x


def _replace_one(u0: NDArray[np.float64], u1: NDArray[np.float64], kind: str,
                 fair_weight: float) -> NDArray[np.float64]:
    """The objective when job j's utility goes from u0[j] to u1[j], for every j at once."""
    total = total_utility(u0) - u0 + u1
    if kind == "sum":
        return total
    n = len(u0)
    order = np.argsort(u0, kind="stable")
    lo1, lo2 = u0[order[0]], u0[order[1]] if n > 1 else np.inf
    hi1, hi2 = u0[order[-1]], u0[order[-2]] if n > 1 else -np.inf
    idx = np.arange(n)
    min_others = np.where(idx == order[0], lo2, lo1)
    max_others = np.where(idx == order[-1], hi2, hi1)
    spread = np.minimum(min_others, u1) - np.maximum(max_others, u1)
    if kind == "fair":
        return fair_weight * total + spread
    return total + n * (spread + 1.0)


def group_members(n_jobs: int, groups: int, grouping: str = "contiguous") -> list[NDArray[np.int64]]:
    """Job indices of each group: contiguous blocks (``array_split``) or round robin."""
    g = max(1, min(int(groups), n_jobs))
    idx = np.arange(n_jobs)
    if grouping == "contiguous":
        return [a.astype(np.int64) for a in np.array_split(idx, g)]
    if grouping == "round_robin":
        return [idx[k::g].astype(np.int64) for k in range(g)]
    raise ValueError(f"unknown grouping {grouping!r}")


def solve_hierarchical(
    rates: ArrayLike,
    current: ArrayLike,
    quota: int,
    *,
    groups: int = 10,
    grouping: str = "contiguous",
    objective: str | Objective,
    slo_s: ArrayLike,
    proc_s: ArrayLike,
    min_replicas: int | ArrayLike = 1,
    **kwargs: Any,
) -> SolveResult:
    """Two-level Faro decision for many jobs.

    Jobs are split into ``groups`` groups; each group is solved as one job with
    the summed rates (its processing time and SLO are the members' means, its
    minimum the sum of theirs); then each group's CPUs are split among its jobs
    by solving inside the group.  Totals never exceed ``quota``: each inner
    solve is bounded by its group's share.  Other keyword arguments go to
    :func:`solve` at both levels.
    """
    t0 = time.perf_counter()
    r = np.atleast_2d(np.asarray(rates, dtype=np.float64))
    n = r.shape[0]
    cur = _as_jobs(current, n, "current")
    proc = _as_jobs(proc_s, n, "proc_s")
    slo = _as_jobs(slo_s, n, "slo_s")
    min_r = np.broadcast_to(np.asarray(min_replicas, dtype=np.int64), (n,)).copy()
    members = group_members(n, groups, grouping)
    g_rates = np.stack([r[m].sum(axis=0) for m in members])
    top_kwargs = {k: v for k, v in kwargs.items() if k != "current_admission"}
    top = solve(
        g_rates, np.array([cur[m].sum() for m in members]), quota, objective=objective,
        slo_s=np.array([slo[m].mean() for m in members]), proc_s=np.array([proc[m].mean() for m in members]),
        min_replicas=np.array([min_r[m].sum() for m in members]), **top_kwargs,
    )
    replicas = np.zeros(n, dtype=np.int64)
    adm_all = np.ones(n)
    any_adm = False
    n_evals = top.n_evals
    cur_adm = np.broadcast_to(np.asarray(kwargs.get("current_admission", 1.0), dtype=np.float64), (n,))
    inner_kwargs = {k: v for k, v in kwargs.items() if k != "current_admission"}
    for g, m in enumerate(members):
        inner = solve(r[m], cur[m], int(top.replicas[g]), objective=objective, slo_s=slo[m],
                      proc_s=proc[m], min_replicas=min_r[m], current_admission=cur_adm[m], **inner_kwargs)
        replicas[m] = inner.replicas
        n_evals += inner.n_evals
        if inner.admission is not None:
            adm_all[m] = inner.admission
            any_adm = True
    adm = adm_all if any_adm else None
    model = dict(relaxed=kwargs.get("relaxed", True), cold_start=kwargs.get("cold_start", False),
                 mdc=kwargs.get("mdc", True), fair_weight=kwargs.get("fair_weight", 0.0))
    replicas = hand_out_leftover(replicas, r, quota, objective=objective, slo_s=slo, proc_s=proc, current=cur,
                                 admission=adm, **model)
    value = evaluate(replicas, r, objective=objective, slo_s=slo, proc_s=proc, current=cur, admission=adm,
                     **model)
    return SolveResult(replicas=replicas, admission=adm, objective=value, n_evals=n_evals,
                       seconds=time.perf_counter() - t0, relaxed_x=None)


def solve_auto(rates: ArrayLike, current: ArrayLike, quota: int, *, groups: int = 10,
               **kwargs: Any) -> SolveResult:
    """:func:`solve_hierarchical` when there are more than ``groups`` jobs, else :func:`solve`."""
    n = np.atleast_2d(np.asarray(rates)).shape[0]
    if n > groups:
        return solve_hierarchical(rates, current, quota, groups=groups, **kwargs)
    return solve(rates, current, quota, **kwargs)


def solve_with_slack(
    rates_at: Callable[[float], ArrayLike],
    current: ArrayLike,
    quota: int,
    *,
    start_quantile: float = 0.6,
    step: float = 0.1,
    max_quantile: float = 0.9,
    solver: Callable[..., SolveResult] = solve_auto,
    **kwargs: Any,
) -> SolveResult:
    """Slack escalation of the forecast quantile (the paper's final configuration).

    ``rates_at(q)`` returns the ``(n_jobs, n_steps)`` rates forecast at quantile
    ``q``.  Solve at ``start_quantile``; while the solution leaves CPU unused and
    the quantile is below ``max_quantile``, raise it by ``step`` and re-solve.
    Returns the highest-quantile solution that still left CPU unused (a re-solve
    that fills the quota is discarded), with ``quantile`` set; ``seconds`` and
    ``n_evals`` cover all solves.
    """
    t0 = time.perf_counter()
    k = 0
    q = float(start_quantile)
    best = solver(rates_at(q), current, quota, **kwargs)
    best_q, evals = q, best.n_evals
    while int(best.replicas.sum()) < quota and q < max_quantile - 1e-9:
        k += 1
        q = round(start_quantile + k * step, 10)
        res = solver(rates_at(q), current, quota, **kwargs)
        evals += res.n_evals
        if int(res.replicas.sum()) >= quota:
            break
        best, best_q = res, q
    return replace(best, quantile=best_q, n_evals=evals, seconds=time.perf_counter() - t0)


__all__: Sequence[str] = (
    "SolveResult", "solve", "solve_hierarchical", "solve_auto", "solve_with_slack", "evaluate",
    "group_members", "METHODS", "ADJUST_TOL", "ADMISSION_SCALE",
)
