"""Hand-computed decisions of the production autoscalers (faro.policies.production).

Every number below follows from the algorithm and the defaults cited in each class:
Ray Serve 2.60 (target 2 ongoing requests, 30 s look-back mean, 30 s up / 600 s down
delays, factors 1), the Kubernetes HPA (target 80 % CPU, tolerance 10 %, 300 s scale-down
stabilisation, up max(4 pods, 100 %) per 15 s) and Knative's KPA (target 2.8 = 70 % of 4,
stable 60 s, panic 6 s at 200 %, scale-down rate 2).
"""

from __future__ import annotations

import numpy as np
import pytest

from faro.control.types import JobState, Snapshot
from faro.policies import make_policy
from faro.policies.production import K8sHPA, KnativeKPA, RayServeDefault


def job(name="a", *, replicas=2, active=None, held=(), head=0, busy_s=float("nan")) -> JobState:
    active = replicas if active is None else active
    queues = tuple(held) if held else (0,) * active
    return JobState(
        name=name, index=0, replicas=replicas, active_replicas=active, head_queue=head, replica_queues=queues,
        avg_latency_ms=0.0, arrivals_per_min=np.zeros(0, np.int64), executor_busy=False, admission_rate=1.0,
        slo_ms=720.0, processing_ms=180.0, busy_s=busy_s,
    )


def snap(t, *jobs, quota=32, free=0) -> Snapshot:
    return Snapshot(time=float(t), quota=quota, free_cpus=free, jobs=tuple(jobs))


def targets(actions):
    return [(a.job, a.target) for a in actions]


# ----------------------------------------------------------------------------- Ray Serve


