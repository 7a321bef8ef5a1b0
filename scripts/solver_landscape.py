"""How close Faro's solver lands to the exhaustive optimum of its objective, decision by decision.

Runs one cell of the main experiment with the oracle forecaster and slack escalation off (so each
predictive step is one solve), records every solve's inputs and result, and compares each with
the best of all integer allocations (every job >= 1 replica, total <= quota) under the same
objective, utilities and cold-start rule.  Prints the share of decisions at the optimum, the
mean objective (ours / optimum) and the mean utility spread (max u - min u).  README, "Faro's
fairness objectives under overload".

    python scripts/solver_landscape.py --policy faro_fair_sum --quota 16 --seed 42 \
        --mirror ../shared/data/faro-artifact
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))


def allocations(n_jobs: int, quota: int) -> np.ndarray:
    """Every integer vector with entries >= 1 and sum <= quota (rows)."""
    out: list[list[int]] = []

    def extend(prefix: list[int], left: int) -> None:
        if len(prefix) == n_jobs - 1:
            out.extend(prefix + [v] for v in range(1, left + 1))
            return
        for v in range(1, left - (n_jobs - len(prefix) - 1) + 1):
            extend(prefix + [v], left - v)

    extend([], quota)
    return np.array(out, dtype=float)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", default="faro_fair_sum")
    ap.add_argument("--quota", type=int, default=16)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--mirror", default=str(ROOT.parent / "shared/data/faro-artifact"))
    a = ap.parse_args()

    import importlib

    from faro.backends.sim.engine import simulate
    from faro.backends.sim.inprocess import load_policy_spec
    from faro.forecast.registry import make_forecaster
    from faro.model.experiment import load_experiment
    from faro.model.trace import parse_trace
    from faro.policies import make_policy
    from faro.solver.objectives import parse_objective
    from faro.solver.utility import job_utilities

    solve_mod = importlib.import_module("faro.solver.solve")
    seen: list[tuple] = []
    original = solve_mod.solve_auto

    def recording(rates, current, quota, **kw):
        res = original(rates, current, quota, **kw)
        seen.append((np.asarray(rates, float), np.asarray(current, float), kw, res))
        return res

    solve_mod.solve_auto = recording
    exp = load_experiment(ROOT / "experiments/twitter_10jobs")
    trace = parse_trace(Path(a.mirror) / "input.json", exp.jobs)
    oracle = make_forecaster("oracle", truth=[np.asarray(c, float) for c in np.asarray(trace.counts).T])
    spec = load_policy_spec(ROOT / "config/policies", a.policy)
    params = {**spec.get("params", {}), "slack_escalation": False}
    policy = make_policy(spec["class"], params, jobs=exp.jobs, quota=a.quota,
                         context={"unit_time": 60.0, "seed": a.seed, "forecaster": oracle})
    simulate(exp, trace, policy, a.quota, a.seed, unit_time=60.0)

    objective = parse_objective(params["objective"], fair_weight=float(params.get("fair_weight", 0.0)))
    grid = allocations(exp.n_jobs, a.quota)
    rows = []
    for rates, cur, kw, res in seen:
        util = dict(proc_s=kw["proc_s"], slo_s=kw["slo_s"], current=cur, cold_start=kw["cold_start"])
        adm = res.admission
        vals = objective.value(job_utilities(grid, rates, **util), adm)
        best = int(np.argmax(vals))
        u_ours = job_utilities(res.replicas.astype(float)[None], rates, **util)[0]
        u_best = job_utilities(grid[best][None], rates, **util)[0]
        rows.append((float(objective.value(u_ours[None], adm)[0]), float(vals[best]), np.ptp(u_ours),
                     np.ptp(u_best)))
    r = np.array(rows)
    print(f"{a.policy} at {a.quota} CPUs, seed {a.seed}: {len(r)} decisions; at the optimum (within 1e-3): "
          f"{np.mean(r[:, 1] - r[:, 0] < 1e-3):.2f}; objective ours / optimum {r[:, 0].mean():.2f} / "
          f"{r[:, 1].mean():.2f}; utility spread ours / optimum {r[:, 2].mean():.2f} / {r[:, 3].mean():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
