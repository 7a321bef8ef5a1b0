# The cell grid, paths, and the named input functions used by the rules.
import json
import os
import sys

from faro.backends.base import BACKENDS, LIVE_BACKENDS
from faro.model.data import DATASETS, HISTORY_FILE, keep_verified
from faro.workflow.codedeps import closure_of
from faro.workflow.config import (
    check_config,
    check_results_root,
    experiment_dir,
    experiment_trace_file,
    load_policy_file,
    make_run_spec,
    project_relative,
    project_root,
    run_identity_hash,
    target_cells,
    trace_source,
)
from faro.workflow.config import unit_time as experiment_unit_time
from faro.workflow.dispatch import ENTRIES
from faro.workflow.summary import summary_table
from faro.workflow.support import (
    command_line,
    open_sessions,
    policy_code,
    repair_corrupt,
    requested_targets,
    run_order,
    teardown_sessions,
    will_run_jobs,
)

# fails here, naming the bad value, before any job starts (the matrix and every target path)
EXP = check_config(config, requested_targets(workflow))
ROOT = config["results"]
DATA = config["data_dir"]
BACKEND = config["backend"]
UNIT_TIME = experiment_unit_time(config, EXP)
POLICY_DIR = config.get("policy_dir", "config/policies")
EXPERIMENT_FILE = project_relative(experiment_dir(config) / "experiment.yaml")
CELL = os.path.join(ROOT, "{quota}_cpus/{policy}")
RUN = os.path.join(CELL, "seed_{seed}")
RUNS = run_order(config["quotas"], config["policies"], config["seeds"])
#: `snakemake --report` shows what exists: runs, cells and figures not built yet stay out of
#: its DAG (no failure, no warning per missing file) and are listed as skipped on its front page
REPORT_MODE = bool(getattr(command_line(), "report", None))


def present(paths):
    """``paths``, or in a --report run only those that exist."""
    return [p for p in paths if os.path.exists(p)] if REPORT_MODE else list(paths)


if REPORT_MODE:
    RUNS = [
        r
        for r in RUNS
        if os.path.exists(
            os.path.join(
                RUN.format(quota=r[0], policy=r[1], seed=r[2]), "latency_stats.pkl"
            )
        )
    ]
POLICY_SPECS = {}
#: each run's spec, made once per (quota, policy, seed) in this process
RUN_SPECS = {}


wildcard_constraints:
    quota=r"\d+",
    policy=r"[A-Za-z0-9_-]+",
    seed=r"\d+",


def get_matrix_keys(wildcards=None):
    keys = [(int(q), p) for q in config["quotas"] for p in config["policies"]]
    if REPORT_MODE:
        keys = [
            (q, p)
            for q, p in keys
            if os.path.exists(
                os.path.join(CELL.format(quota=q, policy=p), "latency_stats.pkl")
            )
        ]
    return keys


def get_summary_cells(wildcards=None):
    """Cells of this invocation: those named by path targets, else the matrix."""
    named = [(q, p) for _, q, p in target_cells(config, requested_targets(workflow))]
    return list(dict.fromkeys(named)) or get_matrix_keys()


# a corrupt output (unreadable Parquet, stats, record) is moved aside and rebuilt, not failed on;
# verified data files are kept in the data dir's store, so no redone fetch can lose one
repair_corrupt(ROOT, get_summary_cells())
if will_run_jobs():
    keep_verified(DATA)


def present_expand(pattern, **kw):
    return present(expand(pattern, **kw))


def get_run_dir(wildcards):
    return RUN.format(**wildcards)


def get_policy_spec(wildcards):
    """A policy's class and parameters as loaded: comments and layout of its file do not count."""
    name = wildcards.policy
    if name not in POLICY_SPECS:
        spec = load_policy_file(name, POLICY_DIR)
        POLICY_SPECS[name] = {"class": spec["class"], "params": spec["params"]}
    return POLICY_SPECS[name]


def get_run_hash(wildcards):
    """The run's identity: only what determines this run, never the rest of the matrix."""
    return run_identity_hash(
        experiment=EXP.raw,
        unit_time=UNIT_TIME,
        backend=BACKEND,
        backend_options=config.get(BACKEND, {}),
        policy=get_policy_spec(wildcards),
        quota=int(wildcards.quota),
        seed=int(wildcards.seed),
    )


