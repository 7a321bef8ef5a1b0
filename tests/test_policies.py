"""Hand-computed decisions of the baseline policies (faro.policies.reactive, docs/model.md section 4).

Reactive counter, per job and tick: avg_latency > SLO -> counter + 1 (reset to +1 if it
was negative), at +3 emit an upscale and reset to 0; otherwise counter - 1 (reset to -1
if positive), at -60 emit a downscale and reset to 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from faro.control.controller import Controller, JobMetrics, JobSpec
from faro.control.types import JobState, Snapshot
from faro.policies import BUILTIN, PolicyError, make_policy
from faro.policies.reactive import AI, AIAD, DOWN, NONE, UP, FairShare, Oneshot, step_counter

SLO = 720.0
HIGH, LOW = 800.0, 100.0


def job_state(name="a", *, latency=0.0, replicas=1, busy=False, index=0) -> JobState:
    return JobState(
        name=name, index=index, replicas=replicas, active_replicas=replicas, head_queue=0,
        replica_queues=(0,) * replicas, avg_latency_ms=latency, arrivals_per_min=np.zeros(0, np.int64),
        executor_busy=busy, admission_rate=1.0, slo_ms=SLO, processing_ms=180.0,
    )


def snap(*jobs: JobState, t=10.0, quota=10) -> Snapshot:
    return Snapshot(time=t, quota=quota, free_cpus=quota - sum(j.replicas for j in jobs), jobs=tuple(jobs))


def feed(policy, latencies, **kw):
    """Tick ``policy`` once per latency for job 'a'; returns the actions of each tick."""
    return [policy.decide(snap(job_state(latency=x, **kw))) for x in latencies]


# --------------------------------------------------------------------------- the counter


def run_counter(latencies, up=3, down=60):
    c, trace = 0, []
    for x in latencies:
        c, sig = step_counter(c, x, SLO, up, down)
        trace.append((c, sig))
    return trace


def test_counter_three_ticks_above_slo_upscale_and_reset():
    assert run_counter([HIGH] * 4) == [(1, NONE), (2, NONE), (0, UP), (1, NONE)]


def test_counter_resets_to_plus_one_after_negative_and_minus_one_after_positive():
    # 800 -> 1, 800 -> 2, 100 -> -1 (reset), 100 -> -2, 800 -> +1 (reset), 800 -> 2, 800 -> UP
    assert run_counter([HIGH, HIGH, LOW, LOW, HIGH, HIGH, HIGH]) == [
        (1, NONE), (2, NONE), (-1, NONE), (-2, NONE), (1, NONE), (2, NONE), (0, UP)
    ]


def test_counter_latency_equal_to_slo_counts_as_below():
    # "if avg_latency > 720 ms the counter goes up ... Else it goes down": 720 is not above
    assert run_counter([SLO, SLO]) == [(-1, NONE), (-2, NONE)]


def test_counter_sixty_ticks_below_downscale_and_reset():
    out = run_counter([LOW] * 61)
    assert out[58] == (-59, NONE)
    assert out[59] == (0, DOWN)  # 60th tick = 10 min
    assert out[60] == (-1, NONE)
    # no signal before the 60th tick
    assert [s for _, s in out[:59]] == [NONE] * 59


def test_counter_zero_latency_means_below():
    # nothing finished in the window reads 0 ms: a "below SLO" tick
    assert run_counter([0.0]) == [(-1, NONE)]


# --------------------------------------------------------------------------- AIAD


def test_aiad_plus_one_after_three_high_ticks():
    pol = AIAD({}, jobs=["a"], quota=10)
    acts = feed(pol, [HIGH, HIGH, HIGH])
    assert acts[0] == [] and acts[1] == []
    (a,) = acts[2]
    assert (a.job, a.delta, a.target, a.trials) == ("a", 1, None, 1)
    assert pol.counters["a"] == 0


def test_aiad_minus_one_after_sixty_low_ticks():
    pol = AIAD({}, jobs=["a"], quota=10)
    acts = feed(pol, [LOW] * 60, replicas=3)
    assert all(x == [] for x in acts[:59])
    (a,) = acts[59]
    assert (a.job, a.delta, a.target) == ("a", -1, None)
    assert a.resolve(3) == 2


def test_aiad_counters_are_per_job():
    # job a above, job b below: after 3 ticks a upscales, b is at -3
    pol = AIAD({}, jobs=["a", "b"], quota=10)
    for _ in range(3):
        acts = pol.decide(snap(job_state("a", latency=HIGH), job_state("b", latency=LOW, index=1)))
    assert [(x.job, x.delta) for x in acts] == [("a", 1)]
    assert pol.counters == {"a": 0, "b": -3}


def test_aiad_params_change_the_thresholds():
    pol = make_policy("aiad", {"upscale_ticks": 2, "downscale_ticks": 4}, jobs=["a"], quota=10)
    acts = feed(pol, [HIGH, HIGH, LOW, LOW, LOW, LOW])
    assert [[x.delta for x in t] for t in acts] == [[], [1], [], [], [], [-1]]


def test_aiad_acts_on_busy_executors_by_default():
    pol = AIAD({}, jobs=["a"], quota=10)
    acts = feed(pol, [HIGH] * 3, busy=True)
    assert len(acts[2]) == 1


# --------------------------------------------------------------------------- Oneshot


@pytest.mark.parametrize(
    ("replicas", "latency", "ticks", "target"),
    [
        (2, 800.0, 3, 3),  # ceil(2 * 800 / 720) = ceil(2.22) = 3
        (3, 1500.0, 3, 7),  # ceil(3 * 1500 / 720) = ceil(6.25) = 7
        (10, 792.0, 3, 11),  # 10 * 792 / 720 = 11 exactly -> 11
        (4, 300.0, 60, 2),  # ceil(4 * 300 / 720) = ceil(1.67) = 2
        (3, 480.0, 60, 2),  # 3 * 480 / 720 = 2 exactly -> 2
        (5, 0.0, 60, 1),  # nothing finished: 0 ms -> ceil(0) = 0 -> at least 1
        (1, 100.0, 60, 1),  # ceil(0.14) = 1: a no-op target
    ],
)
def test_oneshot_target_is_ceil_of_current_times_latency_over_slo(replicas, latency, ticks, target):
    pol = Oneshot({}, jobs=["a"], quota=10)
    acts = feed(pol, [latency] * ticks, replicas=replicas)
    assert all(x == [] for x in acts[:-1])
    (a,) = acts[-1]
    assert (a.target, a.delta) == (target, None)


# --------------------------------------------------------------------------- AI


def test_ai_upscales_like_aiad():
    pol = AI({}, jobs=["a"], quota=10)
    acts = feed(pol, [HIGH] * 3)
    assert [(x.job, x.delta) for x in acts[2]] == [("a", 1)]


def test_ai_ignores_downscale_without_resetting_the_counter():
    # AIAD would downscale at tick 60 and reset; AI emits nothing and keeps counting: -60,
    # -61, ...  One high tick then resets to +1.
    pol = AI({}, jobs=["a"], quota=10)
    acts = feed(pol, [LOW] * 62, replicas=3)
    assert all(x == [] for x in acts)
    assert pol.counters["a"] == -62
    feed(pol, [HIGH])
    assert pol.counters["a"] == 1


def test_only_idle_executors_skips_busy_jobs_and_keeps_their_counter():
    # Hybrid AI: busy ticks are skipped entirely (no action, counter untouched).
    pol = AI({"only_idle_executors": True}, jobs=["a"], quota=10)
    feed(pol, [HIGH, HIGH])
    assert pol.counters["a"] == 2
    assert feed(pol, [HIGH] * 5, busy=True) == [[]] * 5
    assert pol.counters["a"] == 2
    acts = feed(pol, [HIGH])
    assert [x.delta for x in acts[0]] == [1]


def test_reset_clears_counters():
    pol = AI({}, jobs=["a", "b"], quota=10)
    feed(pol, [HIGH, HIGH])
    pol.reset()
    assert pol.counters == {"a": 0, "b": 0}


# --------------------------------------------------------------------------- FairShare


@pytest.mark.parametrize(
    ("quota", "n_jobs", "each"),
    [(32, 10, 3), (36, 10, 3), (40, 10, 4), (16, 10, 1), (20, 7, 2), (44, 10, 4)],
)
def test_fairshare_is_floor_quota_over_jobs(quota, n_jobs, each):
    jobs = [f"j{i}" for i in range(n_jobs)]
    pol = FairShare({}, jobs=jobs, quota=quota)
    assert pol.initial_replicas() == {j: each for j in jobs}


def test_fairshare_never_acts():
    # quota 32, 10 jobs x 3 -> ledger 2 free; ticks call no layer and change nothing.
    jobs = [f"j{i}" for i in range(10)]
    pol = FairShare({}, jobs=jobs, quota=32)

    class Recorder:
        def __init__(self):
            self.calls = []

        def set_replicas(self, *a):
            self.calls.append(a)

        def set_admission(self, *a):
            self.calls.append(a)

        def is_settling(self, job, now):
            return False

    act = Recorder()
    ctl = Controller(pol, [JobSpec(j, SLO, 180.0) for j in jobs], 32, act, rng=np.random.default_rng(0))
    assert ctl.free_cpus == 2
    m = {j: JobMetrics(3, 50, (4, 4, 4), 5000.0, np.zeros(0, np.int64)) for j in jobs}
    for t in range(10, 1000, 10):
        assert ctl.tick(float(t), m) == []
    assert act.calls == [] and ctl.allocation == {j: 3 for j in jobs}


# --------------------------------------------------------------------------- registry


def test_builtin_names():
    assert {"fairshare", "aiad", "oneshot", "ai"} <= set(BUILTIN)
    assert type(make_policy("oneshot", None, jobs=["a"], quota=4)) is Oneshot
    assert type(make_policy("fairshare", None, jobs=["a"], quota=4)) is FairShare


def test_unknown_policy_names_the_value():
    with pytest.raises(PolicyError, match="'nope'"):
        make_policy("nope", None, jobs=["a"], quota=4)


def test_policy_interval_and_first_decision():
    assert AIAD({}, jobs=["a"]).interval_s == 10.0
    assert AIAD({}, jobs=["a"]).first_at_s == 10.0
    assert AIAD({"interval_s": 300}, jobs=["a"]).first_at_s == 60.0
