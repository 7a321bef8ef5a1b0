"""Tests of faro.model.stats on hand-computed cases (docs/model.md section 5)."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest

from faro.model.stats import (
    FAILED_LATENCY,
    average_over_seeds,
    binned_metrics,
    drop_penalty,
    grouped_quantile,
    latency_stats,
    read_stats,
    stats_row,
    to_jsonable,
    used_replicas,
    write_stats,
)

NAN = math.nan


def make_requests(rows: list[tuple[str, float, float]], seed: int = 42) -> pd.DataFrame:
    """rows: (job, arrival_s, latency_ms or NaN) -> a frame with the schema's columns."""
    job = [r[0] for r in rows]
    arr = np.array([r[1] for r in rows], dtype=float)
    lat = np.array([r[2] for r in rows], dtype=float)
    ok = ~np.isnan(lat)
    end = arr + np.where(ok, lat, 5.0) / 1000.0
    return pd.DataFrame(
        {
            "job": job,
            "seed": seed,
            "arrival_s": arr,
            "start_s": arr,
            "end_s": end,
            "latency_ms": lat,
            "succeeded": ok,
            "status": np.where(ok, 200, 503).astype(np.int16),
        }
    )


# Two jobs, unit_time 10 s, n_minutes 3 -> 4 slots (0..3); slot 3 is empty.
#   A bin 0: 50, 100, 150      A bin 1: 80, failed
#   B bin 0: 200               B bin 1: (none)      B bin 2: 100, 20
BASE = [
    ("A", 1.0, 50.0), ("A", 2.0, 100.0), ("A", 9.9, 150.0),
    ("A", 10.0, 80.0), ("A", 15.0, NAN),
    ("B", 3.0, 200.0),
    ("B", 20.0, 100.0), ("B", 29.0, 20.0),
]
JOBS = ["A", "B"]


def base_stats(**kw):
    kw.setdefault("slo_ms", 100.0)
    return latency_stats(make_requests(BASE), jobs=JOBS, unit_time=10.0, n_minutes=3, **kw)


def test_overall_latency_keys():
    s = base_stats()
    # successes sorted: 20 50 80 100 100 150 200 (7 values, sum 700)
    assert s["avg"] == pytest.approx(100.0)
    assert s["min"] == 20.0 and s["max"] == 200.0
    # linear: p90 index 6*0.9=5.4 -> 150+0.4*50; p95 5.7 -> 185; p99 5.94 -> 197
    assert s["p90"] == pytest.approx(170.0)
    assert s["p95"] == pytest.approx(185.0)
    assert s["p99"] == pytest.approx(197.0)
    assert s["failed"] == 1 and isinstance(s["failed"], int)
    assert s["target_slo"] == 100.0 and s["utility"] == "latency"


def test_slo_rate_strict_and_bins_inclusive():
    """slo_rate counts latency < SLO, the per-bin rates latency <= SLO (swap either: fail)."""
    s = base_stats()
    # < 100: 50, 80, 20 -> 3 of 8 requests (the failure is a miss; <= would give 5/8)
    assert s["slo_rate"] == pytest.approx(37.5)
    # A: bin0 {50,100} of 3 = 2/3 (strict: 1/3); bin1 80 of 2 = 1/2 -> mean 7/12
    assert s["avg_slo_rate_A"] == pytest.approx(7 / 12)
    # B: bin0 0/1, bin2 {100,20} 2/2 (strict: 1/2) -> 1/2
    assert s["avg_slo_rate_B"] == pytest.approx(0.5)
    # slot0 mean(2/3, 0)=1/3, slot1 A only 1/2, slot2 B only 1, slot3 empty: skipped
    assert s["avg_total_slo_rate"] == pytest.approx((1 / 3 + 1 / 2 + 1) / 3)