def get_run_spec(wildcards):
    """The run's typed spec (faro.runspec.RunSpec) as a JSON-able dict: everything a stage
    needs, resolved here once (also a rerun trigger, so nothing here may depend on the rest of
    the matrix: narrowing `policies` must not touch finished runs)."""
    key = (int(wildcards.quota), wildcards.policy, int(wildcards.seed))
    if key not in RUN_SPECS:
        RUN_SPECS[key] = _make_run_spec(wildcards)
    return RUN_SPECS[key]


def _make_run_spec(wildcards):
    return make_run_spec(
        experiment=EXP.raw,
        backend=BACKEND,
        quota=int(wildcards.quota),
        policy=wildcards.policy,
        seed=int(wildcards.seed),
        unit_time=UNIT_TIME,
        trace_file=get_trace(wildcards),
        policy_dir=POLICY_DIR,
        results=ROOT,
        data_dir=DATA,
        backend_options=config.get(BACKEND, {}),
        config_hash=get_run_hash(wildcards),
    ).to_dict()


def get_trace_source(wildcards=None):
    """The experiment's source trace: a fetched data set file, or the user's own file."""
    return trace_source(config, EXP)


def get_trace(wildcards=None):
    return f"{ROOT}/trace.json"


def mark_results_root():
    """Record this root's experiment and backend (checked again at every start)."""
    check_results_root(config, create=True)


def get_previous_teardown(wildcards):
    """Live sessions never overlap: a run's quota stage waits for the previous run's teardown.

    A real data dependency on purpose (not ``ancient``): when an earlier run is redone, its
    session is live again, so the runs after it must wait and are redone after it.
    """
    if not LIVE_BACKENDS[BACKEND]:
        return []
    key = (int(wildcards.quota), wildcards.policy, int(wildcards.seed))
    k = RUNS.index(key)
    if k == 0:
        return []
    q, p, s = RUNS[k - 1]
    return os.path.join(RUN.format(quota=q, policy=p, seed=s), "stages/teardown.json")


def get_replay_after(wildcards):
    """A live backend's replay waits for its autoscaler stage (each stage is a job); a backend
    without live state runs every stage in the replay job (faro.workflow.stage_runner.run_chain).
    """
    if LIVE_BACKENDS[BACKEND]:
        return os.path.join(get_run_dir(wildcards), "stages/autoscaler.json")
    return []


def get_run_logs(wildcards):
    """What a run's results job reads after: a live session fetched and torn down, or the
    chain of a backend without live state (its replay job)."""
    stages = ["fetch", "teardown"] if LIVE_BACKENDS[BACKEND] else ["replay"]
    return [os.path.join(get_run_dir(wildcards), f"stages/{s}.json") for s in stages]


def get_rule_code(rule):
    """The package files the rule's entry function can import (computed, faro.workflow.codedeps)."""
    return closure_of(ENTRIES[rule])


def get_backend_code(wildcards=None):
    """A run's stage code: the stage runner and the configured backend's package."""
    return closure_of(ENTRIES["replay"], BACKENDS[BACKEND].partition(":")[0])


def get_results_code(wildcards=None):
    """The results rule's code: its entry and the configured backend's package (its log format)."""
    return closure_of(ENTRIES["run_results"], BACKENDS[BACKEND].partition(":")[0])


def get_replay_code(wildcards):
    """Modules a replay runs: the stage code and the policy's own code."""
    return sorted(set(get_backend_code()) | set(get_policy_code(wildcards)))


def get_policy_data(wildcards):
    """The data files the run's policy reads (its run spec has them)."""
    return list(get_run_spec(wildcards)["policy"]["data"])


def get_policy_code(wildcards):
    return policy_code(f"{POLICY_DIR}/{wildcards.policy}.yaml")


def get_seed_stats(wildcards):
    return present_expand(
        os.path.join(RUN, "latency_stats.pkl"),
        quota=wildcards.quota,
        policy=wildcards.policy,
        seed=config["seeds"],
    )


def get_cell_stats(wildcards=None):
    return [
        os.path.join(CELL.format(quota=q, policy=p), "latency_stats.pkl")
        for q, p in get_matrix_keys()
    ]


def get_run_stats(wildcards=None):
    return [
        os.path.join(RUN.format(quota=q, policy=p, seed=s), "latency_stats.pkl")
        for q, p, s in RUNS
    ]


