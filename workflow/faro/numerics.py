"""Machine-independent floating point for everything that decides a run.

Why this module exists.  A run's decisions (forecasts, solver utilities) must come out
bit for bit the same on every machine for one seed.  Three things in numpy and the BLAS do
not: numpy picks its ``exp``/``log``/``log1p``/``expm1`` kernels at run time by CPU feature
(the AVX-512 ones round differently from the baseline ones); OpenBLAS picks its matrix
kernels by core type and thread count (a different summation order and fused multiply-adds);
and LAPACK's ``solve`` sits on top of that BLAS.  Measured here (2026-12-06, AMD EPYC with
AVX-512): with ``NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"`` and
``OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1`` the trained forecaster, its forecasts and
the solver's utility table all changed in their last bits, and a six-hour Faro run changed its
requests.

The fix is at the cause: the functions below use only IEEE-754 basic operations (+, -, x,
/, comparisons, exact scaling by powers of two) in a fixed order, compiled by numba without
``fastmath`` (so LLVM neither reorders sums nor fuses a multiply and an add).  IEEE-754
defines each basic operation's result exactly, so these functions give the same bits on any
machine, CPU generation or thread count; ``tests/test_numerics.py`` runs them in processes with
different numpy CPU features, BLAS core types and numba target CPUs and compares the bits.

- :func:`dlog`, :func:`dexp` follow the classic fdlibm reduction and polynomials (error below
  one unit in the last place; checked against the C library in the tests), :func:`dlog1p` and
  :func:`dexpm1` build on them with the usual correction terms.
- :func:`dmatmul` and :func:`dsolve` are plain loops (sequential sums in index order,
  Gaussian elimination with partial pivoting): the forecaster's least-squares fits are 15 x 15.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

# fdlibm (e_log.c, e_exp.c) constants
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_P1 = 1.66666666666666019037e-01
_P2 = -2.77777777770155933842e-03
_P3 = 6.61375632143793436117e-05
_P4 = -1.65339022054652515390e-06
_P5 = 4.13813679705723846039e-08
_SQRT_HALF = 0.70710678118654752440
_EXP_MAX = 709.782712893383973096
_EXP_MIN = -745.13321910194110842


@njit(cache=True, fastmath=False)
def log_scalar(x: float) -> float:
    """Natural logarithm from basic operations only (fdlibm's method)."""
    if x != x or x < 0.0:
        return math.nan
    if x == 0.0:
        return -math.inf
    if x == math.inf:
        return math.inf
    m, e = math.frexp(x)  # x = m 2^e, m in [0.5, 1): exact
    if m < _SQRT_HALF:
        m = m * 2.0
        e -= 1
    f = m - 1.0  # exact (Sterbenz)
    k = float(e)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    hfsq = 0.5 * f * f
    return k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)


@njit(cache=True, fastmath=False)
def exp_scalar(x: float) -> float:
    """Exponential from basic operations only (fdlibm's method)."""
    if x != x:
        return math.nan
    if x > _EXP_MAX:
        return math.inf
    if x < _EXP_MIN:
        return 0.0
    kf = math.floor(x * _INV_LN2 + 0.5)
    hi = x - kf * _LN2_HI  # exact: kf * _LN2_HI has few significant bits
    lo = kf * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    return math.ldexp(y, int(kf))


@njit(cache=True, fastmath=False)
def log1p_scalar(x: float) -> float:
    """log(1 + x), accurate for small x: log(u) corrected by the rounding of u = 1 + x."""
    if x != x or x < -1.0:
        return math.nan
    if x == -1.0:
        return -math.inf
    if x == math.inf:
        return math.inf
    u = 1.0 + x
    if u == 1.0:
        return x
    return log_scalar(u) - ((u - 1.0) - x) / u


@njit(cache=True, fastmath=False)
def expm1_scalar(x: float) -> float:
    """exp(x) - 1, accurate for small x (Kahan's correction through the logarithm)."""
    if x != x:
        return math.nan
    if x > _EXP_MAX:
        return math.inf
    u = exp_scalar(x)
    if u == 1.0:
        return x
    um1 = u - 1.0
    if um1 == -1.0:
        return -1.0
    if u == math.inf:
        return math.inf
    return um1 * x / log_scalar(u)


_LOG, _EXP, _LOG1P, _EXPM1 = 0, 1, 2, 3