def test_utility_keys():
    s = base_stats()
    # A bin0 [50,100,150]: idx 1.98 -> 150 - 50*0.02 = 149, u = 100/149
    # A bin1 [80, MAX]: p99 ~ 0.99*MAX -> u ~ 0 (5.6e-307)
    # B bin0 [200] -> u 0.5; B bin2 [20,100]: 100 - 80*0.01 = 99.2 -> u = min(1, 1.008) = 1
    assert s["avg_util_A"] == pytest.approx(50 / 149)
    assert s["avg_util_B"] == pytest.approx(0.75)
    # per slot sums: 100/149+0.5, ~0, 1, 0 (empty last slot) -> mean over all 4 slots
    assert s["avg_total_utility"] == pytest.approx((100 / 149 + 1.5) / 4)


def test_effective_utility_keys():
    s = base_stats()
    # A bin0: successes [50,100,150] p99 149, 0% dropped -> 100/149
    # A bin1: successes [80] -> u 1, but 50% dropped -> penalty 1 -> 0
    # B bins: 0.5 and 1, nothing dropped
    assert s["avg_effective_util_A"] == pytest.approx(50 / 149)
    assert s["avg_effective_util_B"] == pytest.approx(0.75)
    assert s["avg_total_effective_utility"] == pytest.approx((100 / 149 + 1.5) / 4)


def test_effective_differs_from_plain_with_small_drop_fraction():
    # one bin of 100 requests of A: 99 at 50 ms, 1 failed (1% -> no penalty)
    rows = [("A", 1.0, 50.0)] * 99 + [("A", 2.0, NAN)]
    s = latency_stats(make_requests(rows), jobs=["A"], slo_ms=100.0, unit_time=10.0, n_minutes=0)
    # plain p99: idx 98.01 between 50 and MAX -> huge -> u ~ 0; effective: p99 50 -> 1 * (1 - 0)
    assert s["avg_util_A"] == pytest.approx(0.0, abs=1e-300)
    assert s["avg_effective_util_A"] == 1.0
    # one slot only (n_minutes 0 -> 1 slot)
    assert s["avg_total_effective_utility"] == 1.0
    assert s["slo_rate"] == pytest.approx(99.0)


def test_all_failure_bin():
    # A bin0: 2 failures; A bin1: 50 ms; B bin0: 50 ms. 2 slots (n_minutes 1).
    rows = [("A", 1.0, NAN), ("A", 2.0, NAN), ("A", 11.0, 50.0), ("B", 1.0, 50.0)]
    s = latency_stats(make_requests(rows), jobs=JOBS, slo_ms=100.0, unit_time=10.0, n_minutes=1)
    assert s["failed"] == 2
    assert s["avg"] == 50.0 and s["p99"] == 50.0
    assert s["slo_rate"] == pytest.approx(50.0)
    # A: bin0 0/2, bin1 1 -> 0.5; slots: mean(0,1)=0.5, 1 -> 0.75
    assert s["avg_slo_rate_A"] == pytest.approx(0.5)
    assert s["avg_total_slo_rate"] == pytest.approx(0.75)
    # plain utility: all-failure bin has p99 = MAX -> u = 100/MAX ~ 0 (tiny, not NaN)
    assert s["avg_util_A"] == pytest.approx(0.5)
    assert s["avg_total_utility"] == pytest.approx((0 + 1 + 1) / 2)
    # effective: bin0 has no success -> left out of A's mean (as the artifact does) ...
    assert s["avg_effective_util_A"] == 1.0
    # ... and adds 0 to the per-slot sum: slot0 0 + 1, slot1 1 -> 1
    assert s["avg_total_effective_utility"] == pytest.approx(1.0)
    b = binned_metrics(make_requests(rows), jobs=JOBS, slo_ms=100.0, unit_time=10.0, n_minutes=1)
    assert np.isnan(b.effective_util[0, 0]) and 0 < b.util[0, 0] < 1e-300
    assert b.requests.tolist() == [[2, 1], [1, 0]] and b.failed.tolist() == [[2, 0], [0, 0]]


def test_drop_penalty_thresholds_exact():
    assert drop_penalty(0.0) == 0.0
    assert drop_penalty(1 / 100) == 0.0
    assert drop_penalty(2 / 100) == 0.25
    assert drop_penalty(5 / 100) == 0.25
    assert drop_penalty(6 / 100) == 0.5
    assert drop_penalty(10 / 100) == 0.5
    assert drop_penalty(11 / 100) == 1.0
    assert drop_penalty(1.0) == 1.0
    assert drop_penalty(np.nextafter(0.05, 1)) == 0.5


