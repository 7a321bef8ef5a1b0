"""Erlang C and the capped M/D/c p99 estimate against textbook values."""

import math

import numpy as np
import pytest

from faro.solver.fastpath import job_utilities_1d
from faro.solver.latency import PW_FLOOR, erlang_c, mdc_p99_latency
from faro.solver.utility import job_utilities


def textbook_pw(a: float, c: int, rho: float) -> float:
    """Direct factorial form: S = sum_{k<c} a^k/k!, F = a^c/c!, Pw = 1 - S P0."""
    s = sum(a**k / math.factorial(k) for k in range(c))
    f = a**c / math.factorial(c)
    p0 = 1.0 / (s + f / (1.0 - rho))
    return 1.0 - s * p0


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9])
def test_mm1_waiting_probability_is_rho(rho):
    assert erlang_c(rho, 1, rho) == pytest.approx(rho, rel=1e-12)


@pytest.mark.parametrize("rho", [0.2, 0.5, 0.8])
def test_mm2_closed_form(rho):
    # M/M/2: Pw = 2 rho^2 / (1 + rho) with a = 2 rho
    assert erlang_c(2 * rho, 2, rho) == pytest.approx(2 * rho**2 / (1 + rho), rel=1e-12)


def test_mm3_hand_value():
    # a = 2, c = 3: S = 1 + 2 + 2 = 5, F = 8/6, rho = 2/3 -> T = 4, Pw = 4/9
    assert erlang_c(2.0, 3, 2.0 / 3.0) == pytest.approx(4.0 / 9.0, rel=1e-12)


def test_erlang_c_vectorised_and_large_c():
    a = np.array([0.5, 1.8, 7.0, 30.0])
    c = np.array([1, 3, 9, 40])
    rho = a / c
    got = erlang_c(a, c, rho)
    want = [textbook_pw(float(ai), int(ci), float(ri)) for ai, ci, ri in zip(a, c, rho)]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # c = 600, a = 570: a^c/c! overflows a float, the scaled form does not
    big = erlang_c(570.0, 600, 0.95)
    assert 0.0 < float(big) < 1.0
    lat = job_utilities_1d(np.array([600.0]), np.array([[570.0 / 0.18]]), np.array([0.18]),
                           np.array([0.72]), np.array([600.0]), True, False, True, 0.95)
    ref = job_utilities(np.array([600.0]), np.array([[570.0 / 0.18]]), proc_s=0.18, slo_s=0.72)
    np.testing.assert_allclose(lat, ref, rtol=1e-9)


def test_zero_servers_always_wait():
    assert erlang_c(0.4, 0, 0.8) == pytest.approx(1.0)


def test_p99_uncapped_hand_value():
    # lam 10/s, x = 3, p = 0.18: rho = 0.6 < 0.95, a = 1.8, c = 3
    pw = textbook_pw(1.8, 3, 0.6)
    t99 = math.log(100 * pw) / (3 / 0.18 - 10)
    assert mdc_p99_latency(10.0, 3.0, 0.18) == pytest.approx(t99 / 2 + 0.18, rel=1e-12)
    assert mdc_p99_latency(10.0, 3.0, 0.18, mdc=False) == pytest.approx(t99 + 0.18, rel=1e-12)
    assert float(mdc_p99_latency(10.0, 3.0, 0.18)) == pytest.approx(0.44766, abs=1e-5)


def test_p99_cap_branch():
    # lam 20/s on 3 replicas: rho = 1.2 > 0.95 -> lam' = 0.95*3/0.18, w = lam'/lam
    lam_c = 0.95 * 3 / 0.18
    w = lam_c / 20.0
    pw = textbook_pw(lam_c * 0.18, 3, 0.95)
    t99 = math.log(100 * pw) / (3 / 0.18 - lam_c)
    assert mdc_p99_latency(20.0, 3.0, 0.18) == pytest.approx((t99 / 2 + 0.18) / w, rel=1e-12)
    # exactly at rho = 1 the uncapped formula would divide by zero; ours is finite
    assert np.isfinite(mdc_p99_latency(3 / 0.18, 3.0, 0.18))


def test_p99_real_valued_x_uses_floor_for_c_and_x_for_rho():
    # x = 2.5, lam = 8: rho = 8*0.18/2.5 = 0.576, a = 1.44, c = 2
    pw = textbook_pw(1.44, 2, 1.44 / 2.5)
    t99 = math.log(100 * pw) / (2.5 / 0.18 - 8)
    assert mdc_p99_latency(8.0, 2.5, 0.18) == pytest.approx(t99 / 2 + 0.18, rel=1e-12)


def test_p99_edge_cases():
    assert mdc_p99_latency(5.0, 0.0, 0.18) == np.inf
    assert mdc_p99_latency(5.0, -2.0, 0.18) == np.inf
    # no load: Pw = 0 -> 1e-4, ln(0.01) < 0 -> t99 = 0, L = p
    assert mdc_p99_latency(0.0, 4.0, 0.18) == pytest.approx(0.18)
    # tiny load on many replicas: F underflows to 0, the floor keeps the log finite
    assert erlang_c(1e-3, 200, 1e-3 / 200) == 0.0
    assert mdc_p99_latency(1e-3 / 0.18, 200.0, 0.18) == pytest.approx(0.18)
    assert PW_FLOOR == 1e-4
    # 0 < x < 1: c = 0, every request waits (Pw = 1)
    t99 = math.log(100) / (0.5 / 0.18 - 1.0)
    assert mdc_p99_latency(1.0, 0.5, 0.18) == pytest.approx(t99 / 2 + 0.18)


def test_compiled_path_matches_numpy_path():
    rng = np.random.default_rng(7)
    rates = rng.uniform(0, 30, (6, 5))
    rates[0, 0] = 0.0
    cur = rng.integers(1, 6, 6).astype(float)
    proc = np.array([0.18, 0.1, 0.18, 0.1, 0.18, 0.1])
    slo = 4 * proc
    for _ in range(200):
        x = rng.uniform(-1, 25, 6)
        for relaxed in (True, False):
            for cold in (True, False):
                for mdc in (True, False):
                    a = job_utilities(x, rates, proc_s=proc, slo_s=slo, current=cur, relaxed=relaxed,
                                      cold_start=cold, mdc=mdc)
                    b = job_utilities_1d(x, rates, proc, slo, cur, relaxed, cold, mdc, 0.95)
                    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
