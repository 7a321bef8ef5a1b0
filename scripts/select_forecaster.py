"""Score forecaster configurations for Faro by leaving one history day out (never day 11).

For each validation day d of days 1-10 and each candidate, the candidate is fitted on the
other days of 1-10, and day d's own counts are replayed in the simulator under the Faro
policies (see faro.forecast.selection).  Writes one CSV row per (candidate, day, policy,
quota, seed) and prints the mean SLO attainment per candidate, best first.

    python scripts/select_forecaster.py --candidates config/forecast_candidates.yaml \
        --days 1,2,3,4,5,6,7,8,9,10 --policies faro_sum,faro_fair,faro_fair_sum \
        --quotas 32 --seeds 42,24 --out results/forecast/selection.csv --jobs 2
"""

from __future__ import annotations

import argparse
import itertools
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))


def one_fold(args: tuple) -> list[dict]:
    """Every (candidate, policy, quota, seed) of one validation day, in one process."""
    day, cands, policies, quotas, seeds, mirror = args
    from faro.backends.sim.inprocess import load_policy_spec, run_stats
    from faro.forecast.history import load_history_from_dir
    from faro.forecast.selection import folds, make_candidate, policy_overrides
    from faro.model.experiment import load_experiment

    exp = load_experiment(ROOT / "experiments/twitter_10jobs")
    fold = next(folds(load_history_from_dir(Path(mirror)), exp.jobs, [day]))
    rows = []
    for cname, spec in cands.items():
        fc, over = make_candidate(spec, fold.train), policy_overrides(cname, spec)
        for policy, quota, seed in itertools.product(policies, quotas, seeds):
            st = run_stats(exp, fold.trace, load_policy_spec(ROOT / "config/policies", policy), quota, seed,
                           context={"unit_time": 60.0, "seed": seed, "forecaster": fc}, params=over)
            rows.append({"candidate": cname, "day": day, "policy": policy, "quota": quota, "seed": seed,
                         "slo_rate": st["slo_rate"], "avg_total_utility": st["avg_total_utility"],
                         "violation": 1 - st["avg_total_slo_rate"]})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidates", default=str(ROOT / "config/forecast_candidates.yaml"))
    ap.add_argument("--days", default="1,2,3,4,5,6,7,8,9,10")
    ap.add_argument("--policies", default="faro_sum,faro_fair,faro_fair_sum")
    ap.add_argument("--quotas", default="32")
    ap.add_argument("--seeds", default="42,24")
    ap.add_argument("--mirror", default=str(ROOT.parent / "shared/data/faro-artifact"))
    ap.add_argument("--out", default=str(ROOT / "results/forecast/selection.csv"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated candidate names to score (default: all)")
    a = ap.parse_args()
    import pandas as pd
    import yaml

    from faro.forecast.selection import policy_overrides

    cands = yaml.safe_load(Path(a.candidates).read_text())["candidates"]
    if a.only:
        unknown = sorted(set(a.only.split(",")) - set(cands))
        if unknown:
            ap.error(f"--only: {unknown} not in {a.candidates} (candidates: {sorted(cands)})")
        cands = {k: v for k, v in cands.items() if k in a.only.split(",")}
    for cname, spec in cands.items():  # bad candidates fail here, before any simulation
        policy_overrides(cname, spec)
    days = [int(d) for d in a.days.split(",")]
    if 11 in days:
        ap.error("day 11 is the replayed test day: it may not be used to choose a forecaster")
    work = [(d, cands, a.policies.split(","), [int(q) for q in a.quotas.split(",")],
             [int(s) for s in a.seeds.split(",")], a.mirror) for d in days]
    with ProcessPoolExecutor(a.jobs) as pool:
        df = pd.DataFrame([r for rows in pool.map(one_fold, work) for r in rows])
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.out, index=False)
    per_pol = df.pivot_table(index="candidate", columns="policy", values="slo_rate", aggfunc="mean")
    summary = per_pol.assign(mean_slo=df.groupby("candidate")["slo_rate"].mean(),
                             mean_utility=df.groupby("candidate")["avg_total_utility"].mean())
    print(summary.sort_values("mean_slo", ascending=False).round(3).to_string())
    print(f"\nbest (mean SLO% over {len(days)} days x policies x quotas x seeds): "
          f"{summary['mean_slo'].idxmax()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
