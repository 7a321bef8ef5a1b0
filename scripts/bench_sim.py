"""Benchmark: simulate one full cell of the main experiment (6 h, 10 jobs, 2.68 M requests).

Each repeat runs in a fresh process (numba's compiled kernel comes from its on-disk cache
after the first), timing trace parsing + simulation + writing the raw logs, and reading the
process's peak resident memory. Prints medians.

    python scripts/bench_sim.py --mirror ../shared/data/faro-artifact --policy aiad --quota 32 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {pkg!r})
from faro.runspec import policy_context
from faro.model.experiment import load_experiment
from faro.policies import make_policy
from faro.backends.sim.engine import simulate
from faro.model.trace import parse_trace
import numpy as np
t_import = time.perf_counter() - t0
exp = load_experiment({exp!r})
t1 = time.perf_counter()
trace = parse_trace({trace!r}, exp.jobs)
run = {{"unit_time": 60.0, "data_dir": {data!r}, "seed": {seed}}}
import yaml
spec = yaml.safe_load(open({policy_file!r}))
policy = make_policy(spec["class"], spec["params"], jobs=exp.jobs, quota={quota},
                     context=policy_context(exp, **run, trace_counts=trace.counts))
res = simulate(exp, trace, policy, {quota}, {seed})
t2 = time.perf_counter()
np.savez({out!r}, job=res.job, arrival=res.arrival, start=res.start, end=res.end, status=res.status)
t3 = time.perf_counter()
ok = float((res.status == 1).mean())
print(json.dumps({{"import_s": t_import, "simulate_s": t2 - t1, "write_s": t3 - t2, "total_s": t3 - t1,
                  "requests": int(len(res.job)), "ok_fraction": ok,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mirror", default=str(ROOT.parent / "shared/data/faro-artifact"))
    ap.add_argument("--data-dir", default=str(ROOT / "results/data"),
                    help="for Faro/MArk: holds models/light.pkl")
    ap.add_argument("--policy", default="aiad")
    ap.add_argument("--quota", type=int, default=32)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(a.repeats + 1):  # the first warms numba's cache and is not counted
            code = CHILD.format(pkg=str(ROOT / "workflow"), exp=str(ROOT / "experiments/twitter_10jobs"),
                                trace=str(Path(a.mirror) / "input.json"), data=a.data_dir, seed=a.seed,
                                policy_file=str(ROOT / f"config/policies/{a.policy}.yaml"), quota=a.quota,
                                out=str(Path(tmp) / "raw.npz"))
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            rec = json.loads(out.stdout.strip().splitlines()[-1])
            if k:
                rows.append(rec)
            print(f"{'warm-up' if k == 0 else f'run {k}'}: " + ", ".join(
                f"{key} {val:.3f}" if isinstance(val, float) else f"{key} {val}" for key, val in rec.items()))
    med = {key: statistics.median(r[key] for r in rows) for key in ("simulate_s", "total_s", "peak_rss_mb")}
    print(f"\n{a.policy} @ {a.quota} CPUs, seed {a.seed}, {rows[0]['requests']} requests, {len(rows)} runs: "
          f"median simulate {med['simulate_s']:.2f} s, parse+simulate+write {med['total_s']:.2f} s, "
          f"peak memory {med['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
