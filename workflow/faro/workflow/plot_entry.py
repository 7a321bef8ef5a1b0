"""Entry points of the plot and table rules (run by ``scripts/rule.py`` through
:data:`faro.workflow.dispatch.ENTRIES`).  Each reads its inputs, calls the pure figure/table
functions and saves atomically, logging to the rule's log file."""

from __future__ import annotations

import html
from pathlib import Path

from faro.workflow.rulelog import logged


def _save(fig, *paths: str) -> None:
    from faro.plots.io import save

    save(fig, *paths)


# --------------------------------------------------------------------------- per run / cell / quota


def plot_headline(smk) -> None:
    """The headline of one quota from the root's stats table (every seed of every policy)."""
    from faro.plots.data import read_stats_table
    from faro.plots.headline import fig_headline_runs

    with logged(smk):
        runs = read_stats_table(smk.input.table)
        runs = runs[runs["quota"] == int(smk.params.quota)]
        fig = fig_headline_runs(runs, f"{smk.params.quota} CPUs ({smk.params.backend})",
                                list(smk.params.policies))
        _save(fig, smk.output.png, smk.output.pdf)


def cell_title(policy: str, quota, seed, backend: str) -> str:
    """The title of a per-cell figure (Fig. 2), the same in its PNG and its on-request PDF."""
    from faro.plots.style import label

    return f"{label(policy)}, {quota} CPUs, seed {seed} ({backend})"


def slo_figure(binned, *, jobs, title: str):
    """Fig. 2 (per-job SLO violation timeline) of one run from its binned frame."""
    from faro.plots.timeline import fig_job_slo_timeline

    return fig_job_slo_timeline(binned, title=f"Fig. 2: {title}", jobs=jobs)


def why_figure(decisions, binned, *, policy: str, quota, seed, unit_time: float):
    """The why figure of one run (its worst job) and that job."""
    from faro.plots import style
    from faro.plots.why import fig_why, worst_job

    job = worst_job(binned)
    title = (f"{style.label(policy)}, {quota} CPUs, seed {seed}: {style.job_label(job)} "
             "(most SLO violations)")
    return fig_why(decisions, binned, job, unit_time=float(unit_time), title=title), job


def cell_timelines(binned, replicas, *, jobs, title: str, unit_time: float):
    """(Fig. 2, replica steps on a 10 s grid in trace minutes) of one run from its binned frame
    and replica changes."""
    import numpy as np

    from faro.plots.data import replica_steps

    slo = slo_figure(binned, jobs=jobs, title=title)
    if len(replicas) == 0:
        raise ValueError(f"{title}: no replica changes recorded")
    n_min = int(binned["minute"].max()) + 1
    t_end = max(float(replicas["time_s"].max()), n_min * float(unit_time))
    steps = replica_steps(replicas, jobs, np.arange(0.0, t_end + 10.0, 10.0))
    steps.index = steps.index / float(unit_time)  # trace minutes on the x axis
    return slo, steps