def get_run_keys(wildcards=None):
    return [
        {
            "experiment": config["experiment"],
            "backend": BACKEND,
            "quota": q,
            "policy": p,
            "seed": s,
        }
        for q, p, s in RUNS
    ]


def get_run_decisions(wildcards=None):
    """Every run's decision records (decisions.parquet)."""
    return [
        os.path.join(RUN.format(quota=q, policy=p, seed=s), "decisions.parquet")
        for q, p, s in RUNS
    ]


def get_stats_table(wildcards=None):
    return [f"{ROOT}/stats.parquet", f"{ROOT}/stats.csv"]


def get_quota_cells(wildcards):
    return present_expand(
        os.path.join(CELL, "latency_stats.pkl"),
        quota=wildcards.quota,
        policy=config["policies"],
    )


def print_summary(log_text=None):
    """After a successful run: what it found, one line per cell (faro.workflow.summary)."""
    table = summary_table(
        ROOT, get_summary_cells(), experiment=EXP.name, backend=BACKEND
    )
    if table:
        print(table, flush=True)


def print_resume_hint(log_text=None):
    """After a failed or interrupted run: how to go on, in one line."""
    print(
        f"faro: the run stopped before the end; the same command resumes it (finished cells are "
        f"kept); `faro doctor {ROOT}` lists anything incomplete or corrupt",
        file=sys.stderr,
        flush=True,
    )


def teardown_open_sessions(log_text=None):
    """Tear down every session of this results root that is still open."""
    teardown_sessions(ROOT, BACKEND)


# ---------------------------------------------------------------- figures and tables

PLOTS = os.path.join(ROOT, "plots")


def report_file(path, **kw):
    """report(path, ...), except in a --report run when the file is absent (for some quota):
    then a plain output, so the report of a partial matrix lists it as skipped, not fails.
    """
    if REPORT_MODE:
        paths = (
            [path.format(quota=q) for q in config["quotas"]]
            if "{quota}" in path
            else [path]
        )
        if not all(os.path.exists(p) for p in paths):
            return path
    return report(path, **kw)


TABLES = os.path.join(ROOT, "tables")
FORMATS = ["png", "pdf"]
#: the paper's published numbers (with their sources) that tables/fidelity compares with
REFERENCE_FILE = "config/reference/paper_numbers.yaml"
#: our policy shown beside Cilantro, in order of preference (the first one in the matrix)
CILANTRO_POLICIES = [
    "faro_sum",
    "faro_fair_sum",
    "faro_fair",
    "faro_penalty_sum",
    "faro_penalty_fair_sum",
    "mark",
    "aiad",
    "oneshot",
    "fairshare",
]


def get_plot_config(wildcards=None):
    """The optional `plots:` config section (see report/README.md for its keys)."""
    return config.get("plots") or {}


def get_paper_figures(wildcards=None):
    """Model, solver, forecast and Cilantro figures: on by default for the artifact's own trace."""
    default = EXP.trace_spec.get(
        "dataset"
    ) == "faro-artifact" and not EXP.trace_spec.get("derive")
    value = get_plot_config().get("paper_figures")
    return default if value is None else bool(value)


def get_plot_seed(wildcards=None):
    """The seed whose runs the timelines show (42, the paper's, when configured)."""
    seeds = [int(s) for s in config["seeds"]]
    return 42 if 42 in seeds else seeds[0]


def plotted_run_file(quota, policy, name):
    """File ``name`` of the plotted seed's run of cell (``quota``, ``policy``)."""
    return os.path.join(
        RUN.format(quota=quota, policy=policy, seed=get_plot_seed()), name
    )


def get_job_slos(wildcards=None):
    return {j: float(m.slo_ms) for j, m in zip(EXP.jobs, EXP.job_models)}


def get_job_proc(wildcards=None):
    """Processing time (s) per job: turns input rates into offered load in CPUs."""
    return {j: m.processing_ms / 1000.0 for j, m in zip(EXP.jobs, EXP.job_models)}


def get_model_job(wildcards=None):
    """Processing time and SLO (s) of the experiment's first job, for the model figures."""
    m = EXP.job_models[0]
    return {"proc_s": m.processing_ms / 1000.0, "slo_s": m.slo_ms / 1000.0}


def get_quota_binned(wildcards):
    return present(
        [
            plotted_run_file(wildcards.quota, p, "binned.parquet")
            for p in config["policies"]
        ]
    )


