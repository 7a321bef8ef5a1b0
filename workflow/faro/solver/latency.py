"""Latency model of Faro's cluster-wide solver (docs/model.md section 4).

A job with arrival rate ``lam`` (requests/s), per-request processing time ``p``
(seconds) and ``x`` real-valued replicas is modelled as an M/M/c queue whose
p99 waiting time is halved to approximate M/D/c.  Utilisation is capped at
0.95 so the estimate stays finite; the excess load is accounted for by a
weight ``w`` that stretches the latency instead.

Every function is vectorised: arguments broadcast against each other, so one
call evaluates all jobs, forecast steps and candidate allocations at once (the
solver's hot path).  The Erlang C sums use the regularised incomplete gamma
function and a log-space Poisson term, scaled by ``exp(-a)``: this is exact,
needs no loop over replicas and never overflows for large ``c``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaincc, gammaln, xlogy

#: utilisation above which the arrival rate is capped (docs/model.md section 4: 0.95)
RHO_CAP: float = 0.95
#: stand-in for a waiting probability of exactly zero (docs/model.md section 4: 1e-4)
PW_FLOOR: float = 1e-4


def erlang_c(a: ArrayLike, c: ArrayLike, rho: ArrayLike) -> NDArray[np.float64]:
    """Probability of waiting ``Pw`` of an M/M/c queue.

    ``a`` is the offered load (lambda * p), ``c`` the integer number of servers
    and ``rho`` the utilisation used in the ``F / (1 - rho)`` term (Faro passes
    the *capped* ``lambda' p / x``, always <= 0.95, so nothing divides by zero).
    With ``S = sum_{k<c} a^k/k!`` and ``F = a^c/c!``:
    ``P0 = 1 / (S + F/(1-rho))`` and ``Pw = 1 - S P0 = T / (S + T)`` with
    ``T = F/(1-rho)``.  The second form is the same number without the
    cancellation of ``1 - S P0``; both sums are computed scaled by ``exp(-a)``
    (a Poisson CDF and pmf), which cancels in the ratio.
    """
    a = np.asarray(a, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    rho = np.asarray(rho, dtype=np.float64)
    a, c, rho = np.broadcast_arrays(a, c, rho)
    pos = c >= 1
    # S e^{-a} = P(Poisson(a) <= c - 1) = Q(c, a); the empty sum (c = 0) is 0.
    s = np.where(pos, gammaincc(np.where(pos, c, 1.0), a), 0.0)
    # F e^{-a} = e^{-a} a^c / c!  (xlogy makes 0^0 = 1)
    f = np.exp(xlogy(c, a) - a - gammaln(c + 1.0))
    t = f / (1.0 - rho)
    den = s + t
    return np.divide(t, den, out=np.ones_like(t), where=den > 0)


def mdc_p99_latency(
    lam: ArrayLike,
    x: ArrayLike,
    proc_s: ArrayLike,
    *,
    rho_cap: float = RHO_CAP,
    mdc: bool = True,
) -> NDArray[np.float64]:
    """Estimated p99 latency (seconds) of a job with ``x`` real-valued replicas.

    Follows docs/model.md section 4: ``rho = lam p / x``; above ``rho_cap`` the rate
    is capped to ``lam' = rho_cap x / p`` and ``w = lam'/lam`` (else ``lam' =
    lam``, ``w = 1``); Erlang C with ``a = lam' p``, ``c = floor(x)`` and the
    capped ``rho' = lam' p / x``; ``Pw = 0`` is replaced by 1e-4;
    ``t99 = max(0, ln(100 Pw) / (x/p - lam'))`` and
    ``L = (t99/2 + p) / w`` (``mdc=False`` keeps the M/M/c wait ``t99`` instead
    of halving it, for the ablation).  ``x <= 0`` gives ``inf`` (utility 0).
    """
    lam = np.asarray(lam, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    p = np.asarray(proc_s, dtype=np.float64)
    lam, x, p = np.broadcast_arrays(lam, x, p)
    ok = x > 0
    xs = np.where(ok, x, 1.0)
    lam_max = rho_cap * xs / p
    capped = lam * p / xs > rho_cap
    lam_c = np.where(capped, lam_max, lam)
    w = np.where(capped, np.divide(lam_c, lam, out=np.ones_like(lam), where=lam > 0), 1.0)
    a = lam_c * p
    rho_c = a / xs
    pw = erlang_c(a, np.floor(xs), rho_c)
    pw = np.where(pw == 0.0, PW_FLOOR, pw)
    t99 = np.maximum(0.0, np.log(100.0 * pw) / (xs / p - lam_c))
    wait = t99 / 2.0 if mdc else t99
    lat = (wait + p) / w
    return np.where(ok, lat, np.inf)