def plot_quota_timelines(smk) -> None:
    """For one quota: Fig. 1 (every policy's cluster utility over time, requests below), the
    replicas of every policy side by side and, per policy, Fig. 2 (per-job SLO violation
    timeline; PNG, its PDF on request: :func:`plot_cell_pdf`), all of the plotted seed.

    One job per quota (not per cell) keeps `snakemake plots` fast for large matrices.
    """
    import pandas as pd

    from faro.model.schema import read_replicas
    from faro.plots.data import read_binned, wide
    from faro.plots.overview import fig_replica_comparison
    from faro.plots.timeline import fig_cluster_utility

    with logged(smk) as log:
        p = smk.params
        jobs = list(p.jobs)
        policies = list(p.policies)
        binned = {pol: read_binned(f) for pol, f in zip(policies, smk.input.binned, strict=True)}
        o = smk.output
        _save(fig_cluster_utility(binned, n_jobs=len(jobs),
                                  title=f"Fig. 1: {p.quota} CPUs, seed {p.seed} ({p.backend})",
                                  window=int(p.window)), o.fig1_png, o.fig1_pdf)
        steps_by = {}
        for pol, rep_path in zip(policies, smk.input.replicas, strict=True):
            slo, steps_by[pol] = cell_timelines(binned[pol], read_replicas(rep_path), jobs=jobs,
                                                title=cell_title(pol, p.quota, p.seed, p.backend),
                                                unit_time=float(p.unit_time))
            _save(slo, getattr(o, f"slo_png_{pol}"))
        # offered load in CPUs: requests per trace minute / its length in seconds x processing time
        load = wide(binned[policies[0]], "requests", jobs) / float(p.unit_time) * pd.Series(
            {j: float(p.proc_s[j]) for j in jobs})
        _save(fig_replica_comparison(steps_by, load, quota=int(p.quota),
                                     title=f"{p.quota} CPUs, seed {p.seed} ({p.backend})"), o.cmp_png,
              o.cmp_pdf)
        log.info("timelines of %s CPUs: %d policies", p.quota, len(policies))


# --------------------------------------------------------------------------- whole matrix


def plot_summary(smk) -> None:
    """Fig. 4b (per job-minute, from the plotted seed's binned runs), per-job boxes, utility vs
    effective utility and the Pareto curve (from stats.parquet)."""
    import pandas as pd

    from faro.plots.data import cell_summary, job_long, read_binned, read_stats_table
    from faro.plots.summary import fig_job_boxes, fig_pareto, fig_utility_vs_effective, fig_utility_vs_slo

    with logged(smk) as log:
        runs = read_stats_table(smk.input.table)
        runs = runs[runs["policy"].isin(smk.params.policies) & runs["quota"].isin(smk.params.quotas)]
        jobs = job_long(runs)
        cells = cell_summary(runs,
                             ["avg_total_utility", "avg_total_effective_utility", "slo_violation", "n_jobs"])
        minutes = pd.concat([read_binned(f) for f in smk.input.binned], ignore_index=True)
        o = smk.output
        _save(fig_utility_vs_slo(minutes), o.scatter_png, o.scatter_pdf)
        _save(fig_job_boxes(jobs), o.boxes_png, o.boxes_pdf)
        _save(fig_utility_vs_effective(cells), o.effective_png, o.effective_pdf)
        _save(fig_pareto(cells), o.pareto_png, o.pareto_pdf)
        log.info("summary figures from %d runs, %d job-minutes", len(runs), len(minutes))


def plot_overview(smk) -> None:
    """The policy x quota overview (SLO%, lost utility, violation) and, with several seeds, the
    per-seed spread."""
    from faro.plots.data import cell_summary, read_stats_table
    from faro.plots.overview import fig_overview, fig_seed_spread

    with logged(smk) as log:
        runs = read_stats_table(smk.input.table)
        runs = runs[runs["policy"].isin(smk.params.policies) & runs["quota"].isin(smk.params.quotas)]
        cells = cell_summary(runs, ["slo_rate", "lost_utility", "slo_violation", "n_jobs"])
        _save(fig_overview(cells), smk.output.png, smk.output.pdf)
        if hasattr(smk.output, "spread_png"):
            _save(fig_seed_spread(runs), smk.output.spread_png, smk.output.spread_pdf)
        log.info("overview of %d cells", len(cells))


def plot_job_latency(smk) -> None:
    """Per-job latency (p50-p99 of successful requests) of every policy, one panel per quota."""
    import pandas as pd

    from faro.plots.compare import fig_job_latency

    with logged(smk):
        by_q: dict[int, dict] = {}
        for f, (q, pol) in zip(smk.input.latency, smk.params.cells_keys, strict=True):
            by_q.setdefault(int(q), {})[pol] = pd.read_parquet(f)
        _save(fig_job_latency(by_q, slo_ms=dict(smk.params.slo_ms), jobs=list(smk.params.jobs)),
              smk.output.png, smk.output.pdf)