def get_quota_replicas(wildcards):
    return present(
        [
            plotted_run_file(wildcards.quota, p, "replicas.parquet")
            for p in config["policies"]
        ]
    )


def _policy_label(policy):
    """Report label of a policy: its position in the figures' order first (the report sorts labels)."""
    from faro.plots.style import label, ordered

    k = ordered(config["policies"]).index(policy) + 1
    return f"{k:02d} {label(policy)}"


def get_quota_timeline_outputs(wildcards=None):
    """Named outputs of plot_quota_timelines: Fig. 1, the replicas of every policy side by side
    (PNG + PDF), then Fig. 2 of every policy (PNG; its PDF on request, rule plot_cell_pdf).
    """
    out = {
        "fig1_png": report_file(
            os.path.join(PLOTS, "cluster_utility_{quota}cpus.png"),
            category="4. Timelines and replicas",
            subcategory="{quota} CPUs",
            caption="../report/cluster_utility.rst",
            labels={
                "figure": "Fig. 1 cluster utility",
                "quota": "{quota}",
                "policy": "00 all",
            },
        ),
        "fig1_pdf": os.path.join(PLOTS, "cluster_utility_{quota}cpus.pdf"),
        "cmp_png": report(
            os.path.join(PLOTS, "replicas_{quota}cpus_all.png"),
            category="4. Timelines and replicas",
            subcategory="{quota} CPUs",
            caption="../report/replica_comparison.rst",
            labels={
                "figure": "replicas of every policy",
                "quota": "{quota}",
                "policy": "00 all",
            },
        ),
        "cmp_pdf": os.path.join(PLOTS, "replicas_{quota}cpus_all.pdf"),
    }
    for p in config["policies"]:
        if REPORT_MODE and not all(
            os.path.exists(os.path.join(PLOTS, f"slo_timeline_{q}cpus_{p}.png"))
            for q in config["quotas"]
        ):
            continue
        out[f"slo_png_{p}"] = report_file(
            os.path.join(PLOTS, f"slo_timeline_{{quota}}cpus_{p}.png"),
            category="4. Timelines and replicas",
            subcategory="{quota} CPUs",
            caption="../report/slo_timeline.rst",
            labels={
                "figure": "Fig. 2 per-job SLO violation",
                "quota": "{quota}",
                "policy": _policy_label(p),
            },
        )
    return out


def get_matrix_binned(wildcards=None):
    """binned.parquet of the plotted seed's run of every cell (Fig. 4b per job-minute)."""
    return [plotted_run_file(q, p, "binned.parquet") for q, p in get_matrix_keys()]


def get_matrix_job_latency(wildcards=None):
    """job_latency.parquet of the plotted seed's run of every cell, in get_matrix_keys() order."""
    return [plotted_run_file(q, p, "job_latency.parquet") for q, p in get_matrix_keys()]


def get_multi_seed(wildcards=None):
    return len(config["seeds"]) > 1


def get_overview_outputs(wildcards=None):
    """Named outputs of plot_overview: the policy x quota overview, and the per-seed spread
    when the configuration has several seeds."""
    out = {
        "png": report(
            os.path.join(PLOTS, "overview.png"),
            category="1. Overview",
            caption="../report/overview.rst",
            labels={"figure": "overview: SLO%, lost utility, violation"},
        ),
        "pdf": os.path.join(PLOTS, "overview.pdf"),
    }
    if get_multi_seed():
        out["spread_png"] = report(
            os.path.join(PLOTS, "seed_spread.png"),
            category="1. Overview",
            caption="../report/seed_spread.rst",
            labels={"figure": "spread over seeds"},
        )
        out["spread_pdf"] = os.path.join(PLOTS, "seed_spread.pdf")
    return out


def get_fidelity_cells(wildcards=None):
    """(reference, quota, policy) of every published number this configuration can be compared with."""
    from faro.plots.fidelity import applicable_cells, load_references

    return applicable_cells(
        load_references(REFERENCE_FILE),
        experiment=config["experiment"],
        backend=BACKEND,
        quotas=config["quotas"],
        policies=config["policies"],
    )


def _stats_path(path):
    path = str(path)
    return (
        path
        if path.endswith((".parquet", ".csv"))
        else os.path.join(path, "stats.parquet")
    )


def get_other_settings(wildcards=None):
    """Other results roots for the headline (`plots.settings`: name -> root), those that exist."""
    out = {}
    for name, root in (get_plot_config().get("settings") or {}).items():
        if os.path.exists(_stats_path(root)):
            out[str(name)] = _stats_path(root)
    return out