def serve_tick(p, t, ongoing, replicas):
    """A job whose replicas hold ``ongoing`` requests in all (head queue empty)."""
    held = [ongoing // replicas + (1 if k < ongoing % replicas else 0) for k in range(replicas)]
    return p.decide(snap(t, job(replicas=replicas, held=held)))


def test_serve_step_in_load_waits_the_upscale_delay_then_asks_for_the_averaged_target():
    p = RayServeDefault(jobs=["a"])
    # steady: 4 ongoing on 2 replicas = 2 per replica = the target: nothing to do
    assert serve_tick(p, 10, 4, 2) == [] and serve_tick(p, 20, 4, 2) == []
    # step to 12 ongoing: look-back means (4+4+12)/3 = 6.67 -> 3.33 -> 4 (> 2: delay starts at 30)
    assert serve_tick(p, 30, 12, 2) == []
    assert p.notes["a"]["desired"] == pytest.approx(20 / 3 / 2)
    assert p.notes["a"]["mode"] == "up-delay"
    assert serve_tick(p, 40, 12, 2) == []  # (4+12+12)/3 = 9.33 -> 5, 10 s into the delay
    assert serve_tick(p, 50, 12, 2) == []  # 12 -> 6, 20 s
    # 30 s after the first upscale decision: the target becomes ceil(12 / 2) = 6
    assert targets(serve_tick(p, 60, 12, 2)) == [("a", 6)]
    # the target stays (Serve's own), re-asked while the allocation is still 2 (quota full)
    assert targets(serve_tick(p, 70, 12, 2)) == [("a", 6)]


def test_serve_downscale_waits_600_s_and_a_reversal_resets_the_timer():
    p = RayServeDefault(jobs=["a"])
    p.desired["a"] = 4
    t = 10
    assert serve_tick(p, t, 0, 4) == []  # desired 0 < 4: the downscale timer starts at 10
    for t in range(20, 610, 10):
        assert serve_tick(p, t, 0, 4) == [], t
    # 600 s after the first downscale decision: max(1, 0) = 1
    assert targets(serve_tick(p, 610, 0, 4)) == [("a", 1)]
    # again from 4, but an upscale decision in between restarts the 600 s
    q = RayServeDefault(jobs=["a"])
    q.desired["a"] = 4
    for t in range(10, 310, 10):
        assert serve_tick(q, t, 0, 4) == []
    # 40 ongoing: look-back mean (0 + 0 + 40)/3 = 13.3 -> desired 6.67 > 4: direction up (reset)
    assert serve_tick(q, 310, 40, 4) == [] and q.notes["a"]["mode"] == "up-delay"
    # the 40 stays in the 30 s look-back until 330; the next downscale decision is at 340
    for t in range(320, 940, 10):
        assert serve_tick(q, t, 0, 4) == [], t
    assert targets(serve_tick(q, 940, 0, 4)) == [("a", 1)]  # 600 s after 340


def test_serve_scaling_factors_and_bounds():
    p = RayServeDefault({"upscaling_factor": 0.5, "downscaling_factor": 0.1}, jobs=["a"])
    assert p.scaled(6.0, 2) == 4  # ceil(2 + 0.5 x 4)
    assert p.scaled(1.5, 3) == 2  # ceil(3 - 0.15) = 3 would be stuck: minus one
    q = RayServeDefault({"upscale_delay_s": 0.0}, jobs=["a"])
    # 4 replicas holding 4 each + 400 waiting: 416 / 2 = 208 -> bounded to max_replicas 100
    acts = q.decide(snap(10, job(replicas=4, held=(4, 4, 4, 4), head=400)))
    assert targets(acts) == [("a", 100)]


def test_serve_delays_follow_the_trace_clock():
    p = RayServeDefault(jobs=["a"])
    p.use_clock(0.5)  # a simulated trace minute lasts 30 s: the 30 s delay is 15 controller seconds
    assert serve_tick(p, 5, 12, 2) == []
    assert serve_tick(p, 15, 12, 2) == []
    assert targets(serve_tick(p, 20, 12, 2)) == [("a", 6)]


# ----------------------------------------------------------------------------- Kubernetes HPA


def hpa_tick(p, t, util, *, replicas, active=None, dt=15.0):
    """One sync: the ready replicas were busy ``util`` of the last ``dt`` seconds."""
    active = replicas if active is None else active
    p.test_busy_s = getattr(p, "test_busy_s", 0.0) + util * dt * active
    busy = p.test_busy_s
    return p.decide(snap(t, job(replicas=replicas, active=active, busy_s=busy)))


def test_hpa_needs_two_samples_then_respects_the_tolerance():
    p = K8sHPA(jobs=["a"])
    assert hpa_tick(p, 15, 0.9, replicas=2) == [] and p.notes["a"]["mode"] == "no-metrics"
    # 0.85 / 0.8 = 1.0625: within 10 %, no change
    assert hpa_tick(p, 30, 0.85, replicas=2) == [] and p.notes["a"]["mode"] == "tolerance"
    # 0.9 / 0.8 = 1.125: ceil(2 x 1.125) = 3
    assert targets(hpa_tick(p, 45, 0.9, replicas=2)) == [("a", 3)]


def test_hpa_step_in_load_is_rate_limited_to_max_of_4_pods_and_100_percent_per_15_s():
    p = K8sHPA({"target_utilization": 0.1}, jobs=["a"])
    hpa_tick(p, 15, 0.1, replicas=2)
    # 0.5 / 0.1 = 5: ceil(2 x 5) = 10, limited to max(2 + 4, 2 x 2) = 6
    assert targets(hpa_tick(p, 30, 0.5, replicas=2)) == [("a", 6)]
    assert p.notes["a"]["mode"] == "rate-limited"
    # 10 s later (a controller tick): 4 pods already added in this 15 s period, the limit stays 6
    assert targets(hpa_tick(p, 40, 0.5, replicas=6, dt=10.0)) == [] and p.desired["a"] == 6
    # 15 s after the event: from 6, max(6 + 4, 2 x 6) = 12 (ceil(6 x 5) = 30, limited)
    assert targets(hpa_tick(p, 45, 0.5, replicas=6, dt=5.0)) == [("a", 12)]


def test_hpa_scale_down_is_stabilised_over_300_s():
    p = K8sHPA(jobs=["a"])
    p.desired["a"] = 4
    hpa_tick(p, 15, 0.8, replicas=4)
    assert hpa_tick(p, 30, 0.8, replicas=4) == []  # at target: recommendation 4 recorded at 30
    # the load falls: 0.2 / 0.8 = 0.25 -> ceil(4 x 0.25) = 1, but the highest of the last 300 s is 4
    for t in range(45, 330, 15):
        assert hpa_tick(p, t, 0.2, replicas=4) == [], t
        assert p.notes["a"]["mode"] == "stabilized"
    # 300 s after the last recommendation of 4 (at 30) it leaves the window: down to 1 at once
    # (the default scale-down policy allows 100 % per 15 s)
    assert targets(hpa_tick(p, 330, 0.2, replicas=4)) == [("a", 1)]


def test_hpa_counts_unready_pods_at_zero_when_scaling_up():
    p = K8sHPA(jobs=["a"])
    hpa_tick(p, 15, 0.9, replicas=4, active=2)
    # ready 2 at 0.9: ratio 1.125 says up; with the 2 starting pods at 0 %:
    # 0.9 x 2 / (0.8 x 4) = 0.5625 < 1 reverses the direction: no change
    assert hpa_tick(p, 30, 0.9, replicas=4, active=2) == [] and p.notes["a"]["mode"] == "unready"
    # saturated ready pods with 1 starting: 1.0 x 3 / (0.8 x 4) = 0.9375 within 10 %: no change
    q = K8sHPA(jobs=["a"])
    hpa_tick(q, 15, 1.0, replicas=4, active=3)
    assert hpa_tick(q, 30, 1.0, replicas=4, active=3) == []


# ----------------------------------------------------------------------------- Knative KPA


def kpa_tick(p, t, concurrency, *, ready):
    held = [concurrency // ready + (1 if k < concurrency % ready else 0) for k in range(ready)]
    head = max(0, concurrency - 4 * ready)
    held = [min(4, h) for h in held]
    return p.decide(snap(t, job(replicas=ready, held=held, head=head)))


def test_kpa_stable_mode_divides_the_60_s_mean_by_the_target():
    p = KnativeKPA(jobs=["a"])
    assert p.target == pytest.approx(2.8)
    # 3 ready pods, 6 in flight: ceil(6 / 2.8) = 3, no change
    assert kpa_tick(p, 10, 6, ready=3) == []
    # 12 in flight: stable mean (6 + 12) / 2 = 9 -> ceil(3.21) = 4; panic 12 -> 5, 5/3 < 2: stable
    assert targets(kpa_tick(p, 20, 12, ready=3)) == [("a", 4)]
    assert p.notes["a"]["mode"] == "stable"


def test_kpa_panics_at_200_percent_and_never_scales_down_in_panic():
    p = KnativeKPA(jobs=["a"])
    for t in (10, 20, 30):
        kpa_tick(p, t, 2, ready=2)  # 2 in flight: 1 pod wanted, max scale-down keeps 1 = floor(2/2)
    # burst: 15 in flight on 2 pods: panic pods ceil(15 / 2.8) = 6, 6 / 2 >= 2 -> panic; stable
    # mean (2 + 2 + 2 + 15) / 4 = 5.25 -> 2; in panic the larger one: 6
    assert targets(kpa_tick(p, 40, 15, ready=2)) == [("a", 6)]
    assert p.notes["a"]["mode"] == "panic"
    # the burst is over (3 in flight on 6 pods) but in panic nothing scales down
    for t in range(50, 110, 10):
        assert kpa_tick(p, t, 3, ready=6) == [], t
        assert p.notes["a"]["mode"] == "panic"
    # more than a stable window (60 s) after the last panic reading (40): stable mode, mean of
    # the last 60 s (3 x 6) / 6 = 3 -> ceil(1.07) = 2 pods, kept at floor(6 / 2) = 3 (scale-down rate)
    assert targets(kpa_tick(p, 110, 3, ready=6)) == [("a", 3)]
    assert p.notes["a"]["mode"] == "stable"


def test_kpa_scale_down_rate_halves_at_most_per_decision():
    p = KnativeKPA(jobs=["a"])
    assert targets(kpa_tick(p, 10, 0, ready=10)) == [("a", 5)]  # ceil(0) = 0, floor(10 / 2) = 5


# ----------------------------------------------------------------------------- all three


@pytest.mark.parametrize("name", ["ray_serve_default", "k8s_hpa", "knative_kpa"])
def test_production_policies_do_not_know_the_quota(name):
    def run(quota, free):
        p = make_policy(name, {}, jobs=["a", "b"], quota=quota)
        out = []
        for k, t in enumerate(range(10, 400, 10)):
            load = 30 if 100 <= t < 250 else 3
            jobs = [job("a", replicas=2, held=(min(4, load // 2),) * 2, head=max(0, load - 8),
                        busy_s=5.0 * k),
                    job("b", replicas=1, held=(1,), busy_s=1.0 * k)]
            out.append(targets(p.decide(snap(t, *jobs, quota=quota, free=free))))
        return out

    assert run(8, 0) == run(1000, 900)


def test_unknown_parameter_is_refused():
    with pytest.raises(ValueError, match="unknown parameter"):
        RayServeDefault({"target_ongoing": 3}, jobs=["a"])
