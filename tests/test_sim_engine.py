"""Hand-computed cases for the simulated cluster and its run loop (faro.backends.sim.engine).

docs/model.md section 3: a new replica reuses an idle pod of its job (active after the
3 s warm start) or creates a pod (35 s cold start); the pod's CPU is reserved at once;
if the node is full the replica retries every 5 s.  A removed replica's pod stays idle,
holding its CPU, until the 5-s cluster monitor sees it idle for 30 s (never a job's
last pod).  Scale-down removes the newest replicas.  Controller ticks every 10 s.

A scripted policy emits given actions at given ticks, so every activation time below
follows from those numbers alone (the random request stream only has to keep the run
going past the last event: a run ends when its last request finishes).  At equal times
the engine handles pod events (activation, retry) before the monitor, and the monitor
before the controller tick.
"""

from __future__ import annotations

import copy
import heapq
from pathlib import Path

import numpy as np
import pytest

from faro.backends.sim.engine import SimCluster, simulate
from faro.backends.sim.kernel import R_ACTIVE, R_FREE, KernelState
from faro.control.types import Action
from faro.model.experiment import ExperimentError, experiment_from_dict
from faro.model.schema import write_requests
from faro.model.stats import used_replicas
from faro.model.trace import Trace
from faro.policies.base import Policy
from faro.policies.reactive import AIAD

RAW = {
    "name": "tiny",
    "trace": {"file": "tiny.json"},
    "jobs": {"names": ["a", "b"], "model": "m"},
    "models": {
        "m": {
            "processing_ms": 180,
            "slo_ms": 720,
            "service_time": {"shape": 0.42247119243841247, "loc": 0.07930158214998745,
                             "scale": 0.06858078649769431},
        }
    },
    "router": {"shape": 0.4807840738997673, "loc": 0.003485330525882586, "scale": 0.000987812095765591},
    "cluster": {},  # defaults: 1 CPU, 4 held, 50 queued, cold 35, warm 3, idle 30, monitor 5, retry 5
    "controller": {"upscale_order": "job"},
}
EXP = experiment_from_dict(RAW)
A, B = 0, 1


class Scripted(Policy):
    """Emits ``plan[t]`` (a list of Action keyword dicts) at tick ``t``."""

    def __init__(self, plan: dict[float, list[dict]], *, jobs=("a", "b"), quota=0, initial=None):
        super().__init__({}, jobs=jobs, quota=quota)
        self.plan = plan
        self.initial = initial

    def initial_replicas(self):
        return dict(self.initial) if self.initial else super().initial_replicas()

    def decide(self, snapshot):
        return [Action(**kw) for kw in self.plan.get(snapshot.time, [])]


def trace(minutes: int = 3, per_min: int = 60) -> Trace:
    """Light load (1 request/s per job): one replica keeps up, the run lasts ~minutes*60 s."""
    return Trace(("a", "b"), np.full((minutes, 2), per_min, np.int64))


def run(plan, quota=4, minutes=3, seed=42, initial=None):
    return simulate(EXP, trace(minutes), Scripted(plan, quota=quota, initial=initial), quota, seed)


def log_rows(res, job=None) -> list[tuple[float, int, int]]:
    rows = [(float(t), int(j), int(n)) for t, j, n in res.replica_log]
    return [r for r in rows if job is None or r[1] == job]


# --------------------------------------------------------------------------- starts


def test_cold_start_new_pod_is_active_after_35_s():
    # quota 4, a and b start with 1 replica each at t = 0.  Tick 10: a -> 2; no idle pod of
    # a exists -> a new pod, active at 10 + 35 = 45.
    res = run({10.0: [dict(job="a", target=2)]})
    assert log_rows(res) == [(0.0, A, 1), (0.0, B, 1), (45.0, A, 2)]
    d = res.decisions[0]
    assert (d["time"], d["job"], d["previous"], d["applied"], d["outcome"]) == (10.0, "a", 1, 2, "applied")


def test_warm_start_reuses_the_idle_pod_after_3_s():
    # 10: a -> 2 (cold, active 45).  60: a -> 1: the replica goes at once (row at 60), its
    # pod idles from 60.  70: a -> 2 reuses that pod (idle 10 s < 30): active 70 + 3 = 73.
    res = run({10.0: [dict(job="a", target=2)], 60.0: [dict(job="a", target=1)],
               70.0: [dict(job="a", target=2)]})
    assert log_rows(res, A) == [(0.0, A, 1), (45.0, A, 2), (60.0, A, 1), (73.0, A, 2)]


