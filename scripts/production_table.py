"""The five-seed table of the production autoscalers (README, "Beyond the paper").

Per quota and policy, mean +- sd over the seeds of a results root's ``stats.parquet``: SLO%
(``slo_rate``), lost cluster utility (N - ``avg_total_utility``), cluster SLO violation rate
(1 - ``avg_total_slo_rate``) and mean replicas in use (``avg_used_replicas``); Markdown.

    python scripts/production_table.py results/prod/stats.parquet --quotas 32,36
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stats")
    ap.add_argument("--quotas", default="32,36")
    ap.add_argument("--policies", default=None, help="comma-separated, in this order (default: the table's)")
    a = ap.parse_args()
    from faro.plots import style
    from faro.plots.data import read_stats_table

    df = read_stats_table(a.stats)
    policies = a.policies.split(",") if a.policies else style.ordered(list(df["policy"].unique()))
    metrics = [
        ("slo_rate", "SLO%", "{:.2f}"),
        ("lost_utility", "lost utility", "{:.2f}"),
        ("slo_violation", "violation rate", "{:.3f}"),
        ("avg_used_replicas", "mean replicas", "{:.1f}"),
    ]
    print("| quota | policy | seeds | " + " | ".join(m[1] for m in metrics) + " |")
    print("|---|---|---|" + "---|" * len(metrics))
    for q in [int(x) for x in a.quotas.split(",")]:
        for p in policies:
            runs = df[(df["quota"] == q) & (df["policy"] == p)]
            if runs.empty:
                continue
            cells = []
            for col, _name, fmt in metrics:
                sd = runs[col].std(ddof=1) if len(runs) > 1 else 0.0
                cells.append(f"{fmt.format(runs[col].mean())} ± {fmt.format(sd)}")
            print(f"| {q} | {style.label(p)} | {len(runs)} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
