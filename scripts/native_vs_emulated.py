"""Ray Serve's own autoscaler (``ray_serve_native`` on the ``ray`` backend) against our emulation
of it (``ray_serve_default``, by default in the simulator), per quota: lost cluster utility
(N - ``avg_total_utility``), SLO violation (1 - ``avg_total_slo_rate``) and SLO%, mean +- sd
over each side's seeds, and the difference native - emulated; Markdown.

    python scripts/native_vs_emulated.py results/local_small_sim/stats.parquet \
        results/local_small_ray_native/stats.parquet [--seeds 42,43]

``--seeds`` keeps only those seeds on both sides (the emulated side may have more).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

METRICS = [("lost_utility", "lost utility", "{:.2f}"), ("slo_violation", "violation", "{:.3f}"),
           ("slo_rate", "SLO%", "{:.1f}"), ("avg_used_replicas", "mean replicas", "{:.2f}")]


def side(df, policy: str, quota: int, seeds: list[int] | None):
    runs = df[(df["quota"] == quota) & (df["policy"] == policy)]
    if seeds:
        runs = runs[runs["seed"].isin(seeds)]
    return runs


def cell(runs, col: str, fmt: str) -> str:
    if runs.empty:
        return "–"
    sd = runs[col].std(ddof=1) if len(runs) > 1 else float("nan")
    return fmt.format(runs[col].mean()) + ("" if sd != sd else f" ± {fmt.format(sd)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("emulated", help="stats.parquet with the emulated policy")
    ap.add_argument("native", help="stats.parquet with the native policy")
    ap.add_argument("--emulated-policy", default="ray_serve_default")
    ap.add_argument("--native-policy", default="ray_serve_native")
    ap.add_argument("--label", default="sim", help="name of the emulated side in the header")
    ap.add_argument("--seeds", default=None)
    a = ap.parse_args()
    from faro.plots.data import read_stats_table

    emu, nat = read_stats_table(a.emulated), read_stats_table(a.native)
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else None
    quotas = sorted(set(nat["quota"][nat["policy"] == a.native_policy]))
    head = ["quota", "seeds emulated / native"]
    for _c, name, _f in METRICS:
        head += [f"{name} {a.label} (emulated)", f"{name} native", "diff"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for q in quotas:
        e, n = side(emu, a.emulated_policy, q, seeds), side(nat, a.native_policy, q, seeds)
        row = [str(q), f"{len(e)} / {len(n)}"]
        for col, _name, fmt in METRICS:
            diff = (n[col].mean() - e[col].mean()) if len(e) and len(n) else float("nan")
            signed = fmt.replace("{:", "{:+")
            row += [cell(e, col, fmt), cell(n, col, fmt), "–" if diff != diff else signed.format(diff)]
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