def test_upscale_by_two_with_one_idle_pod_is_one_warm_and_one_cold():
    # 10: a -> 2 (cold, 45).  60: a -> 1 (pod idle from 60).  70: a -> 3: the first new
    # replica takes the idle pod (73), the second needs a new pod (70 + 35 = 105).
    res = run({10.0: [dict(job="a", target=2)], 60.0: [dict(job="a", target=1)],
               70.0: [dict(job="a", target=3)]}, quota=5)
    assert log_rows(res, A) == [(0.0, A, 1), (45.0, A, 2), (60.0, A, 1), (73.0, A, 2), (105.0, A, 3)]


@pytest.mark.parametrize(
    ("t_up", "active_at"),
    [
        (80.0, 83.0),  # idle 20 s: the pod is still there -> warm start
        (90.0, 125.0),  # idle 30 s: the monitor at 90 (before the tick) removed it -> cold
        (100.0, 135.0),  # long gone -> cold
    ],
)
def test_idle_pod_is_removed_after_the_idle_timeout(t_up, active_at):
    # 10: a -> 2 (cold, 45).  60: a -> 1 (pod idle from 60).  The monitor runs every 5 s and
    # removes pods idle for >= 30 s: at t = 90.  An upscale at t_up is warm (t_up + 3) while
    # the pod exists, cold (t_up + 35) after.
    res = run({10.0: [dict(job="a", target=2)], 60.0: [dict(job="a", target=1)],
               t_up: [dict(job="a", target=2)]})
    assert log_rows(res, A)[-1] == (active_at, A, 2)


def test_full_node_retries_every_5_s():
    # quota 3: a and b hold 1 CPU each, 1 free.
    # 10: a -> 2: new pod (node full now), active 45.
    # 50: a -> 1: the ledger frees 1 CPU at once, but the idle pod holds it until the
    #     monitor removes it at 50 + 30 = 80.
    # 60: b -> 2: the ledger grants it, the node has no CPU -> the replica retries at
    #     65, 70, 75, 80 (at 80 the retry runs before the monitor frees the CPU), 85: new
    #     pod, active 85 + 35 = 120.
    res = run({10.0: [dict(job="a", target=2)], 50.0: [dict(job="a", target=1)],
               60.0: [dict(job="b", target=2)]}, quota=3)
    assert log_rows(res) == [(0.0, A, 1), (0.0, B, 1), (45.0, A, 2), (50.0, A, 1), (120.0, B, 2)]
    outcomes = [(d["time"], d["job"], d["outcome"], d["free_cpus_after"]) for d in res.decisions]
    assert outcomes == [(10.0, "a", "applied", 0), (50.0, "a", "applied", 1), (60.0, "b", "applied", 0)]


def test_executor_is_busy_while_a_replica_waits_for_cpu():
    # quota 4: a and b hold 1 CPU each, 2 free.
    # 10: a -> 3: two new pods (node full), active 45.   50: a -> 1: ledger 2 free at once,
    #     the two idle pods hold their CPUs until the monitor at 80.
    # 60: b -> 2 (ledger 1 free): node full -> retries 65..80, pod at 85, active 120.
    # 70..110: b +1 meets a busy executor (its replica is pending or starting) -> dropped
    #     (trials 1), the ledger keeps its 1 free CPU.
    # 120: the replica is active (pod events come before the tick): b +1 is carried out;
    #     one CPU is left on the node -> new pod, active 120 + 35 = 155.
    plan = {10.0: [dict(job="a", target=3)], 50.0: [dict(job="a", target=1)], 60.0: [dict(job="b", target=2)]}
    for t in (70.0, 80.0, 90.0, 100.0, 110.0, 120.0):
        plan[t] = [dict(job="b", delta=1)]
    res = run(plan, quota=4)
    b = [(d["time"], d["outcome"], d["free_cpus_after"]) for d in res.decisions if d["job"] == "b"]
    assert b == (
        [(60.0, "applied", 1)]
        + [(t, "dropped", 1) for t in (70.0, 80.0, 90.0, 100.0, 110.0)]
        + [(120.0, "applied", 0)]
    )
    assert log_rows(res, B) == [(0.0, B, 1), (120.0, B, 2), (155.0, B, 3)]
    # one row per replica that comes or goes (two at 45, two at 50)
    assert log_rows(res, A) == [(0.0, A, 1), (45.0, A, 2), (45.0, A, 3), (50.0, A, 2), (50.0, A, 1)]


