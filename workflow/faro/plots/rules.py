"""Entry points of the plot and table rules (``scripts/plot_*.py`` / ``scripts/table_*.py`` are
one-line shims over these).  Each reads its inputs, calls the pure figure/table functions and
saves atomically, logging to the rule's log file."""

from __future__ import annotations

import html
from pathlib import Path

from faro.pipeline import logged


def _save(fig, png: str, pdf: str) -> None:
    from faro.plots.io import save

    save(fig, png, pdf)


def _n_minutes(trace_path: str) -> int:
    from faro.trace import parse_trace

    return parse_trace(trace_path).n_minutes


# --------------------------------------------------------------------------- per run / cell / quota


def bin_run(smk) -> None:
    """Per-job, per-minute SLO fraction and utilities of one run -> ``binned.parquet``."""
    from faro.plots.data import compute_binned, read_request_columns, write_binned

    with logged(smk) as log:
        p = smk.params
        df = compute_binned(read_request_columns(smk.input.requests), jobs=list(p.jobs), slo_ms=dict(p.slo_ms),
                            unit_time=float(p.unit_time), n_minutes=_n_minutes(smk.input.trace))
        write_binned(df, smk.output[0])
        log.info("binned %d job-minutes", len(df))


def plot_headline(smk) -> None:
    from faro.plots.headline import headline_from_files

    with logged(smk):
        fig = headline_from_files(list(smk.input.cells), list(smk.params.policies), f"{smk.params.quota} CPUs")
        _save(fig, smk.output.png, smk.output.pdf)


def cell_timelines(binned, replicas, *, jobs, quota: int, title: str, unit_time: float, proc_s):
    """(Fig. 2, replica timeline) of one run from its binned frame and replica changes."""
    import numpy as np

    from faro.plots.data import replica_steps, wide
    from faro.plots.timeline import fig_job_slo_timeline, fig_replicas

    slo = fig_job_slo_timeline(binned, title=title, jobs=jobs)
    if len(replicas) == 0:
        raise ValueError(f"{title}: no replica changes recorded")
    n_min = int(binned["minute"].max()) + 1
    t_end = max(float(replicas["time_s"].max()), n_min * float(unit_time))
    steps = replica_steps(replicas, jobs, np.arange(0.0, t_end + 10.0, 10.0))
    steps.index = steps.index / float(unit_time)  # trace minutes on the x axis
    rep = fig_replicas(steps, wide(binned, "requests", jobs), quota=quota, title=title, proc_s=proc_s)
    return slo, rep


def plot_quota_timelines(smk) -> None:
    """For one quota: Fig. 1 (every policy's cluster utility over time, requests below) and, per
    policy, Fig. 2 (per-job SLO violation timeline) and the replica timeline of the plotted seed.

    One job per quota (not per cell) keeps `snakemake plots` fast for large matrices.
    """
    from faro.plots.data import read_binned
    from faro.plots.style import label
    from faro.plots.timeline import fig_cluster_utility
    from faro.schema import read_replicas

    with logged(smk) as log:
        p = smk.params
        jobs = list(p.jobs)
        policies = list(p.policies)
        binned = {pol: read_binned(f) for pol, f in zip(policies, smk.input.binned, strict=True)}
        o = smk.output
        _save(fig_cluster_utility(binned, n_jobs=len(jobs), title=f"{p.quota} CPUs, seed {p.seed} ({p.backend})",
                                  window=int(p.window)), o.fig1_png, o.fig1_pdf)
        for pol, rep_path in zip(policies, smk.input.replicas, strict=True):
            title = f"{label(pol)}, {p.quota} CPUs, seed {p.seed} ({p.backend})"
            slo, rep = cell_timelines(binned[pol], read_replicas(rep_path), jobs=jobs, quota=int(p.quota), title=title,
                                      unit_time=float(p.unit_time), proc_s=dict(p.proc_s))
            _save(slo, getattr(o, f"slo_png_{pol}"), getattr(o, f"slo_pdf_{pol}"))
            _save(rep, getattr(o, f"rep_png_{pol}"), getattr(o, f"rep_pdf_{pol}"))
        log.info("timelines of %s CPUs: %d policies", p.quota, len(policies))


# --------------------------------------------------------------------------- whole matrix


def plot_summary(smk) -> None:
    """Fig. 4b, per-job boxes, utility vs effective utility and the Pareto curve from stats.parquet."""
    from faro.plots.data import cell_summary, job_long, read_stats_table
    from faro.plots.summary import fig_job_boxes, fig_pareto, fig_utility_vs_effective, fig_utility_vs_slo

    with logged(smk) as log:
        runs = read_stats_table(smk.input.table)
        runs = runs[runs["policy"].isin(smk.params.policies) & runs["quota"].isin(smk.params.quotas)]
        jobs = job_long(runs)
        cells = cell_summary(runs, ["avg_total_utility", "avg_total_effective_utility", "slo_violation", "n_jobs"])
        o = smk.output
        _save(fig_utility_vs_slo(jobs), o.scatter_png, o.scatter_pdf)
        _save(fig_job_boxes(jobs), o.boxes_png, o.boxes_pdf)
        _save(fig_utility_vs_effective(cells), o.effective_png, o.effective_pdf)
        _save(fig_pareto(cells), o.pareto_png, o.pareto_pdf)
        log.info("summary figures from %d runs", len(runs))