def get_breakdown(wildcards=None):
    """The ablation ladder: `breakdown:` as a list of policies, or {policies, quotas, labels}."""
    b = config.get("breakdown")
    if not b:
        return None
    if isinstance(b, (list, tuple)):
        b = {"policies": list(b)}
    return {
        "policies": [str(p) for p in b["policies"]],
        "quotas": [int(q) for q in b.get("quotas", [32, 36, 40])],
        "labels": {str(k): str(v) for k, v in (b.get("labels") or {}).items()},
    }


def get_breakdown_keys(wildcards=None):
    b = get_breakdown()
    return [(q, p) for q in b["quotas"] for p in b["policies"]] if b else []


def get_breakdown_cells(wildcards=None):
    return [
        os.path.join(CELL.format(quota=q, policy=p), "latency_stats.pkl")
        for q, p in get_breakdown_keys()
    ]


def get_compare(wildcards=None):
    """Table 7's other backend (`plots.compare`: {label, results}); None unless its stats exist."""
    c = get_plot_config().get("compare")
    if not c:
        return None
    path = _stats_path(c["results"])
    return (
        {"label": str(c.get("label", "real")), "path": path}
        if os.path.exists(path)
        else None
    )


def get_scale_out(wildcards=None):
    """Table 8's settings: this root first, then `plots.scale_out` (name -> root) that exist."""
    others = {
        str(n): _stats_path(r)
        for n, r in (get_plot_config().get("scale_out") or {}).items()
    }
    found = {n: p for n, p in others.items() if os.path.exists(p)}
    if not found:
        return None
    return {f"{EXP.n_jobs} jobs": os.path.join(ROOT, "stats.parquet"), **found}


def get_cilantro_files(wildcards=None):
    return [
        f"{DATA}/faro-artifact/{name}"
        for name in sorted(DATASETS["faro-artifact"])
        if name.startswith("cilantro-eks/root--")
    ]


def get_cilantro_run(wildcards=None):
    """(quota, policy) shown beside Cilantro: 32 CPUs (or the nearest quota), Faro-Sum if in the matrix."""
    quota = None
    for q in sorted(int(q) for q in config["quotas"]):
        if quota is None or abs(q - 32) < abs(quota - 32):
            quota = q
    policy = next(
        (p for p in CILANTRO_POLICIES if p in config["policies"]), config["policies"][0]
    )
    return quota, policy


def get_cilantro_binned(wildcards=None):
    q, p = get_cilantro_run()
    return plotted_run_file(q, p, "binned.parquet")


def get_history_file(wildcards=None):
    return f"{DATA}/faro-artifact/{HISTORY_FILE}"


#: CSVs the forecaster scripts write (their default --out for the default results root)
FORECAST_CSVS = {
    "forecasters": ["forecasters*.csv"],
    "selection": ["forecast/selection*.csv"],
}


def get_plot_csvs(kind):
    """The CSVs of scripts/compare_forecasters.py ("forecasters") or select_forecaster.py
    ("selection") found in this results root (sorted; [] when there are none)."""
    import glob

    return sorted(
        f
        for pattern in FORECAST_CSVS[kind]
        for f in glob.glob(os.path.join(ROOT, pattern))
    )


def get_solver_csv(wildcards=None):
    """Fig. 5's CSV: `plots.solver_csv` if given, else the one bench_solver_optimality writes."""
    return get_plot_config().get("solver_csv") or os.path.join(
        ROOT, "bench/solver_optimality.csv"
    )


def _figure(name):
    return expand(f"{PLOTS}/{name}.{{ext}}", ext=FORMATS)


