"""MArk and Faro (hybrid policies) on hand-made snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from faro.control.types import JobState, Snapshot
from faro.policies import make_policy
from faro.policies.hybrid import Faro, MArk, _series_of
from faro.solver.solve import solve

JOBS = ["serve-cluster0", "serve-cluster1"]


def snap(history, *, replicas=(1, 1), free=0, quota=8, t=960.0, busy=(False, False), latency=(100.0, 100.0)):
    jobs = tuple(
        JobState(
            name=n, index=k, replicas=replicas[k], active_replicas=replicas[k], head_queue=0,
            replica_queues=(0,) * replicas[k], avg_latency_ms=latency[k],
            arrivals_per_min=np.asarray(history[k], float), executor_busy=busy[k], admission_rate=1.0,
            slo_ms=720.0, processing_ms=180.0,
        )
        for k, n in enumerate(JOBS)
    )
    return Snapshot(time=t, quota=quota, free_cpus=free, jobs=jobs)


def mark(**params):
    return make_policy("mark", {"forecaster": "last_value", **params}, jobs=JOBS, quota=8,
                       context={"unit_time": 60})


def test_series_of_job_names():
    assert [_series_of(f"serve-cluster{k}", 0) for k in (0, 7, 12, 99)] == [0, 7, 2, 9]
    assert _series_of("web", 3) == 3


def test_mark_targets_ceil_of_peak_rate_times_processing_over_slo():
    # job0: 600/min = 10 req/s -> ceil(10 * 180/720) = ceil(2.5) = 3
    # job1: 1000/min = 16.67 req/s -> ceil(4.17) = 5
    p = mark()
    acts = p.layers()[0].decide(snap([[600] * 20, [1000] * 20]))
    assert [(a.job, a.target, a.trials) for a in acts] == [("serve-cluster0", 3, 5), ("serve-cluster1", 5, 5)]


def test_mark_uses_observed_counts_before_enough_history():
    # 6 minutes seen (t = 360 s): the 'forecast' is the observed counts; the peak 1200/min = 20 req/s -> 5
    p = mark()
    acts = p.layers()[0].decide(snap([[60, 120, 1200, 300, 60, 60], [60] * 6], t=360.0))
    assert acts[0].target == 5
    assert acts[1].target == 1  # 1 req/s -> ceil(0.25) = 1


def test_hybrid_layers_schedule_and_ai_reset():
    p = mark()
    pred, ai = p.layers()
    assert (pred.first_at_s, pred.interval_s) == (60.0, 300.0)
    assert (ai.first_at_s, ai.interval_s) == (10.0, 10.0)
    assert ai.only_idle_executors
    s = snap([[600] * 20, [600] * 20], latency=(900.0, 900.0))
    ai.decide(s)
    ai.decide(s)
    assert ai.counters == {JOBS[0]: 2, JOBS[1]: 2}
    pred.decide(s)  # the predictive step clears the AI counters
    assert ai.counters == {JOBS[0]: 0, JOBS[1]: 0}
    # AI skips a busy executor entirely
    busy = snap([[600] * 20, [600] * 20], latency=(900.0, 900.0), busy=(True, False))
    for _ in range(3):
        acts = ai.decide(busy)
    assert [a.job for a in acts] == [JOBS[1]] and acts[0].delta == 1
    assert ai.counters[JOBS[0]] == 0


def test_mark_without_reactive_layer():
    assert len(mark(reactive=False).layers()) == 1


def test_faro_matches_the_solver_and_fits_the_quota():
    hist = [[600] * 20, [1500] * 20]
    p = make_policy("faro", {"objective": "sum", "forecaster": "last_value", "slack_escalation": False},
                    jobs=JOBS, quota=8, context={"unit_time": 60})
    acts = p.layers()[0].decide(snap(hist, quota=8))
    rates = np.array([[10.0] * 7, [25.0] * 7])
    ref = solve(rates, np.array([1, 1]), 8, objective="sum", slo_s=np.array([0.72, 0.72]),
                proc_s=np.array([0.18, 0.18]), cold_start=True)
    assert [a.target for a in acts] == ref.replicas.tolist()
    assert sum(a.target for a in acts) <= 8
    assert all(a.trials == 5 and a.admission_rate is None for a in acts)
    # the busier job gets more replicas
    assert acts[1].target > acts[0].target


def test_faro_penalty_variant_sets_admission_rates():
    p = make_policy("faro",
                    {"objective": "penalty_sum", "forecaster": "last_value", "slack_escalation": False},
                    jobs=JOBS, quota=4, context={"unit_time": 60})
    acts = p.layers()[0].decide(snap([[1200] * 20, [1800] * 20], quota=4))
    assert all(a.admission_rate is not None and 0.0 <= a.admission_rate <= 1.0 for a in acts)
    assert sum(a.target for a in acts) <= 4


def test_faro_oracle_sees_the_future():
    counts = np.array([[600, 600]] * 20 + [[3000, 60]] * 10)  # job0 surges at minute 20
    p = make_policy("faro", {"objective": "sum", "forecaster": "oracle", "slack_escalation": False},
                    jobs=JOBS, quota=12, context={"unit_time": 60, "trace_counts": counts})
    acts = p.layers()[0].decide(snap([counts[:20, 0], counts[:20, 1]], quota=12, replicas=(3, 3)))
    assert acts[0].target > acts[1].target  # provisions for the surge it knows is coming


def test_rates_scale_with_unit_time():
    p = make_policy("mark", {"forecaster": "last_value"}, jobs=JOBS, quota=8, context={"unit_time": 10})
    r = p.rates(snap([[100] * 20, [50] * 20]), None)
    assert r[0, 0] == pytest.approx(10.0) and r[1, 0] == pytest.approx(5.0)


def test_unbound_hybrid_says_what_is_missing():
    p = Faro({"forecaster": "last_value"}, jobs=JOBS, quota=8)
    with pytest.raises(RuntimeError, match="bind"):
        p.layers()[0].decide(snap([[600] * 20, [600] * 20]))
    assert isinstance(MArk({}, jobs=JOBS, quota=8), MArk)
