"""Benchmark of Faro's cluster-wide solver (faro.solver).

Prints median decision times for
  1. one decision for 10 jobs at quota 32 (each Faro objective),
  2. 100 jobs (the 10 trace series ten times) at quota 320, flat and hierarchical (G groups),
and writes a tidy CSV of solution quality vs time for COBYLA, SLSQP and differential
evolution with the relaxed and the step utility on 10 jobs / 40 CPUs (the paper's Fig. 5
setting): one row per (decision instance, method, utility) with columns
method, utility, seconds, objective, normalised_optimality (+ instance, setting, reference).

Rates are an oracle 7-step forecast from the trace: count/60 of the next 7 minutes at
decision times every ``--every`` minutes.  ``current`` is the previous decision's result,
as in the controller.  normalised_optimality = objective / exact integer optimum of the
same objective and utility (dynamic programming; exact for the separable Sum objective;
for other objectives the reference is the best allocation any method found).

    PYTHONPATH=workflow python scripts/bench_solver.py --out results/bench/solver_optimality.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

from faro.solver.solve import evaluate, solve, solve_hierarchical
from faro.solver.utility import job_utilities

#: the artifact's trace: $FARO_DATA_MIRROR, else the ../shared convention beside the project
TRACE = Path(os.environ.get("FARO_DATA_MIRROR",
                            Path(__file__).resolve().parents[2] / "shared/data/faro-artifact")) / "input.json"
OBJECTIVES = ("sum", "fair", "fair_sum", "penalty_sum", "penalty_fair_sum")


def load_counts(path: Path) -> np.ndarray:
    """Per-minute request counts, shape (n_jobs, n_minutes), jobs in name order."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    jobs = sorted(rows[0]["counts"], key=lambda s: int(s.removeprefix("serve-cluster")))
    return np.array([[sum(r["counts"][j].values()) for r in rows] for j in jobs], dtype=np.float64)


def instances(counts: np.ndarray, every: int, steps: int) -> list[tuple[int, np.ndarray]]:
    last = counts.shape[1] - steps
    return [(t, counts[:, t : t + steps] / 60.0) for t in range(15, last + 1, every)]


def dp_sum_optimum(rates: np.ndarray, quota: int, *, relaxed: bool, current: np.ndarray,
                   cold_start: bool, proc: float, slo: float) -> float:
    """Exact max of sum_i u_i(x_i) over integers x_i >= 1, sum x <= quota (knapsack DP)."""
    n = rates.shape[0]
    k = np.arange(quota + 1, dtype=np.float64)
    table = job_utilities(np.repeat(k[:, None], n, axis=1), rates, proc_s=proc, slo_s=slo,
                          current=current, relaxed=relaxed, cold_start=cold_start).T
    best = np.full(quota + 1, -np.inf)
    best[0] = 0.0
    for i in range(n):
        new = np.full(quota + 1, -np.inf)
        for used in range(quota + 1):
            if not np.isfinite(best[used]):
                continue
            for x in range(1, quota - used + 1):
                v = best[used] + table[i, x]
                if v > new[used + x]:
                    new[used + x] = v
        best = new
    return float(best.max())


