"""Machine-independent math (faro.numerics): accuracy, special values, and identical bits
in processes with other numpy CPU features, BLAS kernels and numba target CPUs."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from faro.numerics import dexp, dexpm1, dgram, dlog, dlog1p, dmatmul, drowmean, dsolve


def _ulps(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(got - ref) / np.spacing(np.abs(ref))))


RNG = np.random.default_rng(7)


def test_log_and_exp_within_one_ulp_of_the_c_library():
    x = np.concatenate([RNG.uniform(0, 2000, 20000), np.exp(RNG.uniform(-700, 700, 20000)), [1.0, 2.0, 0.5]])
    assert _ulps(dlog(x), np.array([math.log(v) for v in x])) <= 1.0
    y = RNG.uniform(-700, 700, 20000)
    assert _ulps(dexp(y), np.array([math.exp(v) for v in y])) <= 1.0


def test_log1p_and_expm1_accurate_near_zero():
    z = np.concatenate([RNG.uniform(0, 2000, 20000), 10 ** RNG.uniform(-20, 0, 20000)])
    assert _ulps(dlog1p(z), np.array([math.log1p(v) for v in z])) <= 1.0
    w = np.concatenate([RNG.uniform(-5, 12, 20000), 10 ** RNG.uniform(-20, -1, 20000)])
    assert _ulps(dexpm1(w), np.array([math.expm1(v) for v in w])) <= 4.0


def test_special_values():
    assert dlog(np.array([1.0]))[0] == 0.0 and dlog1p(np.array([0.0]))[0] == 0.0
    assert dexp(np.array([0.0]))[0] == 1.0 and dexpm1(np.array([0.0]))[0] == 0.0
    assert np.isneginf(dlog(np.array([0.0]))[0]) and np.isnan(dlog(np.array([-1.0]))[0])
    assert np.isinf(dexp(np.array([800.0]))[0]) and dexp(np.array([-800.0]))[0] == 0.0
    assert dexpm1(np.array([-800.0]))[0] == -1.0 and np.isinf(dlog1p(np.array([np.inf]))[0])


def test_linear_algebra_matches_numpy():
    a = RNG.normal(size=(15, 15)) + 15 * np.eye(15)
    b = RNG.normal(size=(15, 7))
    np.testing.assert_allclose(dsolve(a, b), np.linalg.solve(a, b), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dsolve(a, b[:, 0]), np.linalg.solve(a, b[:, 0]), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dmatmul(a, b), a @ b, rtol=1e-12, atol=1e-12)
    f, w = RNG.normal(size=(500, 4)), RNG.uniform(size=500)
    np.testing.assert_allclose(dgram(f, w, f), (f * w[:, None]).T @ f, rtol=1e-11)
    np.testing.assert_allclose(drowmean(b), b.mean(axis=1), rtol=1e-13)
    # hand-computed: [[2, 1], [1, 3]] x = [3, 5] -> x = [0.8, 1.4]
    np.testing.assert_allclose(dsolve([[2.0, 1.0], [1.0, 3.0]], [3.0, 5.0]), [0.8, 1.4], rtol=1e-15)
    with pytest.raises(ValueError, match="singular"):
        dsolve(np.zeros((2, 2)), np.ones(2))


_CHILD = """
import hashlib, numpy as np
from faro.numerics import dexp, dexpm1, dlog, dlog1p, dsolve, dgram
from faro.solver.utility import job_utilities
rng = np.random.default_rng(3)
x = rng.uniform(0, 50, 4096); f = rng.normal(size=(3000, 15)); w = rng.uniform(size=3000)
parts = [dlog(x), dexp(x / 10), dlog1p(x), dexpm1(x / 10), dsolve(dgram(f, w, f), dgram(f, w, f[:, :7])),
         job_utilities(np.arange(33.0)[:, None].repeat(10, 1), rng.uniform(1, 40, (10, 7)),
                       proc_s=0.18, slo_s=0.72)]
print(hashlib.sha256(b"".join(p.tobytes() for p in parts)).hexdigest())
"""


@pytest.mark.slow
def test_same_bits_with_other_cpu_features():
    variants = [{},
                {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR", "OPENBLAS_CORETYPE": "Haswell",
                 "OPENBLAS_NUM_THREADS": "1", "NUMBA_CPU_NAME": "generic"}]
    sums = set()
    for extra in variants:
        env = {k: v for k, v in os.environ.items()
               if k not in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES")}
        env.update(extra)
        out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True,
                             check=True, timeout=600)
        sums.add(out.stdout.strip())
    assert len(sums) == 1, sums
    assert hashlib.sha256(b"").hexdigest() not in sums
