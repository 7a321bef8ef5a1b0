"""Pure parts of the ray backend: schedule, metrics store, Prometheus parsing, parsing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faro.model.arrivals import arrival_stream
from faro.model.trace import Trace
from faro.serving.autoscaler import _spread
from faro.serving.metrics import MetricsStore
from faro.serving.parse import replicas_frame, requests_frame
from faro.serving.replayer import schedule
from faro.serving.serve_api import parse_prometheus

pytestmark = pytest.mark.ray


def test_schedule_minutes_start_at_once_and_seeded():
    trace = Trace(("a", "b"), np.array([[3, 1], [2, 0]]))
    t, w, jobs = schedule(trace, unit_time=10.0, seed=5)
    assert jobs == ["a", "b"] and len(t) == 6 and (np.diff(t) >= 0).all()
    # the first request of each minute goes out at k * unit_time
    assert list(t[t == 0.0]) == [0.0, 0.0] and (t == 10.0).sum() == 1
    t2, w2, _ = schedule(trace, unit_time=10.0, seed=5)
    assert np.array_equal(t, t2) and np.array_equal(w, w2)
    # job "a" (index 0) draws from its own stream: unit exponentials times 10/3 in minute 0
    g = arrival_stream(5, 0).exponential(1.0, size=5) * (10 / 3)
    a = t[w == 0]
    for want in (0.0, g[0], g[0] + g[1]):
        assert np.isclose(a, want, rtol=0, atol=1e-12).sum() == 1


def test_schedule_subset_keeps_each_jobs_stream():
    trace = Trace(("a", "b", "c"), np.array([[3, 4, 5], [2, 6, 1]]))
    t, w, jobs = schedule(trace, unit_time=10.0, seed=9)
    ts, ws, js = schedule(trace, unit_time=10.0, seed=9, jobs=["c", "a"])
    assert js == ["a", "c"]  # the trace's order
    for k, job in enumerate(js):
        assert np.array_equal(ts[ws == k], t[w == jobs.index(job)])
    with pytest.raises(ValueError, match="not in the trace"):
        schedule(trace, unit_time=10.0, seed=9, jobs=["zz"])


def test_metrics_store_window_bins_and_queues():
    s = MetricsStore()
    t0 = 1000.0
    # (job, replica, sent, end, status)
    s.record([("a", "r1", t0 + 1, t0 + 1.2, 200), ("a", "r1", t0 + 11, t0 + 11.5, 200),
              ("a", "r2", t0 + 12, t0 + 12.1, 503), ("b", "r3", t0 + 25, t0 + 25.3, 200)])
    s.report_held("a", "r1", 3, t0 + 29)
    s.report_held("a", "r2", 1, t0 + 20)  # stale at now = t0 + 30 with stale_s 5
    snap = s.snapshot(now=t0 + 30, t0=t0, minute_s=10.0, window_s=20.0)
    a = snap["a"]
    # finished in [t0 + 10, t0 + 30]: latencies 0.5 s and 0.1 s -> 300 ms
    assert a["avg_latency_ms"] == pytest.approx(300.0)
    assert a["replica_queues"] == {"r1": 3}
    # bins [t0, t0+10), [t0+10, t0+20), [t0+20, t0+30]
    assert a["arrivals_per_min"] == [1, 2, 0] and snap["b"]["arrivals_per_min"] == [0, 0, 1]
    assert a["admission_drops_total"] == 1


def test_parse_prometheus_and_spread():
    text = (
        '# HELP x\nray_serve_deployment_queued_queries{application="a",deployment="classifier"} 7.0\n'
        'ray_serve_num_http_requests_total{application="a",route="/a",status_code="503"} 4.0\n'
        'ray_serve_num_http_requests_total{application="a",route="/a",status_code="200"} 9.0\n'
        'other_metric{application="a"} 1\n'
    )
    got = parse_prometheus(text, {"ray_serve_deployment_queued_queries", "ray_serve_num_http_requests_total"})
    assert len(got) == 3 and got[0][1]["application"] == "a" and got[0][2] == 7.0
    # cumulative 0 at t=1, 4 at t=12, 6 at t=25; bins [0,10), [10,20), [20,30)
    assert list(_spread([(1.0, 0.0), (12.0, 4.0), (25.0, 6.0)], [0.0, 10.0, 20.0, 30.0])) == [0.0, 4.0, 2.0]


def test_parse_frames(tmp_path):
    csv = tmp_path / "r.csv"
    csv.write_text("job,sched_s,sent_s,end_s,latency_ms,status,error\n"
                   "a,0.0,0.001,0.2,199.0,200,\n"
                   "a,0.5,0.501,0.51,,503,\n"
                   "b,0.7,0.7,5.0,,0,ClientConnectorError\n")
    df = requests_frame(csv, seed=3)
    assert list(df["succeeded"]) == [True, False, False]
    assert list(df["status"]) == [200, 503, 0] and df["latency_ms"].isna().sum() == 2
    js = tmp_path / "a.jsonl"
    recs = [{"kind": "replicas", "wall_s": None, "job": "a", "replicas": 1},
            {"kind": "replicas", "wall_s": None, "job": "b", "replicas": 2},
            {"kind": "replay_start"},
            {"kind": "replicas", "wall_s": 0.1, "job": "a", "replicas": 1, "at_start": True},
            {"kind": "replicas", "wall_s": 4.5, "job": "a", "replicas": 2},
            {"kind": "replicas", "wall_s": 6.0, "job": "a", "replicas": 2}]
    js.write_text("".join(json.dumps(r) + "\n" for r in recs))
    rep = replicas_frame(js, ["a", "b"])
    assert rep.values.tolist() == [[0.0, "a", 1], [0.0, "b", 2], [4.5, "a", 2]]