def test_drop_penalty_thresholds_in_bins():
    # bin k holds 100 requests of A, fails[k] of them failed, the rest at 50 ms (u = 1)
    fails = [0, 1, 2, 5, 6, 10, 11]
    rows = []
    for k, f in enumerate(fails):
        rows += [("A", 10.0 * k + 0.5, NAN)] * f + [("A", 10.0 * k + 1.0, 50.0)] * (100 - f)
    s = latency_stats(make_requests(rows), jobs=["A"], slo_ms=100.0, unit_time=10.0,
                      n_minutes=len(fails) - 1)
    b = binned_metrics(make_requests(rows), jobs=["A"], slo_ms=100.0, unit_time=10.0,
                       n_minutes=len(fails) - 1)
    expected = [1.0, 1.0, 0.75, 0.75, 0.5, 0.5, 0.0]
    assert b.effective_util[0].tolist() == expected
    assert s["avg_effective_util_A"] == pytest.approx(np.mean(expected))
    # 7 slots (n_minutes + 1), all with data
    assert s["avg_total_effective_utility"] == pytest.approx(np.mean(expected))


def test_mixed_slo_per_job():
    s = base_stats(slo_ms={"A": 100.0, "B": 200.0})
    assert s["target_slo"] == 200.0  # the largest SLO
    # < own SLO: A 50, 80; B 100, 20 (200 is not < 200) -> 4/8
    assert s["slo_rate"] == pytest.approx(50.0)
    # B: bin0 200 <= 200 -> 1; bin2 -> 1
    assert s["avg_slo_rate_B"] == 1.0
    assert s["avg_util_B"] == 1.0  # 200/200 and min(1, 200/99.2)
    assert s["avg_slo_rate_A"] == pytest.approx(7 / 12)


def test_succeeded_false_counts_as_failed():
    df = make_requests([("A", 1.0, 50.0), ("A", 2.0, 60.0)])
    df.loc[1, "succeeded"] = False
    s = latency_stats(df, jobs=["A"], slo_ms=100.0, unit_time=10.0, n_minutes=0)
    assert s["failed"] == 1 and s["max"] == 50.0 and s["slo_rate"] == 50.0


def test_slots_grow_when_arrivals_spill_past_the_trace():
    rows = [("A", 1.0, 50.0), ("A", 35.0, 50.0)]  # bin 3 > n_minutes + 1 slots
    s = latency_stats(make_requests(rows), jobs=["A"], slo_ms=100.0, unit_time=10.0, n_minutes=1)
    # 4 slots (0..3) with data in 0 and 3 -> utility sum 2 / 4
    assert s["avg_total_utility"] == pytest.approx(0.5)
    assert s["avg_util_A"] == 1.0


def test_job_without_requests_and_key_set():
    s = latency_stats(make_requests(BASE), jobs=["A", "B", "C"], slo_ms=100.0, unit_time=10.0, n_minutes=3)
    assert math.isnan(s["avg_slo_rate_C"]) and math.isnan(s["avg_util_C"])
    assert math.isnan(s["avg_effective_util_C"])
    assert s["avg_total_utility"] == pytest.approx((100 / 149 + 1.5) / 4)  # C adds nothing
    expected = ["avg", "min", "max", "p90", "p95", "p99", "failed", "slo_rate", "target_slo", "utility"]
    expected += [f"avg_slo_rate_{j}" for j in "ABC"] + ["avg_total_slo_rate"]
    expected += [f"avg_util_{j}" for j in "ABC"] + ["avg_total_utility"]
    expected += [f"avg_effective_util_{j}" for j in "ABC"] + ["avg_total_effective_utility"]
    assert list(s) == expected


