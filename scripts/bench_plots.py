"""Benchmark of the figures and tables for a results root (default: the default matrix's).

Two measurements:
  1. in-process: every figure/table function on the root's data (reading inputs, building, saving
     PNG + PDF into a scratch folder), timed per kind; compute steps (binning a run, the solver and
     forecast benchmarks) are timed separately since `snakemake plots` reuses their outputs;
  2. with --snakemake: the wall time of `snakemake plots` after forcing every plot_*/table_* rule
     (what "rebuild every figure" costs, process start-up included), with --cores N.

    PYTHONPATH=workflow python scripts/bench_plots.py --root results [--snakemake --cores 2 \
        --config data_mirror=... results=... data_dir=...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "workflow"))

#: plot/table rules and an output (glob, relative to the root) that shows the rule is in this
#: configuration's DAG; compute rules (bin_run, bench_*, forecast_day11) are not forced
PLOT_RULES = {
    "plot_headline": "plots/headline_*cpus.png", "plot_headline_settings": "plots/headline_settings.png",
    "plot_quota_timelines": "plots/cluster_utility_*.png",
    "plot_summary": "plots/pareto.png", "table_main": "tables/main_matrix.csv", "plot_model": "plots/utility_functions.png",
    "plot_hierarchical": "plots/hierarchical.png", "plot_solver_optimality": "plots/solver_optimality.png",
    "plot_forecast": "plots/forecast_day11.png", "plot_cilantro": "plots/cilantro.png", "plot_ablation": "plots/ablation.png",
    "table_sim_vs_real": "tables/sim_vs_real.csv", "table_scale_out": "tables/scale_out.csv",
    "plots_note": "plots/skipped.html",
}


def in_process(root: Path, out: Path, seed: int) -> dict[str, list[float]]:
    import numpy as np
    import pandas as pd

    from faro.plots import headline, model, solver, summary, timeline
    from faro.plots.data import (cell_summary, job_long, read_binned, read_stats_table,
                                 replica_steps, wide)
    from faro.plots.io import save
    from faro.plots.tables import display_matrix, main_matrix, write_table
    from faro.schema import read_replicas
    from faro.stats import read_stats

    t: dict[str, list[float]] = defaultdict(list)

    def timed(kind, fn, *a, **kw):
        t0 = time.perf_counter()
        r = fn(*a, **kw)
        t[kind].append(time.perf_counter() - t0)
        return r

    runs = read_stats_table(root / "stats.parquet")
    quotas = sorted(runs["quota"].unique())
    policies = list(dict.fromkeys(runs["policy"]))
    jobs = [c[len("avg_util_"):] for c in runs.columns if c.startswith("avg_util_")]

    def fig_to(kind, name, make):
        def go():
            save(make(), out / f"{name}.png", out / f"{name}.pdf")
        timed(kind, go)

    for q in quotas:
        cells = {p: read_stats(root / f"{q}_cpus/{p}/latency_stats.pkl") for p in policies}
        fig_to("headline", f"headline_{q}", lambda: headline.plot_headline(cells, f"{q} CPUs"))
        binned = {p: read_binned(root / f"{q}_cpus/{p}/seed_{seed}/binned.parquet") for p in policies}
        fig_to("fig1 cluster utility", f"fig1_{q}",
               lambda: timeline.fig_cluster_utility(binned, n_jobs=len(jobs), title=f"{q} CPUs"))
        for p in policies:
            b = binned[p]
            fig_to("fig2 slo timeline", f"fig2_{q}_{p}", lambda: timeline.fig_job_slo_timeline(b, title=p))

            def rep():
                r = read_replicas(root / f"{q}_cpus/{p}/seed_{seed}/replicas.parquet")
                grid = np.arange(0.0, float(r["time_s"].max()) + 10, 10.0)
                steps = replica_steps(r, jobs, grid)
                steps.index = steps.index / 60.0  # unit_time 60: trace minutes
                return timeline.fig_replicas(steps, wide(b, "requests", jobs), quota=int(q), title=p, proc_s=0.18)
            fig_to("replica timeline", f"rep_{q}_{p}", rep)
    jl = job_long(runs)
    cs = cell_summary(runs, ["avg_total_utility", "avg_total_effective_utility", "slo_violation", "n_jobs"])
    fig_to("summary figures", "scatter", lambda: summary.fig_utility_vs_slo(jl))
    fig_to("summary figures", "boxes", lambda: summary.fig_job_boxes(jl))
    fig_to("summary figures", "effective", lambda: summary.fig_utility_vs_effective(cs))
    fig_to("summary figures", "pareto", lambda: summary.fig_pareto(cs))
    fig_to("model figures", "fig4a", model.fig_utility_functions)
    fig_to("model figures", "fig6", model.fig_utility_vs_replicas)
    for name, kind in (("hierarchical.csv", "fig7"), ("solver_optimality.csv", "fig5")):
        p = root / "bench" / name
        if p.is_file():
            df = pd.read_csv(p)
            fig_to(kind, kind, (lambda d=df: solver.fig_hierarchical(d)) if kind == "fig7"
                   else (lambda d=df: solver.fig_solver_optimality(d)))
    def table():
        m = main_matrix(runs)
        write_table(m, display_matrix(m), csv=str(out / "m.csv"), md=str(out / "m.md"), tex=str(out / "m.tex"),
                    html_path=str(out / "m.html"), title="main")
    timed("main table", table)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=PROJECT / "results")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--snakemake", action="store_true", help="also time `snakemake plots` with forced plot rules")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--project", type=Path, default=PROJECT, help="project folder to run snakemake in")
    ap.add_argument("--config", nargs="*", default=[], help="extra --config key=value for snakemake")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        t = in_process(args.root, Path(tmp), args.seed)
        total = time.perf_counter() - t0
    import numpy as np

    print(f"in-process, {args.root}:")
    for kind, v in t.items():
        print(f"  {kind:22s} n={len(v):3d}  median {np.median(v):6.2f} s  total {sum(v):6.1f} s")
    print(f"  {'all':22s}        total {total:6.1f} s (one process, no start-up)")

    if args.snakemake:
        rules = [r for r, pattern in PLOT_RULES.items() if any(args.root.glob(pattern))]
        cmd = [sys.executable, "-m", "snakemake", "plots", "--cores", str(args.cores), "--rerun-triggers", "mtime",
               "--forcerun", *rules, "--config", f"results={args.root}", *args.config]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=args.project, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            print(r.stderr[-3000:])
            raise SystemExit(f"snakemake failed ({r.returncode})")
        n = r.stderr.count("Finished jobid")
        print(f"snakemake plots --forcerun <plot rules> --cores {args.cores}: {wall:.1f} s wall, {n} jobs")


if __name__ == "__main__":
    main()