# --------------------------------------------------------------------------- removal


def make_cluster(quota: int = 6, n_jobs: int = 1) -> SimCluster:
    """A SimCluster over an empty request stream (only pods and replicas matter here)."""
    z = np.zeros(0)
    kernel = KernelState.create(z, z.astype(np.float32), z.astype(np.float32), z.astype(np.float32),
                                np.zeros(1, np.float32), np.zeros(n_jobs + 1, np.int64),
                                n_slots=8, horizon_s=10.0, max_queued=50, max_held=4)
    exp = EXP if n_jobs == 2 else experiment_from_dict({**RAW, "jobs": {"names": ["a"], "model": "m"}})
    return SimCluster(exp, quota, kernel, np.random.default_rng(0))


def run_events(cl: SimCluster, until: float) -> None:
    """Handle the cluster's own events (activations, retries) up to ``until``."""
    while cl.events and cl.events[0][0] <= until:
        t, _p, _s, kind, obj = heapq.heappop(cl.events)
        cl.handle(kind, obj, t)


def test_scale_down_removes_the_newest_replicas():
    # t=0: replica serial 0 active.  t=10: -> 3: serials 1 and 2 on new pods (ready 45).
    # t=20: -> 2: the newest (serial 2) goes, while still starting; its activation at 45
    # is void, so only serial 1 becomes active at 45.  t=50: -> 1 removes serial 1.
    cl = make_cluster()
    cl.start_replicas(0, 1)
    cl.set_replicas("a", 3, 10.0)
    cl.set_replicas("a", 2, 20.0)
    assert [r.serial for r in cl.replicas[0]] == [0, 1]
    run_events(cl, 45.0)
    assert cl.replica_log == [(0.0, 0, 1), (45.0, 0, 2)]
    cl.set_replicas("a", 1, 50.0)
    assert [r.serial for r in cl.replicas[0]] == [0]
    assert cl.replica_log[-1] == (50.0, 0, 1)
    # three pods (two of them idle) still hold 3 of the 6 CPUs
    assert len(cl.pods[0]) == 3 and cl.node_free == 3


def test_removed_replica_slot_is_freed_and_reused():
    # The removed replica held no requests: its kernel slot is free again at once, and the
    # dispatch list names only the remaining active slot.
    cl = make_cluster()
    cl.start_replicas(0, 2)
    assert cl.kernel.r_state[0, :2].tolist() == [R_ACTIVE, R_ACTIVE]
    cl.set_replicas("a", 1, 5.0)
    assert cl.kernel.r_state[0, 1] == R_FREE
    assert cl.kernel.d_len[0] == 1 and cl.kernel.d_order[0, 0] == 0


def test_idle_timeout_never_removes_the_last_pod():
    # A job whose only replica was removed: its pod idles from t = 0 but the monitor keeps
    # it (never below one pod).  A second job's two idle pods: one is removed at 30, one stays.
    cl = make_cluster(quota=4, n_jobs=2)
    cl.start_replicas(0, 1)
    cl.start_replicas(1, 2)
    cl.set_replicas("a", 0, 0.0)
    cl.set_replicas("b", 0, 0.0)
    cl.handle("monitor", None, 25.0)  # idle 25 s < 30: nothing happens
    assert [len(p) for p in cl.pods] == [1, 2] and cl.node_free == 1
    cl.handle("monitor", None, 30.0)
    assert [len(p) for p in cl.pods] == [1, 1] and cl.node_free == 2
    cl.handle("monitor", None, 1000.0)
    assert [len(p) for p in cl.pods] == [1, 1] and cl.node_free == 2


def test_is_settling_while_replicas_start():
    cl = make_cluster()
    cl.start_replicas(0, 1)
    assert not cl.is_settling("a", 0.0)
    cl.set_replicas("a", 2, 10.0)
    assert cl.is_settling("a", 10.0)
    run_events(cl, 44.0)
    assert cl.is_settling("a", 44.0)
    run_events(cl, 45.0)
    assert not cl.is_settling("a", 45.0)


