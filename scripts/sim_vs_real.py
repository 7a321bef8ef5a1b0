"""Simulator vs a real backend, cell by cell: lost utility and cluster SLO violation rate.

Reads each run's latency_stats.json (seed given) under two results roots and prints a
Markdown table with the absolute differences, the relative error of lost utility, whether
each quota's policy ranking (by lost utility) is the same, and the mean relative error.

    python scripts/sim_vs_real.py results/local_small_sim results/local_small_ray --seed 42
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load(root: Path, seed: int) -> dict[tuple[int, str], dict]:
    out = {}
    for f in sorted(root.glob(f"*_cpus/*/seed_{seed}/latency_stats.json")):
        quota = int(f.parts[-4].split("_")[0])
        stats = json.loads(f.read_text())
        n = sum(1 for k in stats if k.startswith("avg_util_") and not k.endswith("_std"))
        out[(quota, f.parts[-3])] = {"lost": n - stats["avg_total_utility"], "viol": 1 - stats["avg_total_slo_rate"]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sim", type=Path)
    ap.add_argument("real", type=Path)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    sim, real = load(a.sim, a.seed), load(a.real, a.seed)
    keys = sorted(set(sim) & set(real))
    print("| quota | policy | lost utility sim | real | diff | rel. error | SLO violation sim | real | diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    rel = []
    for q, p in keys:
        s, r = sim[(q, p)], real[(q, p)]
        e = abs(r["lost"] - s["lost"]) / abs(s["lost"]) if s["lost"] else float("nan")
        rel.append(e)
        print(f"| {q} | {p} | {s['lost']:.3f} | {r['lost']:.3f} | {r['lost'] - s['lost']:+.3f} | {100 * e:.1f}% | "
              f"{s['viol']:.3f} | {r['viol']:.3f} | {r['viol'] - s['viol']:+.3f} |")
    for q in sorted({q for q, _ in keys}):
        pols = [p for qq, p in keys if qq == q]
        rank_s = sorted(pols, key=lambda p: sim[(q, p)]["lost"])
        rank_r = sorted(pols, key=lambda p: real[(q, p)]["lost"])
        print(f"\n{q} CPUs ranking by lost utility: sim {rank_s}, real {rank_r}: "
              f"{'same' if rank_s == rank_r else 'DIFFERENT'}")
    if rel:
        print(f"\nmean relative error of lost utility: {100 * sum(rel) / len(rel):.1f}% over {len(rel)} cells")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
