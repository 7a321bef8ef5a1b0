"""One short real run of Ray Serve's own autoscaler (``native: true``) through every stage of the
ray backend: Serve scales the overloaded job by itself, our autoscaler never PUTs and still
records replicas and decisions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest.importorskip("ray")
pytest.importorskip("aiohttp")

from ray_helpers import leftover, parse_to_parquet, run_config  # noqa: E402

from faro.backends.ray import session as stages  # noqa: E402
from faro.model.schema import read_replicas, read_requests  # noqa: E402
from faro.runspec import PolicySpec  # noqa: E402

pytestmark = pytest.mark.ray


def test_native_serve_scales_by_itself_and_we_only_observe(tmp_path):
    # job "a" overloads one replica from minute 1 (24 req/s vs ~6.5 req/s per replica), "b" stays light;
    # unit_time 5: Serve's look-back and upscale delay are 30 trace s = 2.5 wall s
    minutes = [{"a": 20, "b": 10}, {"a": 120, "b": 10}, {"a": 120, "b": 10}, {"a": 60, "b": 10}]
    cfg = run_config(tmp_path, minutes, unit_time=5.0, quota=4)
    cfg = cfg.replace(policy=PolicySpec("ray_serve_native", "ray_serve_default", {"native": True}))
    run = tmp_path / "run"
    recs = {}
    try:
        for name, fn in stages.STAGES.items():
            recs[name] = fn(run, cfg)
        summary = parse_to_parquet(run, cfg)
    finally:
        td = stages.teardown(run)
    head = recs["deploy_clusters"]["head"]
    assert leftover(head) == [] and td["ray"]["token"] == head["token"]
    native = recs["deploy_jobs"]["native"]
    assert set(native) == {"a", "b"} and native["a"]["upscale_delay_s"] == pytest.approx(2.5)
    assert native["a"]["max_replicas"] == 20 and native["a"]["initial_replicas"] == 1

    log = [json.loads(line) for line in (run / "raw" / "autoscaler.jsonl").read_text().splitlines()]
    stop = [r for r in log if r["kind"] == "stop"][-1]
    assert stop["puts"] == 0, "the autoscaler never PUT a config: Serve owns the replica counts"
    assert not [r for r in log if r["kind"] == "error"]
    ticks = [r for r in log if r["kind"] == "tick"]
    assert len(ticks) >= 15

    # Serve scaled job a up by itself: more RUNNING replicas (the quota caps them at 3: b keeps 1)
    rep = read_replicas(run / "replicas.parquet")
    a = rep[rep["job"] == "a"]
    assert a["replicas"].iloc[0] == 1 and 2 <= a["replicas"].max() <= 3

    import pyarrow.parquet as pq

    from faro.model.schema import DECISIONS_SCHEMA

    dec = pq.read_table(run / "raw" / "decisions.parquet")
    assert dec.schema.equals(DECISIONS_SCHEMA)
    d = dec.to_pandas()
    assert len(d) == 2 * len(ticks) and set(d["outcome"].astype(str)) == {"native"}
    da = d[d["job"].astype(str) == "a"]
    assert da["requested"].max() >= 2, "Serve's own target for job a rose"
    assert da["policy_metric"].notna().any(), "Serve's own autoscaling metric was read"
    req = read_requests(run / "requests.parquet")
    assert len(req) == sum(sum(m.values()) for m in minutes) == summary["requests"]