def test_metrics_per_minute_arrivals_are_counted_back_from_now():
    # arrivals_cum[j, s] = arrivals before second s; here 1 per second plus 2 extra in
    # second 100.  At now = 130 with 60-s bins the complete bins counted back from now are
    # [10, 70) and [70, 130): 60 and 60 + 2 = 62.  With 20-s bins (unit_time 20): six bins
    # [10, 30), ..., [110, 130): 20 each, 22 for [90, 110).
    cl = make_cluster()
    cl.start_replicas(0, 1)
    per_sec = np.ones(300, np.int64)
    per_sec[100] += 2
    cum = np.concatenate(([0], np.cumsum(per_sec)))[None, :]
    m = cl.metrics(130.0, cum, 30.0, 60.0)["a"]
    assert m.arrivals_per_min.tolist() == [60, 62]
    assert m.active_replicas == 1 and m.head_queue == 0 and m.replica_queues == (0,)
    assert cl.metrics(130.0, cum, 30.0, 20.0)["a"].arrivals_per_min.tolist() == [20, 20, 20, 20, 22, 20]
    assert cl.metrics(59.0, cum, 30.0, 60.0)["a"].arrivals_per_min.tolist() == []


# --------------------------------------------------------------------------- replica log


def test_replica_log_and_used_replicas():
    # Rows as in test_full_node_retries_every_5_s: total active replicas
    #   [0, 45): 2   [45, 50): 3   [50, 120): 2   [120, T]: 3
    # time-weighted mean over [0, T] = (2*45 + 3*5 + 2*70 + 3*(T - 120)) / T.
    res = run({10.0: [dict(job="a", target=2)], 50.0: [dict(job="a", target=1)],
               60.0: [dict(job="b", target=2)]}, quota=3)
    t_end = res.info["last_end_s"]
    assert t_end == float(np.nanmax(res.end)) and t_end > 170.0  # 3 trace minutes
    mean, mx = used_replicas(res.replicas_frame(), jobs=["a", "b"], t_end=t_end)
    assert mean == pytest.approx((2 * 45 + 3 * 5 + 2 * 70 + 3 * (t_end - 120)) / t_end, rel=1e-12)
    assert mx == 3
    frame = res.replicas_frame()
    assert frame["time_s"].tolist() == [0.0, 0.0, 45.0, 50.0, 120.0]
    assert frame["job"].astype(str).tolist() == ["a", "b", "a", "a", "b"]
    assert frame["replicas"].tolist() == [1, 1, 2, 1, 2]


def test_initial_replicas_are_active_at_zero_and_fairshare_never_changes():
    # A static 2 + 1 allocation: every change is at t = 0; the last row of each job at 0
    # gives its count and nothing changes later.
    res = run({}, quota=3, initial={"a": 2, "b": 1})
    rows = log_rows(res)
    assert all(t == 0.0 for t, _, _ in rows)
    assert [n for t, j, n in rows if j == A][-1] == 2
    assert [n for t, j, n in rows if j == B][-1] == 1
    assert res.decisions == []


def test_initial_replicas_above_quota_fail():
    with pytest.raises(ValueError, match="exceed the quota"):
        run({}, quota=2, initial={"a": 2, "b": 1})


# --------------------------------------------------------------------------- requests


def test_requests_are_all_accounted_for():
    # 3 minutes x 60 requests x 2 jobs = 360 requests, all served (light load), each with
    # arrival <= start <= end and latency = (end - arrival) * 1000.
    res = run({})
    df = res.requests_frame()
    assert len(df) == 360
    assert (df.groupby("job", observed=True).size() == 180).all()
    assert df["succeeded"].all() and (df["status"] == 200).all()
    assert (df["start_s"] >= df["arrival_s"]).all() and (df["end_s"] > df["start_s"]).all()
    np.testing.assert_allclose(df["latency_ms"], (df["end_s"] - df["arrival_s"]) * 1000)
    # the first arrival of each job and minute goes out at k * 60 (to float precision)
    for j in ("a", "b"):
        arr = np.sort(df.loc[df["job"] == j, "arrival_s"].to_numpy())
        for k in range(3):
            assert np.min(np.abs(arr - 60.0 * k)) < 1e-9


