"""Benchmark of the figures and tables for a results root (default: the default matrix's).

Three measurements:
  1. in-process: the entry point of every plot/table rule (faro.workflow.plot_entry) on the root's data,
     called as the rule calls it (reading inputs, building, saving its outputs: PNG + PDF, the
     per-cell figures PNG only, into a scratch folder), timed per rule; compute steps (binning a
     run, the solver and forecast benchmarks) are not redone since `snakemake plots` reuses their
     outputs (their figures are timed when their CSVs exist; Cilantro and the ablation need
     inputs outside the root and are left out);
  2. with --cell-pdfs: the same for the per-cell figures' PDFs, which only `snakemake cell_pdfs`
     (or a request for one) draws, reported apart;
  3. with --snakemake: the wall time of `snakemake plots` after forcing every plot_*/table_* rule
     (what "rebuild every figure" costs, process start-up included), with --cores N.

    PYTHONPATH=workflow python scripts/bench_plots.py --root results [--cell-pdfs] [--snakemake --cores 2 \
        --config data_mirror=... results=... data_dir=...]
"""

from __future__ import annotations

import argparse
import os
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
    "plot_summary": "plots/pareto.png", "table_main": "tables/main_matrix.csv",
    "plot_model": "plots/utility_functions.png",
    "plot_overview": "plots/overview.png", "table_fidelity": "tables/fidelity.csv",
    "plot_job_latency": "plots/job_latency.png",
    "plot_hierarchical": "plots/hierarchical.png", "plot_solver_optimality": "plots/solver_optimality.png",
    "plot_forecast": "plots/forecast_day11.png", "plot_cilantro": "plots/cilantro.png",
    "plot_ablation": "plots/ablation.png",
    "table_sim_vs_real": "tables/sim_vs_real.csv", "table_scale_out": "tables/scale_out.csv",
    "plots_note": "plots/skipped.html", "plot_why": "plots/why_*cpus_*.png",
}


class _NL(list):
    """A list with named entries, like Snakemake's input/output/params."""

    def __init__(self, **named):
        super().__init__(named.values())
        for k, v in named.items():
            setattr(self, k, v)


def _smk(rule: str, log: Path, *, input=None, output=None, params=None):  # noqa: A002
    """The ``snakemake`` object a rule's entry function is given."""
    import types

    return types.SimpleNamespace(rule=rule, input=_NL(**(input or {})), output=_NL(**(output or {})),
                                 params=_NL(**(params or {})), log=[str(log)])


def _matrix(root: Path):
    """The root's stats table (path and runs), its quotas, its policies (in table order) and jobs."""
    from faro.plots.data import job_names, read_stats_table

    table = str(root / "stats.parquet")
    runs = read_stats_table(table)
    return (table, runs, sorted(int(q) for q in runs["quota"].unique()), list(dict.fromkeys(runs["policy"])),
            job_names(runs))


def in_process(root: Path, out: Path, seed: int) -> dict[str, list[float]]:
    """Every plot/table rule's entry point (faro.workflow.plot_entry) on the root's data, as the rules
    call them (inputs read, figures built, PNG + PDF saved into ``out``), timed per rule."""
    from faro.workflow import plot_entry as R

    t: dict[str, list[float]] = defaultdict(list)

    def run(rule, fn, *, input=None, output=None, params=None):  # noqa: A002
        smk = _smk(rule, out / "logs" / f"{rule}.log", input=input, output=output, params=params)
        t0 = time.perf_counter()
        fn(smk)
        t[rule].append(time.perf_counter() - t0)

    def fig(name, prefix=""):
        return {f"{prefix}png": str(out / f"{name}.png"), f"{prefix}pdf": str(out / f"{name}.pdf")}

    table, runs, quotas, policies, jobs = _matrix(root)
    seeds = sorted(runs["seed"].unique())
    qp = {"policies": policies, "quotas": quotas}
    tables = {k: str(out / f"t.{k}") for k in ("csv", "md", "tex", "html")}

    for q in quotas:
        run("plot_headline", R.plot_headline, input={"table": table}, output=fig(f"headline_{q}"),
            params={"policies": policies, "quota": q, "backend": "sim"})
        o = {"fig1_png": str(out / f"fig1_{q}.png"), "fig1_pdf": str(out / f"fig1_{q}.pdf"),
             "cmp_png": str(out / f"cmp_{q}.png"), "cmp_pdf": str(out / f"cmp_{q}.pdf")}
        for p in policies:
            o[f"slo_png_{p}"] = str(out / f"slo_{q}_{p}.png")
        run("plot_quota_timelines", R.plot_quota_timelines,
            input={"binned": [str(root / f"{q}_cpus/{p}/seed_{seed}/binned.parquet") for p in policies],
                   "replicas": [str(root / f"{q}_cpus/{p}/seed_{seed}/replicas.parquet") for p in policies]},
            output=o, params={"policies": policies, "jobs": jobs, "quota": q, "seed": seed, "backend": "sim",
                              "unit_time": 60.0, "proc_s": {j: 0.18 for j in jobs}, "window": 5})
        decisions = [root / f"{q}_cpus/{p}/seed_{seed}/decisions.parquet" for p in policies]
        if all(f.is_file() for f in decisions):
            why = {f"png_{p}": str(out / f"why_{q}_{p}.png") for p in policies}
            run("plot_why", R.plot_why,
                input={"decisions": [str(f) for f in decisions],
                       "binned": [str(root / f"{q}_cpus/{p}/seed_{seed}/binned.parquet") for p in policies]},
                output=why, params={"policies": policies, "quota": q, "seed": seed, "unit_time": 60.0})
    overview = fig("overview") | (fig("seed_spread", "spread_") if len(seeds) > 1 else {})
    run("plot_overview", R.plot_overview, input={"table": table}, output=overview, params=qp)
    ref = PROJECT / "config/reference/paper_numbers.yaml"
    run("table_fidelity", R.table_fidelity, input={"table": table, "reference": str(ref)},
        output={**tables, **fig("fidelity")}, params={"experiment": str(runs["experiment"].iloc[0]),
                                                      "backend": "sim"})
    run("plot_summary", R.plot_summary,
        input={"table": table, "binned": [str(root / f"{q}_cpus/{p}/seed_{seed}/binned.parquet")
                                          for q in quotas for p in policies]},
        output={**fig("scatter", "scatter_"), **fig("boxes", "boxes_"), **fig("effective", "effective_"),
                **fig("pareto", "pareto_")}, params=qp)
    latency = [root / f"{q}_cpus/{p}/seed_{seed}/job_latency.parquet" for q in quotas for p in policies]
    if all(f.is_file() for f in latency):
        run("plot_job_latency", R.plot_job_latency, input={"latency": [str(f) for f in latency]},
            output=fig("job_latency"), params={"cells_keys": [(q, p) for q in quotas for p in policies],
                                                "jobs": jobs, "slo_ms": {j: 720.0 for j in jobs}})
    run("table_main", R.table_main, input={"table": table}, output=tables, params={**qp, "backend": "sim"})
    run("plot_model", R.plot_model, output={**fig("fig4a", "util_"), **fig("fig6", "rep_")},
        params={"rate": 20.0, "caps": [0.8, 0.9, 0.95, 0.99], "proc_s": 0.18, "slo_s": 0.72})
    for name, rule, fn in (("hierarchical.csv", "plot_hierarchical", R.plot_hierarchical),
                           ("solver_optimality.csv", "plot_solver_optimality", R.plot_solver_optimality)):
        if (root / "bench" / name).is_file():
            run(rule, fn, input={"csv": str(root / "bench" / name)}, output=fig(rule))
    if (root / "bench/forecast_day11.csv").is_file():
        run("plot_forecast", R.plot_forecast, input={"csv": str(root / "bench/forecast_day11.csv")},
            output=fig("forecast"), params={"job": 0, "forecaster": "default"})
    return t


