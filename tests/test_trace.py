"""The trace format (faro.model.trace): parsing, validation errors, Poisson arrivals.

docs/model.md section 2: JSON Lines, one line per trace minute,
``{"ts": k, "counts": {job: {deployment: count}}}``.  Within minute k a job's
``count`` requests are sent open-loop from k * unit_time with exponential gaps of mean
unit_time / count; the first goes out at once; minutes may overlap.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from faro.model.arrivals import poisson_arrivals
from faro.model.trace import Trace, TraceError, parse_trace, write_trace


def line(ts, **counts) -> str:
    return json.dumps({"ts": ts, "counts": {j: {"classifier": c} for j, c in counts.items()}})


def write(tmp_path, *lines: str, name="trace.json"):
    p = tmp_path / name
    p.write_text("".join(f"{x}\n" for x in lines))
    return p


# --------------------------------------------------------------------------- parsing


def test_parse_valid_trace(tmp_path):
    p = write(tmp_path, line(0, a=3, b=0), line(1, a=5, b=7))
    tr = parse_trace(p)
    assert tr.jobs == ("a", "b")
    assert tr.counts.tolist() == [[3, 0], [5, 7]]
    assert tr.n_minutes == 2 and tr.total == 15


def test_jobs_sort_naturally_and_deployments_are_summed(tmp_path):
    rec = {"ts": 0, "counts": {"serve-cluster10": {"x": 1}, "serve-cluster9": {"x": 2, "y": 3}}}
    p = write(tmp_path, json.dumps(rec))
    tr = parse_trace(p)
    assert tr.jobs == ("serve-cluster9", "serve-cluster10")
    assert tr.counts.tolist() == [[5, 1]]


def test_jobs_argument_selects_and_orders(tmp_path):
    p = write(tmp_path, line(0, a=1, b=2, c=3))
    assert parse_trace(p, ["c", "a"]).counts.tolist() == [[3, 1]]


def test_blank_lines_are_skipped_but_counted(tmp_path):
    # the malformed line is physical line 3, after a blank line 2
    p = tmp_path / "t.json"
    p.write_text(line(0, a=1) + "\n\n{oops\n")
    with pytest.raises(TraceError, match=r"t\.json:3: malformed JSON"):
        parse_trace(p)


def test_malformed_json_reports_its_line_number(tmp_path):
    p = write(tmp_path, line(0, a=1), line(1, a=1), '{"ts": 2, "counts": {"a": {"classifier": 4}}')
    with pytest.raises(TraceError, match=r"trace\.json:3: malformed JSON"):
        parse_trace(p)


def test_line_without_keys(tmp_path):
    p = write(tmp_path, line(0, a=1), json.dumps({"ts": 1}))
    with pytest.raises(TraceError, match=r":2: each line needs keys 'ts' and 'counts'"):
        parse_trace(p)


def test_missing_job_names_line_and_job(tmp_path):
    p = write(tmp_path, line(0, a=1, b=2), line(1, a=1))
    with pytest.raises(TraceError, match=r":2: missing job\(s\) b"):
        parse_trace(p)


def test_missing_experiment_job(tmp_path):
    p = write(tmp_path, line(0, a=1, b=2))
    with pytest.raises(TraceError, match=r":1: missing job\(s\) c"):
        parse_trace(p, ["a", "b", "c"])


def test_negative_count(tmp_path):
    p = write(tmp_path, line(0, a=1), line(1, a=-4))
    with pytest.raises(TraceError, match=r":2: job 'a' has a negative count -4"):
        parse_trace(p)


@pytest.mark.parametrize("bad", [1.5, "7", True, None, [3]])
def test_non_integer_count(tmp_path, bad):
    p = write(tmp_path, line(0, a=bad))
    with pytest.raises(TraceError, match=r":1: job 'a' has a non-integer count"):
        parse_trace(p)


def test_integral_float_count_is_accepted(tmp_path):
    p = write(tmp_path, line(0, a=3.0))
    assert parse_trace(p).counts.tolist() == [[3]]


@pytest.mark.parametrize("bad", ["NaN", "1e400"])
def test_non_finite_count_reports_its_line(tmp_path, bad):
    p = tmp_path / "t.json"
    p.write_text(line(0, a=1) + "\n" + '{"ts": 1, "counts": {"a": {"classifier": ' + bad + "}}}\n")
    with pytest.raises(TraceError, match=r"t\.json:2:"):
        parse_trace(p)


@pytest.mark.parametrize(("ts", "msg"), [(2, "expected ts 1, found 2"), (0, "expected ts 1, found 0"),
                                         ("1", "expected ts 1, found '1'")])
def test_wrong_ts_order(tmp_path, ts, msg):
    p = write(tmp_path, line(0, a=1), line(ts, a=1))
    with pytest.raises(TraceError, match=rf":2: {msg}"):
        parse_trace(p)


def test_empty_file(tmp_path):
    p = tmp_path / "e.json"
    p.write_text("")
    with pytest.raises(TraceError, match="trace is empty"):
        parse_trace(p)
    p.write_text("\n  \n")
    with pytest.raises(TraceError, match="trace is empty"):
        parse_trace(p)


def test_missing_file(tmp_path):
    with pytest.raises(TraceError, match="not found"):
        parse_trace(tmp_path / "nope.json")


def test_write_then_parse_round_trips(tmp_path):
    tr = Trace(("x", "y"), np.array([[1, 2], [0, 5], [7, 0]], np.int64))
    write_trace(tr, tmp_path / "sub" / "t.json")
    back = parse_trace(tmp_path / "sub" / "t.json")
    assert back.jobs == tr.jobs and np.array_equal(back.counts, tr.counts)


# --------------------------------------------------------------------------- arrivals


class UnitExp:
    """A stand-in generator whose standard exponential draws are given values."""

    def __init__(self, values):
        self.values = np.asarray(values, float)

    def exponential(self, scale, size):
        assert size == len(self.values)
        return scale * self.values


def test_arrivals_with_unit_gaps_are_evenly_spaced():
    # counts [2, 0, 4], unit_time 60, every standard draw = 1 -> gap = 60 / count:
    # minute 0: 0, 30.  minute 2 starts at 120 with gaps of 15: 120, 135, 150, 165.
    t = poisson_arrivals(np.array([2, 0, 4]), 60.0, UnitExp(np.ones(6)))
    assert t.tolist() == [0.0, 30.0, 120.0, 135.0, 150.0, 165.0]


def test_minutes_may_overlap():
    # counts [3, 1]; draws 1, 3, 1 for minute 0 (mean gap 20 -> gaps 20, 60, 20) and 1 for
    # minute 1.  Minute 0 sends at 0, 0+20 = 20, 20+60 = 80 (the last gap, after the last
    # request, is unused); minute 1's request goes out at 60 regardless -> sorted 0, 20, 60, 80.
    t = poisson_arrivals(np.array([3, 1]), 60.0, UnitExp([1, 3, 1, 1]))
    assert t.tolist() == [0.0, 20.0, 60.0, 80.0]


def test_no_requests():
    assert len(poisson_arrivals(np.array([0, 0]), 60.0, np.random.default_rng(0))) == 0


def test_counts_per_minute_are_preserved():
    # Empty minutes between busy ones: minute k's requests lie in [60k, 60k + sum of
    # count - 1 gaps), ~60 s +- 60/sqrt(count) s, so they never reach minute k+2 and the
    # windows [60k - 1, 60k + 119) hold exactly minute k's requests.
    counts = np.array([500, 0, 300, 0, 1000, 0, 1])
    t = poisson_arrivals(counts, 60.0, np.random.default_rng(7))
    assert len(t) == counts.sum()
    assert np.all(np.diff(t) >= 0)  # sorted
    for k in (0, 2, 4, 6):
        n = np.count_nonzero((t >= 60 * k - 1) & (t < 60 * k + 119))
        assert n == counts[k], k
    assert t[0] == 0.0


def test_first_request_of_each_minute_is_at_its_start():
    # to float precision: the nearest arrival to 60k is within 1e-9 s of it
    counts = np.tile([957, 1200, 3, 0, 1477, 800], 10)
    for seed in range(5):
        t = poisson_arrivals(counts, 60.0, np.random.default_rng(seed))
        for k in np.flatnonzero(counts):
            assert np.min(np.abs(t - 60.0 * k)) < 1e-9


def test_first_request_of_each_minute_is_exactly_at_k_unit_time():
    # docs/model.md section 3: "minute k's process starts at k x unit_time ... the first request of a
    # minute goes out at once": exactly at k * unit_time, so per-minute binning by arrival
    # (floor(t / unit_time)) puts it in minute k.
    counts = np.tile([957, 1200, 3, 0, 1477, 800], 10)
    for seed in range(20):
        t = poisson_arrivals(counts, 60.0, np.random.default_rng(seed))
        for k in np.flatnonzero(counts):
            assert np.any(t == 60.0 * k), (seed, k)
            assert np.count_nonzero(np.floor(t / 60.0) == k) >= 1


@pytest.mark.parametrize(("counts", "unit_time", "k"), [([100_000], 60.0, 0), ([0, 0, 40_000], 10.0, 2)])
def test_gaps_are_exponential_with_mean_unit_time_over_count(counts, unit_time, k):
    # One busy minute: the sorted times' differences are its n - 1 gaps, i.i.d. exponential
    # with mean m = unit_time / n.  The sample mean has standard error m / sqrt(n - 1)
    # (0.32% at n = 1e5, 0.5% at 4e4): accept 5 standard errors (two-sided p ~ 6e-7).
    # An exponential's sd equals its mean; the sample CV has standard error ~ sqrt(2 / n)
    # (fourth moment 9 m^4): accept 5 of those too.  This rejects evenly spaced or
    # uniform-offset arrivals (CV 0 and ~0.58 gaps respectively).
    n = counts[k]
    t = poisson_arrivals(np.array(counts), unit_time, np.random.default_rng(123))
    assert t[0] == k * unit_time
    gaps = np.diff(t)
    m = unit_time / n
    assert abs(gaps.mean() / m - 1) < 5 / math.sqrt(n - 1)
    assert abs(gaps.std() / gaps.mean() - 1) < 5 * math.sqrt(2 / n)


def test_same_generator_seed_same_arrivals():
    counts = np.array([30, 40])
    a = poisson_arrivals(counts, 60.0, np.random.default_rng(5))
    b = poisson_arrivals(counts, 60.0, np.random.default_rng(5))
    c = poisson_arrivals(counts, 60.0, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