def test_replica_overhead_adds_to_every_service_time():
    # same seed -> same draws; at this light load a request never waits in its replica, so
    # its time in the replica (start -> end, router out included) grows by exactly 4 ms
    tr = trace()
    base = simulate(EXP, tr, Scripted({}), 4, 7)
    slow = simulate(EXP, tr, Scripted({}), 4, 7, replica_overhead_s=0.004)
    np.testing.assert_array_equal(base.arrival, slow.arrival)
    diff = (slow.end - slow.start) - (base.end - base.start)
    assert np.mean(np.abs(diff - 0.004) < 1e-5) > 0.95  # float32 draws; rare router contention
    with pytest.raises(ValueError, match="replica_overhead_s must be >= 0"):
        simulate(EXP, tr, Scripted({}), 4, 7, replica_overhead_s=-0.001)


def busy_run(seed: int):
    """An overloaded AIAD run (7 req/s on 1 replica: upscales, drops, random tie-breaks)."""
    tr = Trace(("a", "b"), np.array([[420, 300], [420, 300], [120, 420]], np.int64))
    pol = AIAD({}, jobs=["a", "b"], quota=4)
    exp = experiment_from_dict({**RAW, "controller": {"upscale_order": "random"}})
    return simulate(exp, tr, pol, 4, seed)


def test_same_seed_gives_identical_requests_and_parquet_bytes(tmp_path):
    r1, r2 = busy_run(42), busy_run(42)
    for name in ("job", "arrival", "start", "end", "status", "replica_log"):
        np.testing.assert_array_equal(getattr(r1, name), getattr(r2, name), err_msg=name)
    assert r1.decisions == r2.decisions
    # the run does exercise the interesting paths
    assert (r1.status != 1).any() and len(r1.replica_log) > 2
    prov = {"seed": 42, "git_commit": "test", "backend": "sim"}
    write_requests(r1.requests_frame(), tmp_path / "r1.parquet", prov)
    write_requests(r2.requests_frame(), tmp_path / "r2.parquet", prov)
    assert (tmp_path / "r1.parquet").read_bytes() == (tmp_path / "r2.parquet").read_bytes()


def test_different_seeds_differ():
    r1, r2 = busy_run(42), busy_run(43)
    assert len(r1.arrival) == len(r2.arrival)  # the trace fixes the counts
    assert not np.array_equal(r1.arrival, r2.arrival)
    assert not np.array_equal(r1.end, r2.end)


def test_trace_jobs_must_match_the_experiment():
    tr = Trace(("a", "c"), np.ones((1, 2), np.int64))
    with pytest.raises(ValueError, match="differ"):
        simulate(EXP, tr, Scripted({}), 4, 42)


def test_experiment_rejects_unknown_keys_naming_them():
    raw = copy.deepcopy(RAW)
    raw["cluster"]["warm_start"] = 3
    with pytest.raises(ExperimentError, match="cluster.*warm_start"):
        experiment_from_dict(raw)


def test_run_stats_in_process_matches_simulate_and_applies_overrides():
    from faro.backends.sim.inprocess import load_policy_spec, run_stats
    from faro.model.stats import latency_stats

    tr = Trace(("a", "b"), np.array([[420, 300], [420, 300], [120, 420]], np.int64))
    spec = {"class": "aiad", "params": {"upscale_ticks": 3}}
    st = run_stats(EXP, tr, spec, 4, 42, context={"unit_time": 60.0})
    res = simulate(EXP, tr, AIAD({"upscale_ticks": 3}, jobs=["a", "b"], quota=4), 4, 42)
    ref = latency_stats(res.requests_frame(), jobs=EXP.jobs, slo_ms=720, unit_time=60.0, n_minutes=3,
                        replicas=res.replicas_frame())
    assert st["slo_rate"] == ref["slo_rate"] and st["avg_total_utility"] == ref["avg_total_utility"]
    # an override replaces the file's parameter: never upscaling changes the run
    slow = run_stats(EXP, tr, spec, 4, 42, context={"unit_time": 60.0}, params={"upscale_ticks": 1000})
    assert slow["slo_rate"] < st["slo_rate"]
    assert (load_policy_spec(Path(__file__).resolve().parents[1] / "config/policies", "aiad")["class"]
            == "aiad")