def test_bad_input_errors():
    df = make_requests(BASE)
    with pytest.raises(ValueError, match="not in jobs"):
        latency_stats(df, jobs=["A"], slo_ms=100.0, unit_time=10.0, n_minutes=3)
    with pytest.raises(ValueError, match="no SLO"):
        latency_stats(df, jobs=JOBS, slo_ms={"A": 100.0}, unit_time=10.0, n_minutes=3)
    with pytest.raises(ValueError, match="utility"):
        latency_stats(df, jobs=JOBS, slo_ms=100.0, unit_time=10.0, n_minutes=3, utility="step")
    with pytest.raises(ValueError, match="empty"):
        latency_stats(df.iloc[:0], jobs=JOBS, slo_ms=100.0, unit_time=10.0, n_minutes=3)


def test_categorical_job_column_same_result():
    df = make_requests(BASE)
    cat = df.assign(job=pd.Categorical(df["job"], categories=["Z", "B", "A"]))
    a = latency_stats(df, jobs=JOBS, slo_ms=100.0, unit_time=10.0, n_minutes=3)
    b = latency_stats(cat, jobs=JOBS, slo_ms=100.0, unit_time=10.0, n_minutes=3)
    assert a == b


# ----------------------------------------------------------------- replicas


def rep_frame(rows):
    return pd.DataFrame(rows, columns=["time_s", "job", "replicas"])


def test_time_weighted_replicas():
    reps = rep_frame([
        (0.0, "A", 1), (10.0, "A", 3), (30.0, "A", 2),
        (0.0, "B", 1), (10.0, "B", 2), (50.0, "B", 9),  # the change at 50 is after the end
    ])
    # total: [0,10) 2, [10,30) 5, [30,40) 4 -> (20 + 100 + 40) / 40 = 4; max 5
    assert used_replicas(reps, jobs=JOBS, t_end=40.0) == (pytest.approx(4.0), 5)
    rows = [("A", 1.0, 50.0), ("B", 39.0, 1000.0)]  # last end = 39 + 1 = 40 s
    s = latency_stats(make_requests(rows), jobs=JOBS, slo_ms=100.0, unit_time=10.0, n_minutes=3,
                      replicas=reps)
    assert s["avg_used_replicas"] == pytest.approx(4.0)
    assert s["max_used_replicas"] == 5
    assert "avg_used_replicas" not in latency_stats(
        make_requests(rows), jobs=JOBS, slo_ms=100.0, unit_time=10.0, n_minutes=3)


def test_replicas_same_instant_changes_are_one_state():
    # at t=10 A goes 1 -> 4 and B 3 -> 1 at once: total 4 -> 5, never the transient 7
    reps = rep_frame([(0.0, "A", 1), (0.0, "B", 3), (10.0, "A", 4), (10.0, "B", 1)])
    avg, mx = used_replicas(reps, jobs=JOBS, t_end=20.0)
    assert mx == 5 and avg == pytest.approx((4 * 10 + 5 * 10) / 20)


def test_replicas_unsorted_rows_and_late_first_row():
    # B's first row at 5 s: B counts 0 before it; rows out of order
    reps = rep_frame([(5.0, "B", 2), (0.0, "A", 1)])
    avg, mx = used_replicas(reps, jobs=JOBS, t_end=10.0)
    assert avg == pytest.approx((1 * 5 + 3 * 5) / 10) and mx == 3


# ----------------------------------------------------------------- quantiles


def test_grouped_quantile_matches_numpy_bit_for_bit():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 40, 300)
    vals = rng.lognormal(5, 1, counts.sum())
    vals[rng.random(vals.size) < 0.1] = FAILED_LATENCY
    starts = np.cumsum(counts) - counts
    for s, n in zip(starts, counts):
        vals[s:s + n].sort()
    got = grouped_quantile(vals, starts, counts, 0.99)
    for i, (s, n) in enumerate(zip(starts, counts)):
        if n == 0:
            assert np.isnan(got[i])
        else:
            assert got[i] == np.percentile(vals[s:s + n], 99)


