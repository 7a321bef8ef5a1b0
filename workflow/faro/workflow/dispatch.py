"""What runs a rule: ``scripts/rule.py`` calls :func:`run_rule`, which sets the process up and
calls the rule's entry function, listed in :data:`ENTRIES`.

No entry function imports this module, so it is in no rule's computed code inputs
(:mod:`faro.workflow.codedeps`): adding, renaming or removing a rule here reruns no job.
"""

from __future__ import annotations

import os

#: rule name -> its entry function ("module:function")
ENTRIES = {
    "fetch_data": "faro.workflow.entry:fetch_data",
    "prepare_trace": "faro.workflow.entry:prepare_trace",
    "train_forecaster": "faro.workflow.entry:train_forecaster",
    "train_nhits": "faro.workflow.entry:train_nhits",
    **{rule: "faro.workflow.entry:stage" for rule in (
        "setup_quota", "deploy_clusters", "deploy_jobs", "launch_autoscaler", "replay", "fetch_logs",
        "teardown_run")},
    "k8s_manifests": "faro.workflow.entry:k8s_manifests",
    "teardown": "faro.workflow.entry:teardown_all",
    "run_results": "faro.workflow.entry:run_results",
    "cell_stats": "faro.workflow.entry:cell_stats",
    "stats_table": "faro.workflow.entry:stats_table",
    **{rule: f"faro.workflow.plot_entry:{rule}" for rule in (
        "plot_headline", "plot_headline_settings", "plot_quota_timelines", "plot_overview",
        "table_fidelity", "plot_job_latency", "plot_summary", "table_main", "plot_ablation", "plot_model",
        "bench_hierarchical", "plot_hierarchical", "bench_solver_optimality", "plot_solver_optimality",
        "forecast_day11", "plot_forecast", "plot_forecasters", "plot_forecast_selection", "plot_cilantro",
        "table_sim_vs_real", "table_scale_out", "plots_note", "plot_why", "plot_cell_pdf")},
}

#: rules of faro.workflow.plot_entry that time solvers or forecasters: they keep Python's
#: default garbage collection, under which the timings they record were measured
TIMED_RULES = frozenset({"bench_hierarchical", "bench_solver_optimality", "forecast_day11"})
#: modules every drawing rule imports (loaded before :func:`prepare_drawing` freezes them)
DRAWING_IMPORTS = ("matplotlib.pyplot", "pandas", "pyarrow.parquet")
#: libraries whose INFO messages stay out of drawing rules' logs (fontTools: about 30 lines per
#: PDF, one per font table it subsets)
QUIET_LOGGERS = ("fontTools",)


def is_drawing_rule(rule: str) -> bool:
    """A rule that draws figures or writes tables (not one of :data:`TIMED_RULES`)."""
    return ENTRIES.get(rule, "").startswith("faro.workflow.plot_entry:") and rule not in TIMED_RULES


def prepare_drawing() -> None:
    """Set up a process that draws figures.

    Garbage collection: the libraries' import-time objects are moved out of the collector's
    view (they live as long as the process), and the youngest generation is collected every
    5,000 new container objects instead of 700. A matplotlib figure allocates tens of
    thousands (artists, ticks, transforms), and the default spent about an eighth of the
    drawing time in collections that rescan the same long-lived objects
    (``scripts/bench_plots.py``, README "Performance"); memory stays bounded, as every figure
    is closed once saved. Logging: :data:`QUIET_LOGGERS` only at WARNING and above."""
    import gc
    import importlib
    import logging

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in DRAWING_IMPORTS:
        importlib.import_module(name)
    gc.freeze()
    gc.set_threshold(5000, 10, 10)


def run_rule(smk) -> None:
    """Run the entry function of rule ``smk.rule`` (a drawing rule after :func:`prepare_drawing`).

    With ``FARO_RULE_RUSAGE=FILE`` in the environment, each job appends one line to FILE: the
    rule and the CPU-seconds of its process (user, system: the interpreter's start, Snakemake's
    script preamble, the imports and the work), for the per-job overhead figures of
    ``scripts/bench_workflow_cpu.py``."""
    import importlib

    try:
        target = ENTRIES[smk.rule]
    except KeyError:
        raise KeyError(f"rule {smk.rule!r} has no entry in faro.workflow.dispatch.ENTRIES") from None
    module, _, func = target.partition(":")
    if is_drawing_rule(smk.rule):
        prepare_drawing()
    try:
        getattr(importlib.import_module(module), func)(smk)
    finally:
        if os.environ.get("FARO_RULE_RUSAGE"):
            import resource

            ru = resource.getrusage(resource.RUSAGE_SELF)
            with open(os.environ["FARO_RULE_RUSAGE"], "a") as fh:
                fh.write(f"{smk.rule}\t{ru.ru_utime:.3f}\t{ru.ru_stime:.3f}\n")