@njit(cache=True, fastmath=False)
def _elementwise(a: NDArray[np.float64], which: int) -> NDArray[np.float64]:
    out = np.empty_like(a)
    for i in range(a.size):
        v = a[i]
        if which == _LOG:
            out[i] = log_scalar(v)
        elif which == _EXP:
            out[i] = exp_scalar(v)
        elif which == _LOG1P:
            out[i] = log1p_scalar(v)
        else:
            out[i] = expm1_scalar(v)
    return out


def _apply(x: ArrayLike, which: int) -> NDArray[np.float64]:
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    return _elementwise(a.reshape(-1), which).reshape(a.shape)


def dlog(x: ArrayLike) -> NDArray[np.float64]:
    """Element-wise natural logarithm, identical bits on every machine."""
    return _apply(x, _LOG)


def dexp(x: ArrayLike) -> NDArray[np.float64]:
    """Element-wise exponential, identical bits on every machine."""
    return _apply(x, _EXP)


def dlog1p(x: ArrayLike) -> NDArray[np.float64]:
    """Element-wise log(1 + x), identical bits on every machine."""
    return _apply(x, _LOG1P)


def dexpm1(x: ArrayLike) -> NDArray[np.float64]:
    """Element-wise exp(x) - 1, identical bits on every machine."""
    return _apply(x, _EXPM1)


@njit(cache=True, fastmath=False)
def _matmul(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    n, k = a.shape
    m = b.shape[1]
    out = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            acc = 0.0
            for t in range(k):
                acc += a[i, t] * b[t, j]
            out[i, j] = acc
    return out


@njit(cache=True, fastmath=False)
def _gram(a: NDArray[np.float64], w: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    n, p = a.shape
    m = b.shape[1]
    out = np.zeros((p, m))
    for r in range(n):
        wr = w[r]
        for i in range(p):
            ai = a[r, i] * wr
            for j in range(m):
                out[i, j] += ai * b[r, j]
    return out


@njit(cache=True, fastmath=False)
def _solve(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    n = a.shape[0]
    m = b.shape[1]
    a = a.copy()
    b = b.copy()
    for c in range(n):
        piv = c
        best = abs(a[c, c])
        for r in range(c + 1, n):
            v = abs(a[r, c])
            if v > best:
                best, piv = v, r
        if best == 0.0:
            raise ValueError("singular matrix")
        if piv != c:
            for j in range(n):
                a[c, j], a[piv, j] = a[piv, j], a[c, j]
            for j in range(m):
                b[c, j], b[piv, j] = b[piv, j], b[c, j]
        for r in range(c + 1, n):
            f = a[r, c] / a[c, c]
            if f != 0.0:
                for j in range(c, n):
                    a[r, j] -= f * a[c, j]
                for j in range(m):
                    b[r, j] -= f * b[c, j]
    x = np.zeros((n, m))
    for j in range(m):
        for r in range(n - 1, -1, -1):
            acc = b[r, j]
            for t in range(r + 1, n):
                acc -= a[r, t] * x[t, j]
            x[r, j] = acc / a[r, r]
    return x


def _2d(x: ArrayLike) -> NDArray[np.float64]:
    return np.ascontiguousarray(np.atleast_2d(np.asarray(x, dtype=np.float64)))


def dmatmul(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """``a @ b`` for 2-D arrays, each entry summed in index order (no BLAS)."""
    a2, b2 = _2d(a), _2d(b)
    if a2.shape[1] != b2.shape[0]:
        raise ValueError(f"shapes {a2.shape} and {b2.shape} do not align")
    return _matmul(a2, b2)


def dgram(a: ArrayLike, w: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """``(a * w[:, None]).T @ b`` (a weighted cross-product), summed row by row in order."""
    a2, b2 = _2d(a), _2d(b)
    w1 = np.ascontiguousarray(np.asarray(w, dtype=np.float64).reshape(-1))
    if not (a2.shape[0] == b2.shape[0] == w1.shape[0]):
        raise ValueError(f"row counts differ: {a2.shape[0]}, {w1.shape[0]}, {b2.shape[0]}")
    return _gram(a2, w1, b2)


def dsolve(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Solve ``a x = b`` (``b`` 1-D or 2-D) by Gaussian elimination with partial pivoting."""
    a2 = _2d(a)
    bb = np.asarray(b, dtype=np.float64)
    vec = bb.ndim == 1
    x = _solve(a2, np.ascontiguousarray(bb[:, None] if vec else bb))
    return x[:, 0] if vec else x


def drowmean(a: ArrayLike) -> NDArray[np.float64]:
    """Mean of each row of a 2-D array, summed in index order."""
    a2 = _2d(a)
    return _matmul(a2, np.ones((a2.shape[1], 1)))[:, 0] / a2.shape[1]