def plot_headline_settings(smk) -> None:
    """Headline panels for every quota of this root and every configured other setting."""
    from faro.plots.data import cells_from_table, read_stats_table
    from faro.plots.headline import fig_headline_settings
    from faro.stats import read_stats

    with logged(smk) as log:
        by_q: dict[int, dict] = {}
        for f, (q, p) in zip(smk.input.cells, smk.params.cells_keys, strict=True):
            by_q.setdefault(int(q), {})[p] = read_stats(f)
        settings = [(f"{smk.params.title}, {q} CPUs", cells) for q, cells in by_q.items()]
        for name, path in zip(smk.params.other_names, smk.input.others, strict=True):
            by_cell = cells_from_table(read_stats_table(path))
            for q in sorted({q for q, _ in by_cell}):
                settings.append((f"{name}, {q} CPUs", {p: c for (qq, p), c in by_cell.items() if qq == q}))
        _save(fig_headline_settings(settings), smk.output.png, smk.output.pdf)
        log.info("headline with %d panels", len(settings))


def plot_ablation(smk) -> None:
    """Fig. 16: the configured ablation ladder at each configured quota."""
    from faro.plots.summary import fig_ablation
    from faro.stats import read_stats

    with logged(smk):
        steps = list(smk.params.steps)
        by_q: dict[int, dict] = {}
        for f, (q, p) in zip(smk.input.cells, smk.params.cells_keys, strict=True):
            by_q.setdefault(int(q), {})[p] = read_stats(f)
        _save(fig_ablation(by_q, steps, dict(smk.params.labels)), smk.output.png, smk.output.pdf)


# --------------------------------------------------------------------------- model, solver, forecast


def plot_model(smk) -> None:
    """Fig. 4a (utility functions) and Fig. 6 (utility vs replicas for several utilisation caps)."""
    from faro.plots import model

    with logged(smk):
        p = smk.params
        model.PROC_S, model.SLO_S = float(p.proc_s), float(p.slo_s)
        _save(model.fig_utility_functions(float(p.slo_s)), smk.output.util_png, smk.output.util_pdf)
        _save(model.fig_utility_vs_replicas(float(p.rate), list(p.caps)), smk.output.rep_png, smk.output.rep_pdf)


def bench_hierarchical(smk) -> None:
    """Fig. 7's data: flat vs hierarchical decisions for growing numbers of jobs (CSV)."""
    from faro.plots.solver import hierarchical_benchmark
    from faro.trace import parse_trace

    with logged(smk) as log:
        p = smk.params
        counts = parse_trace(smk.input.trace).counts.T  # (jobs, minutes)
        df = hierarchical_benchmark(counts, job_counts=list(p.job_counts), groups=list(p.groups),
                                    starts=list(p.starts), cpus_per_job=float(p.cpus_per_job),
                                    proc_s=float(p.proc_s), slo_s=float(p.slo_s))
        Path(smk.output[0]).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(smk.output[0], index=False)
        log.info("hierarchical benchmark: %d rows, %.1f s of solving", len(df), df["seconds"].sum())


def plot_hierarchical(smk) -> None:
    import pandas as pd

    from faro.plots.solver import fig_hierarchical

    with logged(smk):
        _save(fig_hierarchical(pd.read_csv(smk.input.csv)), smk.output.png, smk.output.pdf)


def plot_solver_optimality(smk) -> None:
    import pandas as pd

    from faro.plots.solver import fig_solver_optimality

    with logged(smk):
        _save(fig_solver_optimality(pd.read_csv(smk.input.csv)), smk.output.png, smk.output.pdf)


def forecast_day11(smk) -> None:
    """Fig. 8's data: the configured forecaster, trained on days 1-10, rolling over day 11."""
    from faro.data import DATASETS, HISTORY_FILE
    from faro.forecast import load_history
    from faro.plots.forecast import forecast_day11 as run

    with logged(smk) as log:
        hist = load_history(smk.input.history, DATASETS["faro-artifact"][HISTORY_FILE].sha256)
        df = run(hist, int(smk.params.job), str(smk.params.forecaster))
        Path(smk.output[0]).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(smk.output[0], index=False)
        log.info("forecast of job %s: %d minutes", smk.params.job, len(df))