def cell_pdfs(root: Path, out: Path, seed: int) -> list[float]:
    """Every per-cell figure's PDF (rule plot_cell_pdf, as `snakemake cell_pdfs` asks for them),
    in-process: seconds per figure."""
    from faro.workflow import plot_entry as R

    _, _, quotas, policies, jobs = _matrix(root)
    times = []
    for q in quotas:
        for p in policies:
            run = root / f"{q}_cpus/{p}/seed_{seed}"
            for kind in ("slo_timeline", "why"):
                smk = _smk("plot_cell_pdf", out / "logs" / f"{kind}_{q}_{p}.log",
                           input={"binned": str(run / "binned.parquet"),
                                  "decisions": str(run / "decisions.parquet")},
                           output={"pdf": str(out / f"{kind}_{q}_{p}.pdf")},
                           params={"kind": kind, "policy": p, "quota": q, "seed": seed, "backend": "sim",
                                   "unit_time": 60.0, "jobs": jobs})
                t0 = time.perf_counter()
                R.plot_cell_pdf(smk)
                times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=PROJECT / "results")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--cell-pdfs", action="store_true",
                    help="also time the per-cell figures' PDFs (drawn on request only), apart")
    ap.add_argument("--snakemake", action="store_true",
                    help="also time `snakemake plots` with forced plot rules")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--project", type=Path, default=PROJECT, help="project folder to run snakemake in")
    ap.add_argument("--config", nargs="*", default=[], help="extra --config key=value for snakemake")
    args = ap.parse_args()

    from faro.workflow.dispatch import prepare_drawing

    prepare_drawing()  # as every drawing rule's process does (faro.workflow.dispatch.run_rule)
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        t = in_process(args.root, Path(tmp), args.seed)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        if args.cell_pdfs:
            c1 = time.process_time()
            pdfs = cell_pdfs(args.root, Path(tmp), args.seed)
            pdf_cpu = time.process_time() - c1
    import numpy as np

    print(f"in-process, {args.root}:")
    for kind, v in t.items():
        print(f"  {kind:24s} n={len(v):3d}  median {np.median(v):6.2f} s  total {sum(v):6.1f} s")
    print(f"  {'all':24s}        total {total:6.1f} s wall, {cpu:6.1f} s CPU (one process, no start-up; "
          f"CPU time is what a quiet machine's wall time would be, "
          f"load average now {os.getloadavg()[0]:.1f})")
    if args.cell_pdfs:
        print(f"  on request, not in the above: plot_cell_pdf n={len(pdfs):3d}  "
              f"median {np.median(pdfs):6.2f} s  "
              f"total {sum(pdfs):6.1f} s wall, {pdf_cpu:6.1f} s CPU")

    if args.snakemake:
        rules = [r for r, pattern in PLOT_RULES.items() if any(args.root.glob(pattern))]
        cmd = [sys.executable, "-m", "snakemake", "plots", "--cores", str(args.cores), "--rerun-triggers",
               "mtime", "--forcerun", *rules, "--config", f"results={args.root}", *args.config]
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