def test_against_naive_groupby_reference():
    """The vectorised path agrees with a per-group pandas/numpy computation."""
    rng = np.random.default_rng(7)
    n = 6000
    jobs = ["j0", "j1", "j2"]
    lat = rng.lognormal(np.log(80), 0.5, n)
    lat[rng.random(n) < 0.04] = np.nan
    df = make_requests(list(zip(rng.choice(jobs, n), rng.uniform(0, 50, n), lat)))
    slo = {"j0": 80.0, "j1": 100.0, "j2": 120.0}
    s = latency_stats(df, jobs=jobs, slo_ms=slo, unit_time=10.0, n_minutes=5)
    df["bin"] = np.floor(df.arrival_s / 10.0).astype(int)
    util, eff, frac = {}, {}, {}
    for (j, b), g in df.groupby(["job", "bin"]):
        x = g.latency_ms.to_numpy()
        p = np.percentile(np.where(np.isnan(x), np.finfo(float).max, x), 99)
        util[j, b] = min(1.0, slo[j] / p)
        ok = x[~np.isnan(x)]
        d = np.isnan(x).mean()
        pen = 0.0 if d <= 0.01 else 0.25 if d <= 0.05 else 0.5 if d <= 0.1 else 1.0
        eff[j, b] = min(1.0, slo[j] / np.percentile(ok, 99)) * (1 - pen)
        frac[j, b] = (x <= slo[j]).mean()
    for j in jobs:
        assert s[f"avg_util_{j}"] == pytest.approx(np.mean([v for k, v in util.items() if k[0] == j]))
        assert s[f"avg_effective_util_{j}"] == pytest.approx(
            np.mean([v for k, v in eff.items() if k[0] == j]))
        assert s[f"avg_slo_rate_{j}"] == pytest.approx(np.mean([v for k, v in frac.items() if k[0] == j]))
    assert s["avg_total_utility"] == pytest.approx(sum(util.values()) / 6)
    assert s["avg_total_effective_utility"] == pytest.approx(sum(eff.values()) / 6)
    per_slot = pd.Series(frac).groupby(level=1).mean()
    assert s["avg_total_slo_rate"] == pytest.approx(per_slot.mean())
    ok = df.latency_ms.dropna()
    assert s["p99"] == np.percentile(ok, 99) and s["avg"] == pytest.approx(ok.mean())
    thr = df.job.map(slo)
    assert s["slo_rate"] == pytest.approx(100 * (df.latency_ms < thr).sum() / n)


# ----------------------------------------------------------------- seeds and files


def test_average_over_seeds_two():
    runs = [
        {"avg": 1.0, "failed": 3, "utility": "latency", "x": NAN, "y": NAN},
        {"avg": 3.0, "failed": 5, "utility": "latency", "x": 2.0, "y": NAN},
    ]
    c = average_over_seeds(runs, [24, 42])
    assert c["avg"] == 2.0 and c["failed"] == 4.0 and c["utility"] == "latency"
    # sample std (ddof=1) of {1, 3}: sqrt(((1-2)^2 + (3-2)^2) / 1) = sqrt(2)
    assert c["avg_std"] == pytest.approx(math.sqrt(2)) and c["failed_std"] == pytest.approx(math.sqrt(2))
    assert c["x"] == 2.0 and c["x_std"] == 0.0  # NaN skipped, one value left
    assert math.isnan(c["y"]) and math.isnan(c["y_std"])
    assert c["seeds"] == [24, 42]
    assert "utility_std" not in c


def test_average_over_seeds_one_equals_run():
    run = base_stats()
    c = average_over_seeds([run], [42])
    for k, v in run.items():
        assert c[k] == v or (isinstance(v, float) and math.isnan(v) and math.isnan(c[k]))
        assert type(c[k]) is type(v)
        if k != "utility":
            assert c[f"{k}_std"] == 0.0
    assert c["seeds"] == [42]
    assert set(c) == set(run) | {"seeds"} | {f"{k}_std" for k in run if k != "utility"}


def test_average_over_seeds_errors():
    with pytest.raises(ValueError):
        average_over_seeds([{"a": 1.0}], [1, 2])
    with pytest.raises(ValueError, match="differs"):
        average_over_seeds([{"u": "latency"}, {"u": "step"}], [1, 2])
    with pytest.raises(ValueError, match="keys differ"):
        average_over_seeds([{"a": 1.0}, {"b": 1.0}], [1, 2])


