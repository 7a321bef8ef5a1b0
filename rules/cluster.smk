# Cluster execution (profiles/slurm, profiles/kubernetes): what stays on the submitting host,
# what a cluster job asks for, and the refusal of live backends on remote executors.
# One cluster job per run: its stage jobs and its results job form the group "run". The
# numbers and their measurements are in faro.workflow.executor (workflow/faro/workflow/executor.py).
from faro.workflow.executor import check_executor, run_mem_mb, runtime_min, train_mem_mb


# light jobs run on the submitting host: data (internet or the mirror is reachable there),
# the trace, aggregation over runs, figures and tables, and the target rules
localrules:
    all,
    stats,
    plots,
    breakdown,
    teardown,
    k8s_manifests,
    fetch_data,
    prepare_trace,
    cell_stats,
    stats_table,
    plot_headline,
    plot_headline_settings,
    plot_quota_timelines,
    plot_summary,
    table_main,
    plot_ablation,
    plot_model,
    bench_hierarchical,
    plot_hierarchical,
    bench_solver_optimality,
    plot_solver_optimality,
    forecast_day11,
    plot_forecast,
    plot_cilantro,
    table_sim_vs_real,
    table_scale_out,
    plots_note,
    plot_why,
    plot_cell_pdf,
    cell_pdfs,
    plot_forecast_selection,
    plot_forecasters,
    table_fidelity,
    plot_job_latency,
    plot_overview,


# a job that a remote executor started on a cluster node: never a live session
if workflow.remote_exec:
    check_executor(BACKEND, non_local=False, in_remote_job=True)


def check_executor_on_start():
    """onstart (the submitting process, executor known): refuse a live backend on a cluster."""
    plugin = workflow.executor_plugin
    check_executor(
        BACKEND,
        non_local=workflow.non_local_exec,
        executor=getattr(plugin, "name", "") or "",
    )


def get_run_mem_mb(wildcards, attempt):
    """Memory of a run's cluster job (the group's jobs share it: the peak is its results job)."""
    return run_mem_mb(EXP.n_jobs, attempt)


def get_stage_runtime(wildcards, attempt):
    return runtime_min("stage", attempt)


def get_replay_runtime(wildcards, attempt):
    return runtime_min("replay", attempt)


def get_results_runtime(wildcards, attempt):
    return runtime_min("results", attempt)


def get_train_light_runtime(wildcards, attempt):
    return runtime_min("train_light", attempt)


def get_train_nhits_runtime(wildcards, attempt):
    return runtime_min("train_nhits", attempt)


def get_train_light_mem_mb(wildcards, attempt):
    return train_mem_mb("light", attempt)


def get_train_nhits_mem_mb(wildcards, attempt):
    return train_mem_mb("nhits", attempt)