def get_plot_plan(wildcards=None):
    """(targets by figure/table name, [(skipped name, reason)]) for this configuration."""
    made, skipped = {}, []
    quotas, policies = config["quotas"], config["policies"]
    made["headline"] = expand(
        os.path.join(PLOTS, "headline_{quota}cpus.{ext}"), quota=quotas, ext=FORMATS
    )
    made["overview (SLO%, lost utility, violation)"] = _figure("overview")
    if get_multi_seed():
        made["spread over seeds"] = _figure("seed_spread")
    else:
        skipped.append(("spread over seeds", "one seed configured (seeds)"))
    if get_fidelity_cells():
        made["ours vs the paper"] = _figure("fidelity") + expand(
            os.path.join(TABLES, "fidelity.{ext}"), ext=["csv", "md", "tex", "html"]
        )
    else:
        skipped.append(
            (
                "ours vs the paper",
                f"no published number for this experiment/backend/quotas/policies ({REFERENCE_FILE})",
            )
        )
    if get_other_settings():
        made["headline (all settings)"] = _figure("headline_settings")
    wanted = get_plot_config().get("settings") or {}
    for name in wanted:
        if name not in get_other_settings():
            skipped.append(
                (f"headline: {name}", f"no stats table at {_stats_path(wanted[name])}")
            )
    if not wanted:
        skipped.append(
            (
                "headline: mixed / 20 jobs / 100 jobs",
                "no other results roots configured (plots.settings)",
            )
        )
    made["Fig. 1 cluster utility + replicas of every policy"] = expand(
        os.path.join(PLOTS, "{name}.{ext}"),
        name=[
            f"{kind}_{q}cpus{tail}"
            for q in quotas
            for kind, tail in [("cluster_utility", ""), ("replicas", "_all")]
        ],
        ext=FORMATS,
    )
    made["Fig. 2 per-job SLO violation"] = get_cell_figures("slo_timeline", "png")
    made["Fig. 4b, per-job boxes, effective utility, Pareto"] = (
        _figure("utility_vs_slo")
        + _figure("job_boxes")
        + _figure("utility_vs_effective")
        + _figure("pareto")
    )
    made["why: decision records per cell"] = get_cell_figures("why", "png")
    skipped.append(
        (
            "PDFs of the per-cell figures (Fig. 2, why)",
            "drawn on request: snakemake cell_pdfs (all), or one file such as "
            "plots/why_32cpus_faro_sum.pdf",
        )
    )
    made["per-job latency"] = _figure("job_latency")
    made["main matrix table"] = expand(
        os.path.join(TABLES, "main_matrix.{ext}"), ext=["csv", "md", "tex", "html"]
    )
    made["Fig. 4a + Fig. 6 solver model"] = _figure("utility_functions") + _figure(
        "utility_vs_replicas"
    )
    if get_paper_figures():
        made["Fig. 5 solver time vs optimality"] = _figure("solver_optimality")
        made["Fig. 7 hierarchical solving"] = _figure("hierarchical")
        made["Fig. 8 forecast day 11"] = _figure("forecast_day11")
        made["Fig. 11 Faro vs Cilantro"] = _figure("cilantro")
    else:
        for name in ["Fig. 5", "Fig. 7", "Fig. 8", "Fig. 11 (Cilantro)"]:
            skipped.append(
                (
                    name,
                    "paper figures are off for this experiment (plots.paper_figures)",
                )
            )
    for kind, name, script, figure in [
        ("forecasters", "forecaster comparison", "compare_forecasters", "forecasters"),
        (
            "selection",
            "forecaster / quantile selection",
            "select_forecaster",
            "forecast_selection",
        ),
    ]:
        if get_plot_csvs(kind):
            made[name] = _figure(figure)
        else:
            where = " or ".join(os.path.join(ROOT, p) for p in FORECAST_CSVS[kind])
            skipped.append((name, f"no CSV of scripts/{script}.py at {where}"))
    missing = [
        p
        for p in (get_breakdown() or {}).get("policies", [])
        if not os.path.exists(f"{POLICY_DIR}/{p}.yaml")
    ]
    not_run = [f for f in get_breakdown_cells() if not os.path.exists(f)]
    if get_breakdown() and not missing and not not_run:
        made["Fig. 16 ablation"] = _figure("ablation")
    elif missing:
        skipped.append(
            ("Fig. 16 ablation", f"policy files missing: {', '.join(missing)}")
        )
    elif not_run:
        # `plots` never starts simulations: the ladder's cells come from their own target
        skipped.append(
            (
                "Fig. 16 ablation",
                f"{len(not_run)} of its cells have no results yet (run the breakdown cells first)",
            )
        )
    else:
        skipped.append(("Fig. 16 ablation", "no `breakdown` policies configured"))
    if get_compare():
        made["Table 7 + Fig. 13 sim vs real"] = expand(
            os.path.join(TABLES, "sim_vs_real.{ext}"), ext=["csv", "md", "tex", "html"]
        ) + _figure("sim_vs_real")
    else:
        skipped.append(
            (
                "Table 7 + Fig. 13 sim vs real",
                "no other backend's stats table (plots.compare)",
            )
        )
    if get_scale_out():
        made["Table 8 scale-out"] = expand(
            os.path.join(TABLES, "scale_out.{ext}"), ext=["csv", "md", "tex", "html"]
        )
    else:
        skipped.append(
            (
                "Table 8 scale-out",
                "no 20/100-job results roots with stats (plots.scale_out)",
            )
        )
    if REPORT_MODE:
        made, skipped = _existing_only(made, skipped)
    return made, skipped