def table_fidelity(smk) -> None:
    """Ours vs the paper: the reference data file's cells beside ours (table in four formats + figure)."""
    from faro.plots.data import read_stats_table
    from faro.plots.fidelity import display_fidelity, fidelity_table, fig_fidelity, load_references
    from faro.plots.tables import write_table

    with logged(smk) as log:
        refs = load_references(smk.input.reference)
        runs = read_stats_table(smk.input.table)
        t = fidelity_table(runs, refs, experiment=str(smk.params.experiment), backend=str(smk.params.backend))
        if t.empty:
            raise ValueError("no cell of the stats table has a reference number "
                             "(the planner should have skipped this)")
        o = smk.output
        n_pass = int(t["pass"].sum())
        write_table(t, display_fidelity(t), csv=o.csv, md=o.md, tex=o.tex, html_path=o.html,
                    title=f"Ours ({smk.params.backend}) vs the paper: {n_pass} of {len(t)} within tolerance",
                    caption="Ours: mean ± sample sd over our seeds; reference: the published mean (± sd when "
                            "published); difference = ours - reference; rates in percent (SLO% and violation "
                            "differences in points). Tolerance per cell from the reference file "
                            "(config/reference/paper_numbers.yaml), where each number's source is given.",
                    label="tab:fidelity")
        _save(fig_fidelity(t), o.png, o.pdf)
        log.info("fidelity: %d of %d cells within tolerance", n_pass, len(t))


def plot_headline_settings(smk) -> None:
    """Headline panels for every quota of this root and every configured other setting."""
    from faro.plots.data import read_stats_table
    from faro.plots.headline import fig_headline_settings, summary_from_runs

    with logged(smk) as log:
        settings = []
        roots = [(str(smk.params.title), smk.input.table, list(smk.params.policies)),
                 *[(n, f, None) for n, f in zip(smk.params.other_names, smk.input.others, strict=True)]]
        for name, path, policies in roots:
            runs = read_stats_table(path)
            if policies is not None:
                runs = runs[runs["policy"].isin(policies)]
            for q in sorted(runs["quota"].unique()):
                r = runs[runs["quota"] == q]
                settings.append((f"{name}, {int(q)} CPUs", summary_from_runs(r), r))
        _save(fig_headline_settings(settings), smk.output.png, smk.output.pdf)
        log.info("headline with %d panels", len(settings))


def plot_ablation(smk) -> None:
    """Fig. 16: the configured ablation ladder at each configured quota."""
    from faro.model.stats import read_stats
    from faro.plots.summary import fig_ablation

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
        _save(model.fig_utility_vs_replicas(float(p.rate), list(p.caps)), smk.output.rep_png,
              smk.output.rep_pdf)


def bench_hierarchical(smk) -> None:
    """Fig. 7's data: flat vs hierarchical decisions for growing numbers of jobs (CSV)."""
    from faro.model.trace import parse_trace
    from faro.plots.solver import hierarchical_benchmark

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
    from faro.forecast.history import load_history
    from faro.model.data import DATASETS, HISTORY_FILE
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
        title = (f"Fig. 8: job {p.job}, day 11: forecaster '{p.forecaster}' (trained on days 1-10), "
                 "7-minute blocks")
        _save(fig_forecast(pd.read_csv(smk.input.csv), title=title), smk.output.png, smk.output.pdf)


def plot_forecasters(smk) -> None:
    """The forecaster comparison (scripts/compare_forecasters.py CSVs) as a figure."""
    import pandas as pd

    from faro.plots.forecast import fig_forecasters

    with logged(smk) as log:
        df = pd.concat([pd.read_csv(f) for f in smk.input.csv], ignore_index=True)
        _save(fig_forecasters(df), smk.output.png, smk.output.pdf)
        log.info("forecaster comparison: %d runs", len(df))


