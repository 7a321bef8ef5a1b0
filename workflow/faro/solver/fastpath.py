"""Compiled (numba) job utilities: the one implementation every solver decision uses.

COBYLA calls the objective a few hundred times per decision with a single
vector of 10-odd jobs; numpy's per-call overhead dominates there, so this
kernel does the arithmetic of :func:`faro.solver.latency.mdc_p99_latency` in one
loop.  It is also the only implementation on the decision path (the integer
table, the hierarchical hand-out, :func:`faro.solver.utility.job_utilities`):
it uses basic IEEE operations and :func:`faro.numerics.log_scalar` only, without
``fastmath``, so a decision is the same bits on every machine (numpy's
CPU-dispatched ``exp``/``log`` are not; the numpy model in ``latency.py`` stays
for plots and as the tests' cross-check).  The Erlang C
sums use the recursion ``a^k/k! = a^{k-1}/(k-1)! * a/k`` with rescaling, so
large ``c`` neither overflows nor loops more than ``c`` times.  Tests check that
both paths agree.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray

from faro.numerics import log_scalar

_RESCALE = 1e200


@njit(cache=True, fastmath=False)
def _p99_latency(lam: float, x: float, p: float, rho_cap: float, mdc: bool) -> float:
    if x <= 0.0:
        return math.inf
    if lam * p / x > rho_cap:
        lam_c = rho_cap * x / p
        w = lam_c / lam
    else:
        lam_c = lam
        w = 1.0
    a = lam_c * p
    rho_c = a / x
    c = int(math.floor(x))
    s = 0.0
    term = 1.0  # a^k / k!, rescaled together with s
    for k in range(c):
        s += term
        term *= a / (k + 1)
        if s > _RESCALE:
            s /= _RESCALE
            term /= _RESCALE
    t = term / (1.0 - rho_c)
    den = s + t
    pw = t / den if den > 0.0 else 1.0
    if pw == 0.0:
        pw = 1e-4
    t99 = log_scalar(100.0 * pw) / (x / p - lam_c)
    if t99 < 0.0:
        t99 = 0.0
    wait = t99 / 2.0 if mdc else t99
    return (wait + p) / w


@njit(cache=True)
def job_utilities_1d(
    x: NDArray[np.float64],
    rates: NDArray[np.float64],
    proc: NDArray[np.float64],
    slo: NDArray[np.float64],
    current: NDArray[np.float64],
    relaxed: bool,
    cold_start: bool,
    mdc: bool,
    rho_cap: float,
) -> NDArray[np.float64]:
    """Utility of each job for one replica vector ``x`` (see ``job_utilities``)."""
    n, steps = rates.shape
    out = np.zeros(n)
    for i in range(n):
        xi = x[i]
        if not xi > 0.0:  # also catches NaN
            continue
        acc = 0.0
        for t in range(steps):
            xe = xi
            if t == 0 and cold_start and steps > 1 and xi > current[i]:
                xe = current[i]
            lat = _p99_latency(rates[i, t], xe, proc[i], rho_cap, mdc)
            if relaxed:
                acc += min(1.0, slo[i] / lat)
            elif lat <= slo[i]:
                acc += 1.0
        out[i] = acc / steps
    return out


@njit(cache=True)
def job_utilities_2d(
    xs: NDArray[np.float64],
    rates: NDArray[np.float64],
    proc: NDArray[np.float64],
    slo: NDArray[np.float64],
    current: NDArray[np.float64],
    relaxed: bool,
    cold_start: bool,
    mdc: bool,
    rho_cap: float,
) -> NDArray[np.float64]:
    """:func:`job_utilities_1d` for each row of ``xs`` (shape (B, n_jobs)); ``current`` (B, n)."""
    out = np.empty(xs.shape)
    for b in range(xs.shape[0]):
        out[b] = job_utilities_1d(xs[b], rates, proc, slo, current[b], relaxed, cold_start, mdc, rho_cap)
    return out
