"""Calibrate the simulator's model of a local Ray Serve cluster (the `ray` backend).

Starts a Ray head, deploys one emulated-model application with one replica, and sends
requests one at a time (no queueing), so each request's time splits exactly into
  router in  = service start (replica clock) - send time (client clock, same machine)
  service    = drawn by the replica (the experiment's distribution)
  router out = response received - service end.
Fits a shifted lognormal to the per-crossing router time (in and out pooled) and times how
long a new replica takes to become RUNNING. Prints the experiment.yaml values to use.

    python scripts/calibrate_ray.py --requests 300
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
from faro.backends.ray import session as rs  # noqa: E402
from faro.serving import serve_api  # noqa: E402
from faro.serving.serve_app import SENT_HEADER, app_config, serve_config  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--starts", type=int, default=3, help="replica start-up measurements")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="faro-cal-") as tmp:
        run = Path(tmp)
        cfg = {"seed": 0, "quota": 1 + a.starts, "policy": "aiad",
               "jobs": [{"name": "cal", "slo_ms": 720, "processing_ms": 180}],
               "trace_path": "", "unit_time": 60, "model": "emulated", "service": {},
               "ray": {"state_dir": str(run / "state")}}
        try:
            rs.setup_quota(run, cfg)
            head = rs.deploy_clusters(run, cfg)["head"]
            rs.deploy_jobs(run, cfg)
            url = f"http://127.0.0.1:{head['http_port']}/cal"
            rin, rout, svc = [], [], []
            for k in range(a.requests + 10):
                sent = time.time()
                req = urllib.request.Request(url, headers={SENT_HEADER: repr(sent)})
                with urllib.request.urlopen(req, timeout=30) as r:
                    body = json.load(r)
                recv = time.time()
                if k >= 10:  # skip warm-up
                    rin.append(body["start"] - sent)
                    rout.append(recv - body["end"])
                    svc.append(body["end"] - body["start"])
            starts = []
            for n in range(2, 2 + a.starts):
                t0 = time.monotonic()
                serve_api.put_config(head["dashboard_url"],
                                     serve_config([app_config("cal", n)], head["http_port"]))
                while len(serve_api.job_states(
                        serve_api.get_details(head["dashboard_url"]))["cal"]["running"]) < n:
                    time.sleep(0.05)
                starts.append(time.monotonic() - t0)
        finally:
            rs.teardown(run, cfg)
    crossing = np.array(rin + rout)
    shape, loc, scale = stats.lognorm.fit(crossing, floc=max(0.0, crossing.min() * 0.9))
    print(f"requests {a.requests}: router in median {1000 * statistics.median(rin):.2f} ms, "
          f"out median {1000 * statistics.median(rout):.2f} ms, service mean {1000 * np.mean(svc):.1f} ms")
    print(f"replica start (scale-up request -> RUNNING): {', '.join(f'{s:.2f}' for s in starts)} s, "
          f"median {statistics.median(starts):.2f} s")
    print("experiment.yaml:")
    print(f"  router: {{shape: {shape:.4f}, loc: {loc:.6f}, scale: {scale:.6f}}}  "
          f"# mean {1000 * crossing.mean():.2f} ms per crossing")
    print(f"  cluster: cold_start_s / warm_start_s: {statistics.median(starts):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
