"""Faro (and MArk) with each forecaster, over seeds and quotas, in one process per run.

For the README's "how far each forecaster lands": runs the main experiment's simulation
for every (policy, forecaster, quota, seed) and writes a tidy CSV of the stats, then
prints five-seed means. Forecasters: default (light), last_value, oracle (and nhits when
the optional extra is installed and trained: `snakemake results/data/models/nhits/manifest.json`).

    python scripts/compare_forecasters.py --policies faro_sum,faro_fair \
        --forecasters default,last_value,oracle --quotas 32,36 --seeds 24,32,40,42,62 \
        --out results/forecasters.csv --jobs 2 [--quantile 0.6]

``--quantile`` overrides the Faro configs' planning quantile (default: each config's own).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))


def one(args: tuple) -> dict:
    policy, forecaster, quota, seed, quantile, data_dir, mirror = args
    from faro.backends.sim.inprocess import load_policy_spec, run_stats
    from faro.model.experiment import load_experiment
    from faro.model.trace import parse_trace
    from faro.runspec import policy_context

    exp = load_experiment(ROOT / "experiments/twitter_10jobs")
    trace = parse_trace(Path(mirror) / "input.json", exp.jobs)
    ctx = policy_context(exp, unit_time=60.0, data_dir=data_dir, seed=seed, trace_counts=trace.counts)
    spec = load_policy_spec(ROOT / "config/policies", policy)
    params = {"forecaster": forecaster}
    if quantile is not None and spec["class"] == "faro":
        params["quantile"] = quantile
    st = run_stats(exp, trace, spec, quota, seed, context=ctx, params=params)
    q = params.get("quantile", spec["params"].get("quantile"))
    return {"policy": policy, "forecaster": forecaster, "quantile": q, "quota": quota, "seed": seed,
            "slo_rate": st["slo_rate"],
            "avg_total_utility": st["avg_total_utility"], "avg_total_slo_rate": st["avg_total_slo_rate"],
            "avg_used_replicas": st["avg_used_replicas"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policies", default="faro_sum,faro_fair,faro_fair_sum")
    ap.add_argument("--forecasters", default="default,last_value,oracle")
    ap.add_argument("--quotas", default="32,36")
    ap.add_argument("--seeds", default="24,32,40,42,62")
    ap.add_argument("--data-dir", default=str(ROOT / "results/data"),
                    help="holds models/light.pkl (snakemake trains it)")
    ap.add_argument("--mirror", default=str(ROOT.parent / "shared/data/faro-artifact"))
    ap.add_argument("--out", default=str(ROOT / "results/forecasters.csv"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quantile", type=float, default=None,
                    help="Faro's planning quantile (default: the config's)")
    a = ap.parse_args()
    if a.quantile is not None and not 0 < a.quantile < 1:
        ap.error(f"--quantile must be in (0, 1), got {a.quantile}")
    import pandas as pd

    grid = list(itertools.product(a.policies.split(","), a.forecasters.split(","),
                                  map(int, a.quotas.split(",")), map(int, a.seeds.split(","))))
    with ProcessPoolExecutor(a.jobs) as pool:
        rows = list(pool.map(one, [(*g, a.quantile, a.data_dir, a.mirror) for g in grid]))
    df = pd.DataFrame(rows)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.out, index=False)
    df["violation"] = 1 - df["avg_total_slo_rate"]
    g = df.groupby(["quota", "policy", "forecaster", "quantile"], dropna=False).agg(
        slo_rate=("slo_rate", "mean"), slo_sd=("slo_rate", "std"), utility=("avg_total_utility", "mean"),
        violation=("violation", "mean"), n=("seed", "count"))
    print(g.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