def _existing_only(made, skipped):
    """For a report: the figures that exist; the others join the skipped list."""
    kept = {}
    for name, files in made.items():
        present = [f for f in files if os.path.exists(f)]
        if present:
            kept[name] = present
        if len(present) < len(files):
            absent = len(files) - len(present)
            skipped.append(
                (
                    name,
                    f"{absent} of its {len(files)} files not built yet (snakemake plots)",
                )
            )
    return kept, skipped


def get_why_policies(wildcards=None):
    """The policies with a why figure (in a --report run, those whose figures all exist)."""
    return [
        p
        for p in config["policies"]
        if not REPORT_MODE
        or all(
            os.path.exists(os.path.join(PLOTS, f"why_{q}cpus_{p}.png"))
            for q in config["quotas"]
        )
    ]


def get_why_outputs(wildcards=None):
    """Named outputs of plot_why (one quota): each policy's why figure (PNG; its PDF on request,
    rule plot_cell_pdf)."""
    out = {}
    for p in get_why_policies():
        out[f"png_{p}"] = report_file(
            os.path.join(PLOTS, f"why_{{quota}}cpus_{p}.png"),
            category="4b. Why (decision records)",
            subcategory="{quota} CPUs",
            caption="../report/why.rst",
            labels={"figure": "why", "quota": "{quota}", "policy": _policy_label(p)},
        )
    return out


#: the per-cell figures: PNG in `all` and the report, PDF on request (rule plot_cell_pdf)
CELL_FIGURES = ("slo_timeline", "why")


def get_cell_figures(kind, ext):
    """Every cell's ``kind`` figure file (one per quota x policy, the plotted seed's run)."""
    return expand(
        os.path.join(PLOTS, "{kind}_{quota}cpus_{policy}.{ext}"),
        kind=kind,
        quota=config["quotas"],
        policy=config["policies"],
        ext=ext,
    )


def get_cell_pdfs(wildcards=None):
    """The PDFs of every per-cell figure (target `cell_pdfs`)."""
    return [f for kind in CELL_FIGURES for f in get_cell_figures(kind, "pdf")]


def get_cell_pdf_inputs(wildcards):
    """The plotted seed's run files a per-cell PDF draws from: binned (+ decisions for why)."""
    q, p = wildcards.quota, wildcards.policy
    files = {"binned": plotted_run_file(q, p, "binned.parquet")}
    if wildcards.kind == "why":
        files["decisions"] = plotted_run_file(q, p, "decisions.parquet")
    return files


def _why_inputs(wildcards, name):
    return [plotted_run_file(wildcards.quota, p, name) for p in get_why_policies()]


def get_why_decisions(wildcards):
    """The decision records of the plotted seed's run of each policy at the quota."""
    return _why_inputs(wildcards, "decisions.parquet")


def get_why_binned(wildcards):
    return _why_inputs(wildcards, "binned.parquet")


def get_ablation_plot(wildcards=None):
    """The ablation figure's files (for a `breakdown` target that runs its cells first)."""
    return _figure("ablation") if get_breakdown() else []


def get_plot_targets(wildcards=None):
    """Every figure and table of this configuration plus the report note."""
    made, _ = get_plot_plan()
    return [f for files in made.values() for f in files] + [
        os.path.join(PLOTS, "skipped.html")
    ]


def get_plots(wildcards=None):
    """Every figure and table of `all` and `plots`."""
    return get_plot_targets()


if REPORT_MODE:
    # the report's front page (report/workflow.rst) lists what this report leaves out, and why
    config["report_skipped"] = [f"{n}: {why}" for n, why in get_plot_plan()[1]]
    print(
        f"faro: report of the figures that exist; {len(config['report_skipped'])} "
        "figure group(s) listed as skipped on its front page",
        file=sys.stderr,
    )