def plot_forecast(smk) -> None:
    import pandas as pd

    from faro.plots.forecast import fig_forecast

    with logged(smk):
        p = smk.params
        title = f"job {p.job}, day 11: forecaster '{p.forecaster}' (trained on days 1-10), 7-minute blocks"
        _save(fig_forecast(pd.read_csv(smk.input.csv), title=title), smk.output.png, smk.output.pdf)


def plot_cilantro(smk) -> None:
    """Fig. 11: Cilantro's real 64-CPU run beside one of our runs."""
    from faro.plots.cilantro import fig_cilantro
    from faro.plots.data import cilantro_minutes, cluster_series, read_binned, read_cilantro
    from faro.plots.style import label

    with logged(smk):
        p = smk.params
        cil = cilantro_minutes(read_cilantro(list(smk.input.cilantro)))
        ours = {f"{label(p.policy)} ({p.backend}, {p.quota} CPUs)": (p.policy, cluster_series(read_binned(smk.input.binned)))}
        _save(fig_cilantro(cil, ours), smk.output.png, smk.output.pdf)


# --------------------------------------------------------------------------- tables


def table_main(smk) -> None:
    from faro.plots.data import read_stats_table
    from faro.plots.tables import display_matrix, main_matrix, write_table

    with logged(smk) as log:
        runs = read_stats_table(smk.input.table)
        runs = runs[runs["policy"].isin(smk.params.policies) & runs["quota"].isin(smk.params.quotas)]
        t = main_matrix(runs)
        o = smk.output
        write_table(t, display_matrix(t), csv=o.csv, md=o.md, tex=o.tex, html_path=o.html,
                    title=f"Main matrix ({smk.params.backend}): policy x quota",
                    caption="Lost cluster utility, cluster SLO violation rate, p99 latency of successful requests, "
                            "failed requests and time-averaged replicas; mean ± std over seeds.",
                    label="tab:main")
        log.info("main matrix: %d cells", len(t))


def table_sim_vs_real(smk) -> None:
    from faro.plots.data import read_stats_table
    from faro.plots.tables import display_sim_vs_real, display_summary, sim_vs_real, write_table

    with logged(smk) as log:
        labels = (str(smk.params.this_label), str(smk.params.other_label))
        det, summ = sim_vs_real(read_stats_table(smk.input.this), read_stats_table(smk.input.other), labels=labels)
        o = smk.output
        write_table(det, display_sim_vs_real(det, labels=labels), csv=o.csv, md=o.md, tex=o.tex, html_path=o.html,
                    title=f"{labels[0]} vs {labels[1]}", label="tab:sim-vs-real",
                    caption="Relative error |a - b| / |b| per cell; Kendall tau of the policy rankings per quota.",
                    extra=[("Ranking distance and error per quota", display_summary(summ))])
        summ.to_csv(o.summary, index=False)
        log.info("compared %d cells", len(det))


def table_scale_out(smk) -> None:
    from faro.plots.data import read_stats_table
    from faro.plots.tables import display_scale_out, scale_out, write_table

    with logged(smk):
        settings = [(n, read_stats_table(f)) for n, f in zip(smk.params.names, smk.input.tables, strict=True)]
        t = scale_out(settings)
        o = smk.output
        write_table(t, display_scale_out(t), csv=o.csv, md=o.md, tex=o.tex, html_path=o.html,
                    title="Scale-out", label="tab:scale-out",
                    caption="Lost cluster utility and cluster SLO violation rate per setting; mean ± std over seeds.")


# --------------------------------------------------------------------------- report note


def plots_note(smk) -> None:
    """An HTML note for the report: which figures and tables were made, which skipped and why."""
    with logged(smk):
        made = list(smk.params.made)
        skipped = list(smk.params.skipped)
        rows = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(r)}</li>" for n, r in skipped)
        text = ("<!doctype html><html><head><meta charset='utf-8'><title>Figures</title></head>"
                "<body style='font-family:sans-serif;font-size:13px'>"
                f"<h3>Figures and tables of this results root</h3><p>Made: {html.escape(', '.join(made))}.</p>"
                + (f"<p>Skipped (their inputs do not exist or are not configured; nothing is faked):</p><ul>{rows}</ul>"
                   if skipped else "<p>Nothing skipped.</p>")
                + "</body></html>")
        out = Path(smk.output[0])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")


def bench_solver_optimality(smk) -> None:
    """Fig. 5's data: runs ``scripts/bench_solver.py`` (optimality study only) in this process."""
    import contextlib
    import runpy
    import sys

    with logged(smk) as log:
        argv = ["bench_solver.py", "--trace", str(smk.input.trace), "--out", str(smk.output[0]), "--skip-large",
                "--every", str(smk.params.every)]
        old = sys.argv
        sys.argv = argv
        try:
            with open(smk.log[0], "a") as fh, contextlib.redirect_stdout(fh):
                runpy.run_path(str(smk.input.script), run_name="__main__")
        finally:
            sys.argv = old
        log.info("wrote %s", smk.output[0])
