"""One short real run of the ray backend through every stage to Parquet."""

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

pytestmark = pytest.mark.ray


def test_full_run_to_parquet(tmp_path):
    # job "a" overloads one replica in minute 1 (12 req/s vs ~6.5 req/s capacity), "b" stays light
    minutes = [{"a": 20, "b": 10}, {"a": 60, "b": 10}, {"a": 60, "b": 10}]
    cfg = run_config(tmp_path, minutes, unit_time=5.0, quota=4)
    run = tmp_path / "run"
    recs = []
    heads = []
    try:
        for name, fn in stages.STAGES.items():
            recs.append(fn(run, cfg))
            if name == "deploy_clusters":
                heads.append(recs[-1]["head"])
        summary = parse_to_parquet(run, cfg)
    finally:
        td = stages.teardown(run)
    head = heads[0]
    assert leftover(head) == []
    assert not Path(head["temp_dir"]).exists()
    assert td["ray"]["token"] == head["token"]
    req = read_requests(run / "requests.parquet")
    assert len(req) == 20 + 60 + 60 + 30 == summary["requests"]
    assert set(req["job"]) == {"a", "b"}
    ok = req[req["succeeded"]]
    # emulated service time >= loc (79 ms) on top of the proxy path
    assert (ok["latency_ms"] >= 79.0).all()
    assert req["arrival_s"].min() >= 0 and req["arrival_s"].max() < 3 * 5.0 + 1.0
    rep = read_replicas(run / "replicas.parquet")
    first = rep.sort_values("time_s").groupby("job").first()
    assert first.loc["a", "replicas"] == 1 and first.loc["b", "replicas"] == 1
    log = [json.loads(line) for line in (run / "raw" / "autoscaler.jsonl").read_text().splitlines()]
    ticks = [r for r in log if r["kind"] == "tick"]
    # 15 s of replay at unit_time 5 = 180 trace seconds: ticks at 10, 20, ... in trace time
    assert len(ticks) >= 12 and ticks[0]["now"] == 10.0
    assert any(r["kind"] == "decision" for r in log)
    assert (run / "raw" / "serve_logs").is_dir() and any((run / "raw" / "serve_logs").glob("replica_*.log"))
    # the decision records: one row per job and tick in the shared schema; the replicas'
    # busy-seconds counters reach the controller (the HPA's utilisation)
    import pyarrow.parquet as pq

    from faro.model.schema import DECISIONS_SCHEMA

    dec = pq.read_table(run / "raw" / "decisions.parquet")
    assert dec.schema.equals(DECISIONS_SCHEMA)
    d = dec.to_pandas()
    assert len(d) == 2 * len(ticks) and set(d["job"].astype(str)) == {"a", "b"}
    assert d["utilization"].notna().any()
