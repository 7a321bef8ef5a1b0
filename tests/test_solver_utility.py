"""Utilities, admission penalty, cold start and the objectives of the Faro variants."""

import numpy as np
import pytest

from faro.solver.latency import mdc_p99_latency
from faro.solver.objectives import Objective, combine, parse_objective
from faro.solver.utility import (
    admission_penalty,
    effective_replicas,
    job_utilities,
    relaxed_utility,
    step_utility,
)


def test_relaxed_and_step_utility():
    lat = np.array([0.36, 0.72, 1.44, np.inf])
    np.testing.assert_allclose(relaxed_utility(lat, 0.72), [1.0, 1.0, 0.5, 0.0])
    np.testing.assert_array_equal(step_utility(np.array([0.72, 0.7201, np.inf]), 0.72), [1.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "drop,pen",
    [(0.0, 0.0), (0.001, 0.0), (0.03, 0.25), (0.08, 0.5), (1.0, 1.0),
     (0.0005, 0.0), (0.0155, 0.125), (0.055, 0.375), (0.54, 0.75), (-0.2, 0.0), (1.5, 1.0)],
)
def test_admission_penalty_knots_and_segments(drop, pen):
    assert admission_penalty(drop) == pytest.approx(pen, abs=1e-12)


def test_cold_start_first_step_uses_old_count_for_upscales_only():
    eff = effective_replicas(np.array([5.0, 2.0, 3.0]), np.array([3.0, 4.0, 3.0]), 3, cold_start=True)
    np.testing.assert_array_equal(eff, [[3, 5, 5], [2, 2, 2], [3, 3, 3]])
    # single step: rule skipped
    one = effective_replicas(np.array([5.0]), np.array([3.0]), 1, cold_start=True)
    np.testing.assert_array_equal(one, [[5.0]])
    off = effective_replicas(np.array([5.0]), np.array([3.0]), 3, cold_start=False)
    np.testing.assert_array_equal(off, [[5.0, 5.0, 5.0]])


def test_job_utility_is_mean_over_steps_with_cold_start():
    rates = np.array([[20.0, 20.0]])
    l3 = float(mdc_p99_latency(20.0, 3.0, 0.18))  # overloaded on 3 replicas
    l5 = float(mdc_p99_latency(20.0, 5.0, 0.18))
    assert l3 > 0.72 >= l5
    u_warm = job_utilities(np.array([5.0]), rates, proc_s=0.18, slo_s=0.72, current=np.array([3.0]))
    u_cold = job_utilities(np.array([5.0]), rates, proc_s=0.18, slo_s=0.72, current=np.array([3.0]),
                           cold_start=True)
    assert u_warm[0] == pytest.approx(1.0)
    assert u_cold[0] == pytest.approx((0.72 / l3 + 1.0) / 2)
    step = job_utilities(np.array([5.0]), rates, proc_s=0.18, slo_s=0.72, current=np.array([3.0]),
                         cold_start=True, relaxed=False)
    assert step[0] == pytest.approx(0.5)


def test_nonpositive_replicas_give_zero_utility():
    u = job_utilities(np.array([0.0, -1.0, 2.0]), np.zeros((3, 2)), proc_s=0.18, slo_s=0.72)
    np.testing.assert_array_equal(u, [0.0, 0.0, 1.0])


def test_objective_combinations():
    u = np.array([0.5, 1.0, 0.8])
    assert combine(u, "sum") == pytest.approx(2.3)
    assert combine(u, "fair") == pytest.approx(-0.5)  # Faro-Fair: the spread alone
    assert combine(u, "fair", fair_weight=1.0) == pytest.approx(2.3 - 0.5)
    assert combine(u, "fair_sum") == pytest.approx(2.3 + 3 * (0.5 - 1.0 + 1.0))
    batch = np.array([u, [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(combine(batch, "fair_sum"), [3.8, 6.0])


def test_penalty_objectives():
    u = np.array([1.0, 1.0])
    adm = np.array([0.97, 0.92])  # drops 3% and 8% -> penalties 0.25 and 0.5
    ps = parse_objective("faro_penalty_sum")
    assert ps == Objective("sum", penalty=True)
    assert ps.value(u, adm) == pytest.approx(0.75 + 0.5)
    pfs = parse_objective("penalty-fair-sum")
    assert pfs.value(u, adm) == pytest.approx(1.25 + 2 * (0.5 - 0.75 + 1))
    # without admission rates the penalty is not applied
    assert ps.value(u) == pytest.approx(2.0)
    assert parse_objective("Faro_Fair").value(np.array([0.2, 0.6])) == pytest.approx(-0.4)
    with pytest.raises(ValueError):
        parse_objective("max_min")
