"""Benchmark: what the decision records cost a simulated run (faro.control.records).

For each policy, runs the same cell (main experiment, 6 h, 10 jobs) with and without a
``DecisionRecorder``, alternating the two (so a busy machine slows both alike), and times the
simulation plus, with records, writing ``decisions.parquet``. Prints per policy the median
seconds of each and the overhead in percent, and (robust to a shared machine's noise) the
time spent inside the recorder itself (every tick's ``record()`` plus the final write) as a
share of the run without records, and the number of rows.

    python scripts/bench_decisions.py --policies aiad,faro_sum,ray_serve_default --repeats 3

Needs the prepared trace (``snakemake results/trace.json``) and, for Faro/MArk, the trained
forecaster (``snakemake results/data/models/light.pkl``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))


def one_run(name: str, quota: int, seed: int, exp, trace, data_dir: str,
            record: bool) -> tuple[float, float, int]:
    """(seconds of the run, seconds inside the recorder, rows)."""
    from faro.backends.sim.engine import simulate
    from faro.control.records import DecisionRecorder
    from faro.policies import make_policy
    from faro.policies.explain import instrument
    from faro.runspec import policy_context
    from faro.workflow.config import load_policy_file

    spec = load_policy_file(name, ROOT / "config/policies")
    run = {"unit_time": 60.0, "data_dir": data_dir, "seed": seed}
    policy = make_policy(spec["class"], spec["params"], jobs=exp.jobs, quota=quota, base_dir=ROOT,
                         context=policy_context(exp, **run, trace_counts=trace.counts))
    inside = [0.0]
    t0 = time.perf_counter()
    recorder = DecisionRecorder(name, instrument(policy)) if record else None
    if recorder is not None:
        record_tick = recorder.record

        def timed(*args):
            t = time.perf_counter()
            record_tick(*args)
            inside[0] += time.perf_counter() - t

        recorder.record = timed
    simulate(exp, trace, policy, quota, seed, recorder=recorder)
    rows = 0
    if recorder is not None:
        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            recorder.flush(Path(tmp) / "decisions.parquet")
        inside[0] += time.perf_counter() - t
        rows = recorder.rows
    return time.perf_counter() - t0, inside[0], rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policies", default="aiad,faro_sum,ray_serve_default")
    ap.add_argument("--quota", type=int, default=32)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trace", default=str(ROOT / "results/trace.json"))
    ap.add_argument("--data-dir", default=str(ROOT / "results/data"))
    a = ap.parse_args()
    from faro.model.experiment import load_experiment
    from faro.model.trace import parse_trace

    exp = load_experiment(ROOT / "experiments/twitter_10jobs/experiment.yaml")
    trace = parse_trace(a.trace, exp.jobs)
    one_run("aiad", a.quota, a.seed, exp, trace, a.data_dir, False)  # warm the compiled kernel
    print("policy | without records (s) | with records (s) | overhead | "
          "inside the recorder (s) | its share | rows")
    for name in a.policies.split(","):
        off, on, ins, rows = [], [], [], 0
        for _ in range(a.repeats):
            off.append(one_run(name, a.quota, a.seed, exp, trace, a.data_dir, False)[0])
            t, inside, rows = one_run(name, a.quota, a.seed, exp, trace, a.data_dir, True)
            on.append(t)
            ins.append(inside)
        m_off, m_on, m_in = statistics.median(off), statistics.median(on), statistics.median(ins)
        print(f"{name} | {m_off:.2f} | {m_on:.2f} | {100 * (m_on / m_off - 1):+.1f}% | {m_in:.3f} | "
              f"{100 * m_in / m_off:.1f}% | {rows}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