def plot_forecast_selection(smk) -> None:
    """The forecaster / quantile selection on days 1-10 (scripts/select_forecaster.py CSVs)."""
    import pandas as pd

    from faro.plots.forecast import fig_forecast_selection

    with logged(smk) as log:
        df = pd.concat([pd.read_csv(f) for f in smk.input.csv], ignore_index=True)
        _save(fig_forecast_selection(df), smk.output.png, smk.output.pdf)
        log.info("selection: %d rows", len(df))


def plot_cilantro(smk) -> None:
    """Fig. 11: Cilantro's real 64-CPU run beside one of our runs."""
    from faro.plots.cilantro import fig_cilantro
    from faro.plots.data import cilantro_minutes, cluster_series, read_binned, read_cilantro
    from faro.plots.style import label

    with logged(smk):
        p = smk.params
        cil = cilantro_minutes(read_cilantro(list(smk.input.cilantro)))
        ours = {f"{label(p.policy)} ({p.backend}, {p.quota} CPUs)": (p.policy,
                                                                     cluster_series(read_binned(smk.input.binned)))}
        _save(fig_cilantro(cil, ours), smk.output.png, smk.output.pdf)


# --------------------------------------------------------------------------- tables


def table_main(smk) -> None:
    """The main matrix: one policy x quota grid per metric (SLO%, violation %, lost utility, ...)."""
    from faro.plots.data import read_stats_table
    from faro.plots.tables import MAIN_METRICS, main_matrix, matrix_csv, matrix_grid, seeds_note, write_table

    with logged(smk) as log:
        runs = read_stats_table(smk.input.table)
        runs = runs[runs["policy"].isin(smk.params.policies) & runs["quota"].isin(smk.params.quotas)]
        t = main_matrix(runs)
        metrics = [m for m in MAIN_METRICS if m.column in t.columns]
        grids = [(m.header, matrix_grid(t, m)) for m in metrics]
        o = smk.output
        write_table(matrix_csv(t), grids[0][1], csv=o.csv, md=o.md, tex=o.tex, html_path=o.html,
                    title=f"Main matrix ({smk.params.backend}), policy x quota: {grids[0][0]}",
                    caption=f"{seeds_note(t)}. Rates in percent: SLO% = requests within their SLO (failures "
                            "count as misses); cluster SLO violation rate = 1 - the per-minute SLO fraction "
                            "averaged over jobs and minutes; lost cluster utility = number of jobs - average "
                            "cluster utility. † = beyond the paper.",
                    label="tab:main", extra=grids[1:])
        log.info("main matrix: %d cells", len(t))


def table_sim_vs_real(smk) -> None:
    from faro.plots.compare import fig_sim_vs_real
    from faro.plots.data import read_stats_table
    from faro.plots.tables import display_sim_vs_real, display_summary, sim_vs_real, write_table

    with logged(smk) as log:
        labels = (str(smk.params.this_label), str(smk.params.other_label))
        det, summ = sim_vs_real(read_stats_table(smk.input.this), read_stats_table(smk.input.other),
                                labels=labels)
        o = smk.output
        write_table(det, display_sim_vs_real(det, labels=labels), csv=o.csv, md=o.md, tex=o.tex,
                    html_path=o.html, title=f"{labels[0]} vs {labels[1]}", label="tab:sim-vs-real",
                    caption="SLO% (requests within the SLO), lost cluster utility and cluster SLO "
                            "violation rate (%) per cell, mean ± sd over each side's seeds (counts in "
                            "'seeds'); difference = "
                            f"{labels[1]} - {labels[0]}; relative error |a - b| / |b|; Kendall tau of the "
                            "policy rankings per quota.",
                    extra=[("Ranking distance and error per quota", display_summary(summ))])
        summ.to_csv(o.summary, index=False)
        _save(fig_sim_vs_real(det, labels=labels), o.png, o.pdf)
        log.info("compared %d cells", len(det))