def timed_chain(rates_list, quota, start, fn, **kw) -> list[float]:
    """Run decisions in trace order (current = previous result); wall seconds of each."""
    cur = start.copy()
    out = []
    for rates in rates_list:
        t0 = time.perf_counter()
        res = fn(rates, cur, quota, **kw)
        out.append(time.perf_counter() - t0)
        cur = res.replicas
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trace", type=Path, default=TRACE)
    ap.add_argument("--out", type=Path, required=True, help="tidy CSV of optimality vs time")
    ap.add_argument("--every", type=int, default=15, help="minutes between decision instances")
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--groups", type=int, default=10)
    ap.add_argument("--large-instances", type=int, default=5, help="instances for the 100-job runs")
    ap.add_argument("--opt-objective", default="sum", help="objective of the optimality study")
    ap.add_argument("--opt-quota", type=int, default=40)
    ap.add_argument("--de-maxiter", type=int, nargs="+", default=[20, 100])
    ap.add_argument("--cold-start", action="store_true", help="apply the cold-start rule")
    ap.add_argument("--skip-large", action="store_true")
    args = ap.parse_args()

    proc, slo = 0.18, 0.72
    counts = load_counts(args.trace)
    insts = instances(counts, args.every, args.steps)
    rates_list = [r for _, r in insts]
    common = dict(slo_s=slo, proc_s=proc, cold_start=args.cold_start)

    t0 = time.perf_counter()
    solve(rates_list[0], np.full(10, 3), 32, objective="sum", **common)
    print(f"warm-up (numba JIT load/compile + first solve): {time.perf_counter() - t0:.3f} s")

    print(f"\n10 jobs, quota 32, {len(rates_list)} decisions (every {args.every} min):")
    for obj in OBJECTIVES:
        secs = timed_chain(rates_list, 32, np.full(10, 3), solve, objective=obj, **common)
        print(f"  {obj:18s} median {1e3 * np.median(secs):7.1f} ms   "
              f"p90 {1e3 * np.quantile(secs, 0.9):7.1f} ms")

    if not args.skip_large:
        big = [np.tile(r, (10, 1)) for r in rates_list[: args.large_instances]]
        print(f"\n100 jobs, quota 320, {len(big)} decisions (objective fair_sum):")
        secs = timed_chain(big, 320, np.full(100, 3), solve_hierarchical, groups=args.groups,
                           objective="fair_sum", **common)
        print(f"  hierarchical G={args.groups:<3d}   median {1e3 * np.median(secs):8.1f} ms")
        secs = timed_chain(big, 320, np.full(100, 3), solve, objective="fair_sum", **common)
        print(f"  flat              median {1e3 * np.median(secs):8.1f} ms")

    # optimality vs time, 10 jobs / opt-quota CPUs
    q = args.opt_quota
    start = np.full(10, q // 10)
    rows = []
    settings = [("cobyla", {}), ("slsqp", {})] + [("de", {"de_maxiter": m}) for m in args.de_maxiter]
    for _inst, (t, rates) in enumerate(insts):
        for relaxed in (True, False):
            utility = "relaxed" if relaxed else "step"
            found = []
            for method, extra in settings:
                t0 = time.perf_counter()
                res = solve(rates, start, q, objective=args.opt_objective, method=method, relaxed=relaxed,
                            **common, **extra)
                sec = time.perf_counter() - t0
                val = evaluate(res.replicas, rates, objective=args.opt_objective, slo_s=slo, proc_s=proc,
                               current=start, admission=res.admission, relaxed=relaxed,
                               cold_start=args.cold_start)
                setting = method if method != "de" else f"de_maxiter{extra['de_maxiter']}"
                found.append(dict(instance=t, method=method, setting=setting, utility=utility,
                                  seconds=sec, objective=val, n_evals=res.n_evals))
            if args.opt_objective == "sum":
                ref, ref_kind = dp_sum_optimum(rates, q, relaxed=relaxed, current=start,
                                               cold_start=args.cold_start, proc=proc, slo=slo), "exact_dp"
            else:
                ref, ref_kind = max(r["objective"] for r in found), "best_found"
            for r in found:
                r["normalised_optimality"] = r["objective"] / ref if ref > 0 else float("nan")
                r["reference"] = ref_kind
            rows += found
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cols = ["method", "utility", "seconds", "objective", "normalised_optimality", "setting", "instance",
            "n_evals", "reference"]
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r[c] for c in cols})
    tmp.replace(args.out)

    print(f"\nOptimality vs time, 10 jobs / {q} CPUs, objective {args.opt_objective}, "
          f"{len(insts)} instances:")
    print(f"  {'setting':16s} {'utility':8s} {'median ms':>10s} {'median opt':>11s} {'min opt':>8s}")
    for setting in dict.fromkeys(r["setting"] for r in rows):
        for utility in ("relaxed", "step"):
            sel = [r for r in rows if r["setting"] == setting and r["utility"] == utility]
            s = np.array([r["seconds"] for r in sel])
            o = np.array([r["normalised_optimality"] for r in sel])
            print(f"  {setting:16s} {utility:8s} {1e3 * np.median(s):10.1f} {np.median(o):11.4f} "
                  f"{o.min():8.4f}")
    print(f"\nwrote {args.out} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