def test_to_jsonable():
    d = to_jsonable({"a": np.float64(NAN), "b": np.int64(3), "c": math.inf, "d": [np.float32(0.5), NAN],
                     "e": "latency", 5: np.array([1.0, np.nan])})
    assert d == {"a": None, "b": 3, "c": None, "d": [0.5, None], "e": "latency", "5": [1.0, None]}
    assert type(d["b"]) is int
    json.dumps(d, allow_nan=False)


def test_write_read_stats_roundtrip(tmp_path):
    stats = average_over_seeds([base_stats(), base_stats()], [1, 2])
    stats["nan_key"] = NAN
    pkl, js = tmp_path / "cell" / "latency_stats.pkl", tmp_path / "cell" / "latency_stats.json"
    write_stats(stats, pkl, js)
    back = read_stats(pkl)
    assert back.keys() == stats.keys()
    assert all(back[k] == v or math.isnan(v) for k, v in stats.items() if not isinstance(v, (str, list)))
    text = js.read_text()
    assert "NaN" not in text and '"nan_key": null' in text
    loaded = json.loads(text)
    assert loaded["avg_total_utility"] == pytest.approx(stats["avg_total_utility"])
    assert loaded["seeds"] == [1, 2]
    assert sorted(p.name for p in pkl.parent.iterdir()) == ["latency_stats.json", "latency_stats.pkl"]
    with open(pkl, "rb") as fh:
        assert isinstance(pickle.load(fh), dict)


def test_stats_row_scalars_only():
    c = average_over_seeds([base_stats()], [42])
    row = stats_row(c)
    assert "seeds" not in row and row["utility"] == "latency" and row["avg"] == c["avg"]
    assert all(not isinstance(v, (list, dict, np.ndarray)) for v in row.values())
    assert len(pd.DataFrame([row, row])) == 2


def test_a_runs_results_job_hands_on_what_a_reader_of_its_files_gets(tmp_path):
    """run_results writes the requests and passes the returned frames on in memory: they equal
    the files read back, and stats and bins from them equal the stats of the read-back files."""
    from faro.model.binned import binned_frame
    from faro.model.schema import read_replicas, read_requests, write_replicas, write_requests
    from faro.model.stats import run_metrics

    req = make_requests([("b", 0.5, 100.0), ("a", 1.0, NAN), ("a", 61.0, 900.0), ("b", 62.0, 700.0),
                         ("a", 130.0, 300.0)])
    rep = pd.DataFrame({"time_s": [0.0, 0.0, 65.0], "job": ["a", "b", "a"], "replicas": [1, 1, 2]})
    prov = {"seed": 42}
    mem_req = write_requests(req, tmp_path / "requests.parquet", prov)
    mem_rep = write_replicas(rep, tmp_path / "replicas.parquet", prov)
    pd.testing.assert_frame_equal(mem_req, read_requests(tmp_path / "requests.parquet"))
    pd.testing.assert_frame_equal(mem_rep, read_replicas(tmp_path / "replicas.parquet"))
    kw = dict(jobs=["a", "b"], slo_ms=720.0, unit_time=60.0, n_minutes=3)
    stats, bins = run_metrics(mem_req, replicas=mem_rep, **kw)
    assert json.dumps(to_jsonable(stats), sort_keys=True) == json.dumps(to_jsonable(
        latency_stats(read_requests(tmp_path / "requests.parquet"),
                      replicas=read_replicas(tmp_path / "replicas.parquet"), **kw)), sort_keys=True)
    frame = binned_frame(bins)
    # hand-computed: job a has 1 request per minute 0..2 (the first failed), job b 1 in minutes 0, 1
    a = frame[frame["job"] == "a"].set_index("minute")
    assert list(a["requests"][:3]) == [1, 1, 1] and list(a["failed"][:3]) == [1, 0, 0]
    assert list(a["slo_frac"][:3]) == [0.0, 0.0, 1.0]
    assert stats["failed"] == 1 and stats["slo_rate"] == pytest.approx(100.0 * 3 / 5)