def table_scale_out(smk) -> None:
    from faro.plots.data import read_stats_table
    from faro.plots.tables import display_scale_out, scale_out, seeds_note, write_table

    with logged(smk):
        settings = [(n, read_stats_table(f)) for n, f in zip(smk.params.names, smk.input.tables, strict=True)]
        t = scale_out(settings)
        o = smk.output
        write_table(t, display_scale_out(t), csv=o.csv, md=o.md, tex=o.tex, html_path=o.html,
                    title="Scale-out", label="tab:scale-out",
                    caption="SLO% (requests within the SLO), lost cluster utility and cluster SLO violation "
                            f"rate (%) per setting; {seeds_note(t)}.")


# --------------------------------------------------------------------------- report note


def plots_note(smk) -> None:
    """An HTML note for the report: which figures and tables were made, which skipped and why."""
    with logged(smk):
        made = list(smk.params.made)
        skipped = list(smk.params.skipped)
        rows = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(r)}</li>" for n, r in skipped)
        text = ("<!doctype html><html><head><meta charset='utf-8'><title>Figures</title></head>"
                "<body style='font-family:sans-serif;font-size:13px'>"
                "<h3>Figures and tables of this results root</h3>"
                f"<p>Made: {html.escape(', '.join(made))}.</p>"
                + ("<p>Skipped (their inputs do not exist or are not configured; nothing is faked):</p>"
                   f"<ul>{rows}</ul>"
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
        argv = ["bench_solver.py", "--trace", str(smk.input.trace), "--out", str(smk.output[0]),
                "--skip-large", "--every", str(smk.params.every)]
        old = sys.argv
        sys.argv = argv
        try:
            with open(smk.log[0], "a") as fh, contextlib.redirect_stdout(fh):
                runpy.run_path(str(smk.input.script), run_name="__main__")
        finally:
            sys.argv = old
        log.info("wrote %s", smk.output[0])


def plot_why(smk) -> None:
    """Rule entry point: the why figure (PNG) of every policy at one quota (its plotted seed's
    run, for its worst job); one process draws them all. A PDF is made on request
    (:func:`plot_cell_pdf`)."""
    from faro.model.schema import read_decisions
    from faro.plots.data import read_binned

    with logged(smk) as log:
        p = smk.params
        for policy, dec_path, bin_path in zip(p.policies, smk.input.decisions, smk.input.binned, strict=True):
            fig, job = why_figure(read_decisions(dec_path), read_binned(bin_path), policy=policy,
                                  quota=p.quota, seed=p.seed, unit_time=p.unit_time)
            _save(fig, getattr(smk.output, f"png_{policy}"))
            log.info("why figure of %s at %s CPUs: %s", policy, p.quota, job)


def plot_cell_pdf(smk) -> None:
    """Rule entry point: one per-cell figure as a vector PDF, on request (`all` draws the PNGs
    of these, and a PDF costs more to draw than its PNG): ``kind`` ``slo_timeline`` (Fig. 2) or
    ``why``, with the same title and content as its PNG."""
    from faro.plots.data import read_binned

    with logged(smk) as log:
        p = smk.params
        binned = read_binned(smk.input.binned)
        if p.kind == "why":
            from faro.model.schema import read_decisions

            fig, _ = why_figure(read_decisions(smk.input.decisions), binned, policy=p.policy, quota=p.quota,
                                seed=p.seed, unit_time=p.unit_time)
        elif p.kind == "slo_timeline":
            fig = slo_figure(binned, jobs=list(p.jobs),
                             title=cell_title(p.policy, p.quota, p.seed, p.backend))
        else:
            raise ValueError(f"plot_cell_pdf: unknown figure kind {p.kind!r} (slo_timeline or why)")
        _save(fig, smk.output.pdf)
        log.info("%s of %s at %s CPUs as PDF", p.kind, p.policy, p.quota)
