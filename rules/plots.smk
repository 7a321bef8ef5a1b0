# Figures and tables (through report()) and the `plots` target, which redoes only figures
# and tables from existing results. A figure whose inputs are neither configured nor
# available is left out of the DAG and listed, with the reason, in plots/skipped.html.
import os
import sys

from faro.data import DATASETS, HISTORY_FILE


# ---------------------------------------------------------------- input functions
# (to move to rules/common.smk)

PLOTS = ROOT + "/plots"
TABLES = ROOT + "/tables"
FORMATS = ["png", "pdf"]
#: our policy shown beside Cilantro, in order of preference (the first one in the matrix)
CILANTRO_POLICIES = ["faro_sum", "faro_fair_sum", "faro_fair", "faro_penalty_sum",
                     "faro_penalty_fair_sum", "mark", "aiad", "oneshot", "fairshare"]


def get_plot_config(wildcards=None):
    """The optional `plots:` config section (see report/README.md for its keys)."""
    return config.get("plots") or {}


def get_paper_figures(wildcards=None):
    """Model, solver, forecast and Cilantro figures: on by default for the artifact's trace."""
    default = EXP.trace_spec.get("dataset") == "faro-artifact"
    return bool(get_plot_config().get("paper_figures", default))


def get_plot_seed(wildcards=None):
    """The seed whose runs the timelines show (42, the paper's, when configured)."""
    seeds = [int(s) for s in config["seeds"]]
    return 42 if 42 in seeds else seeds[0]


def get_job_slos(wildcards=None):
    return {j: float(m.slo_ms) for j, m in zip(EXP.jobs, EXP.job_models)}


def get_job_proc(wildcards=None):
    """Processing time (s) per job: turns input rates into offered load in CPUs."""
    return {j: m.processing_ms / 1000.0 for j, m in zip(EXP.jobs, EXP.job_models)}


def get_model_job(wildcards=None):
    """Processing time and SLO (s) of the experiment's first job, for the model figures."""
    m = EXP.job_models[0]
    return {"proc_s": m.processing_ms / 1000.0, "slo_s": m.slo_ms / 1000.0}


def get_binned(wildcards):
    return RUN.format(quota=wildcards.quota, policy=wildcards.policy, seed=get_plot_seed()) + "/binned.parquet"


def get_plot_replicas(wildcards):
    return RUN.format(quota=wildcards.quota, policy=wildcards.policy, seed=get_plot_seed()) + "/replicas.parquet"


def get_quota_binned(wildcards):
    return [RUN.format(quota=wildcards.quota, policy=p, seed=get_plot_seed()) + "/binned.parquet"
            for p in config["policies"]]


def get_matrix_keys(wildcards=None):
    return [(int(q), p) for q in config["quotas"] for p in config["policies"]]


def get_matrix_cells(wildcards=None):
    return [CELL.format(quota=q, policy=p) + "/latency_stats.pkl" for q, p in get_matrix_keys()]


def _stats_path(path):
    path = str(path)
    return path if path.endswith((".parquet", ".csv")) else path.rstrip("/") + "/stats.parquet"


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
    return [CELL.format(quota=q, policy=p) + "/latency_stats.pkl" for q, p in get_breakdown_keys()]


def get_compare(wildcards=None):
    """Table 7's other backend (`plots.compare`: {label, results}); None unless its stats exist."""
    c = get_plot_config().get("compare")
    if not c:
        return None
    path = _stats_path(c["results"])
    return {"label": str(c.get("label", "real")), "path": path} if os.path.exists(path) else None


def get_scale_out(wildcards=None):
    """Table 8's settings: this root first, then `plots.scale_out` (name -> root) that exist."""
    others = {str(n): _stats_path(r) for n, r in (get_plot_config().get("scale_out") or {}).items()}
    found = {n: p for n, p in others.items() if os.path.exists(p)}
    if not found:
        return None
    return {f"{EXP.n_jobs} jobs": ROOT + "/stats.parquet", **found}


def get_cilantro_files(wildcards=None):
    return [f"{DATA}/faro-artifact/{name}" for name in sorted(DATASETS["faro-artifact"])
            if name.startswith("cilantro-eks/root--")]


def get_cilantro_run(wildcards=None):
    """(quota, policy) shown beside Cilantro: 32 CPUs (or the nearest quota), Faro-Sum if in the matrix."""
    quota = None
    for q in sorted(int(q) for q in config["quotas"]):
        if quota is None or abs(q - 32) < abs(quota - 32):
            quota = q
    policy = next((p for p in CILANTRO_POLICIES if p in config["policies"]), config["policies"][0])
    return quota, policy


def get_cilantro_binned(wildcards=None):
    q, p = get_cilantro_run()
    return RUN.format(quota=q, policy=p, seed=get_plot_seed()) + "/binned.parquet"


def get_history_file(wildcards=None):
    return f"{DATA}/faro-artifact/{HISTORY_FILE}"


def get_solver_csv(wildcards=None):
    """Fig. 5's CSV: `plots.solver_csv` if given, else the one bench_solver_optimality writes."""
    return get_plot_config().get("solver_csv") or ROOT + "/bench/solver_optimality.csv"


def _figure(name):
    return expand(f"{PLOTS}/{name}.{{ext}}", ext=FORMATS)


def get_plot_plan(wildcards=None):
    """(targets by figure/table name, [(skipped name, reason)]) for this configuration."""
    made, skipped = {}, []
    quotas, policies = config["quotas"], config["policies"]
    made["headline"] = expand(PLOTS + "/headline_{quota}cpus.{ext}", quota=quotas, ext=FORMATS)
    made["headline (all settings)"] = _figure("headline_settings")
    wanted = (get_plot_config().get("settings") or {})
    for name in wanted:
        if name not in get_other_settings():
            skipped.append((f"headline: {name}", f"no stats table at {_stats_path(wanted[name])}"))
    if not wanted:
        skipped.append(("headline: mixed / 20 jobs / 100 jobs", "no other results roots configured (plots.settings)"))
    made["Fig. 1 cluster utility"] = expand(PLOTS + "/cluster_utility_{quota}cpus.{ext}", quota=quotas, ext=FORMATS)
    made["Fig. 2 per-job SLO violation + replica timelines"] = expand(
        PLOTS + "/{kind}_{quota}cpus_{policy}.{ext}", kind=["slo_timeline", "replicas"], quota=quotas,
        policy=policies, ext=FORMATS)
    made["Fig. 4b, per-job boxes, effective utility, Pareto"] = (
        _figure("utility_vs_slo") + _figure("job_boxes") + _figure("utility_vs_effective") + _figure("pareto"))
    made["main matrix table"] = expand(TABLES + "/main_matrix.{ext}", ext=["csv", "md", "tex", "html"])
    made["Fig. 4a + Fig. 6 solver model"] = _figure("utility_functions") + _figure("utility_vs_replicas")
    if get_paper_figures():
        made["Fig. 5 solver time vs optimality"] = _figure("solver_optimality")
        made["Fig. 7 hierarchical solving"] = _figure("hierarchical")
        made["Fig. 8 forecast day 11"] = _figure("forecast_day11")
        made["Fig. 11 Faro vs Cilantro"] = _figure("cilantro")
    else:
        for name in ["Fig. 5", "Fig. 7", "Fig. 8", "Fig. 11 (Cilantro)"]:
            skipped.append((name, "paper figures are off for this experiment (plots.paper_figures)"))
    missing = [p for p in (get_breakdown() or {}).get("policies", [])
               if not os.path.exists(f"{POLICY_DIR}/{p}.yaml")]
    if get_breakdown() and not missing:
        made["Fig. 16 ablation"] = _figure("ablation")
    elif missing:
        skipped.append(("Fig. 16 ablation", f"policy files missing: {', '.join(missing)}"))
    else:
        skipped.append(("Fig. 16 ablation", "no `breakdown` policies configured"))
    if get_compare():
        made["Table 7 sim vs real"] = expand(TABLES + "/sim_vs_real.{ext}", ext=["csv", "md", "tex", "html"])
    else:
        skipped.append(("Table 7 sim vs real", "no other backend's stats table (plots.compare)"))
    if get_scale_out():
        made["Table 8 scale-out"] = expand(TABLES + "/scale_out.{ext}", ext=["csv", "md", "tex", "html"])
    else:
        skipped.append(("Table 8 scale-out", "no 20/100-job results roots with stats (plots.scale_out)"))
    return made, skipped


def get_plot_targets(wildcards=None):
    """Every figure and table of this configuration plus the report note."""
    made, _ = get_plot_plan()
    return [f for files in made.values() for f in files] + [PLOTS + "/skipped.html"]


# a data set is one folder level: cilantro-eks/<file> is a file of the faro-artifact data set
wildcard_constraints:
    dataset=r"[^/]+",


# ---------------------------------------------------------------- report

report: "../report/workflow.rst"


# ---------------------------------------------------------------- per run, per cell, per quota


rule bin_run:
    # per-job, per-minute SLO fraction and utilities of one run (the timelines' input)
    input:
        requests=RUN + "/requests.parquet",
        trace=get_trace,
        code=code_files("stats.py", "schema.py", "plots/data.py"),
    output:
        RUN + "/binned.parquet",
    params:
        jobs=list(EXP.jobs),
        slo_ms=get_job_slos(),
        unit_time=UNIT_TIME,
    log:
        RUN + "/logs/binned.log",
    script:
        "../scripts/plot_bin_run.py"


rule plot_headline:
    input:
        cells=get_quota_cells,
        code=code_files("plots"),
    output:
        png=report(
            PLOTS + "/headline_{quota}cpus.png",
            category="1. Headline",
            subcategory="{quota} CPUs",
            caption="../report/headline.rst",
            labels={"figure": "headline", "quota": "{quota}"},
        ),
        pdf=PLOTS + "/headline_{quota}cpus.pdf",
    params:
        policies=config["policies"],
        quota="{quota}",
    log:
        ROOT + "/logs/plots/headline_{quota}cpus.log",
    script:
        "../scripts/plot_headline.py"


rule plot_headline_settings:
    input:
        cells=get_matrix_cells(),
        others=list(get_other_settings().values()),
        code=code_files("plots"),
    output:
        png=report(
            PLOTS + "/headline_settings.png",
            category="1. Headline",
            subcategory="all settings",
            caption="../report/headline_settings.rst",
            labels={"figure": "headline, all settings", "quota": "all"},
        ),
        pdf=PLOTS + "/headline_settings.pdf",
    params:
        cells_keys=get_matrix_keys(),
        title=f"{EXP.n_jobs} jobs",
        other_names=list(get_other_settings()),
    log:
        ROOT + "/logs/plots/headline_settings.log",
    script:
        "../scripts/plot_headline_settings.py"


rule plot_cluster_utility:
    input:
        binned=get_quota_binned,
        code=code_files("plots"),
    output:
        png=report(
            PLOTS + "/cluster_utility_{quota}cpus.png",
            category="2. Timelines",
            subcategory="{quota} CPUs",
            caption="../report/cluster_utility.rst",
            labels={"figure": "Fig. 1 cluster utility", "quota": "{quota}", "policy": "all"},
        ),
        pdf=PLOTS + "/cluster_utility_{quota}cpus.pdf",
    params:
        policies=config["policies"],
        jobs=list(EXP.jobs),
        quota="{quota}",
        seed=get_plot_seed(),
        backend=BACKEND,
        window=5,
    log:
        ROOT + "/logs/plots/cluster_utility_{quota}cpus.log",
    script:
        "../scripts/plot_cluster_utility.py"


rule plot_cell_timelines:
    input:
        binned=get_binned,
        replicas=get_plot_replicas,
        code=code_files("plots"),
    output:
        slo_png=report(
            PLOTS + "/slo_timeline_{quota}cpus_{policy}.png",
            category="2. Timelines",
            subcategory="{quota} CPUs",
            caption="../report/slo_timeline.rst",
            labels={"figure": "Fig. 2 per-job SLO violation", "quota": "{quota}", "policy": "{policy}"},
        ),
        slo_pdf=PLOTS + "/slo_timeline_{quota}cpus_{policy}.pdf",
        rep_png=report(
            PLOTS + "/replicas_{quota}cpus_{policy}.png",
            category="3. Replicas",
            subcategory="{quota} CPUs",
            caption="../report/replicas.rst",
            labels={"figure": "replica timeline", "quota": "{quota}", "policy": "{policy}"},
        ),
        rep_pdf=PLOTS + "/replicas_{quota}cpus_{policy}.pdf",
    params:
        jobs=list(EXP.jobs),
        quota="{quota}",
        policy="{policy}",
        seed=get_plot_seed(),
        backend=BACKEND,
        unit_time=UNIT_TIME,
        proc_s=get_job_proc(),
    log:
        ROOT + "/logs/plots/timelines_{quota}cpus_{policy}.log",
    script:
        "../scripts/plot_cell_timelines.py"


# ---------------------------------------------------------------- whole matrix


rule plot_summary:
    input:
        table=ROOT + "/stats.parquet",
        code=code_files("plots"),
    output:
        scatter_png=report(PLOTS + "/utility_vs_slo.png", category="4. Matrix", caption="../report/utility_vs_slo.rst",
                           labels={"figure": "Fig. 4b utility vs SLO satisfaction"}),
        scatter_pdf=PLOTS + "/utility_vs_slo.pdf",
        boxes_png=report(PLOTS + "/job_boxes.png", category="4. Matrix", caption="../report/job_boxes.rst",
                         labels={"figure": "per-job box plots"}),
        boxes_pdf=PLOTS + "/job_boxes.pdf",
        effective_png=report(PLOTS + "/utility_vs_effective.png", category="4. Matrix",
                             caption="../report/utility_vs_effective.rst",
                             labels={"figure": "utility vs effective utility"}),
        effective_pdf=PLOTS + "/utility_vs_effective.pdf",
        pareto_png=report(PLOTS + "/pareto.png", category="4. Matrix", caption="../report/pareto.rst",
                          labels={"figure": "utility vs cluster size (Pareto)"}),
        pareto_pdf=PLOTS + "/pareto.pdf",
    params:
        policies=config["policies"],
        quotas=config["quotas"],
    log:
        ROOT + "/logs/plots/summary.log",
    script:
        "../scripts/plot_summary.py"


rule table_main:
    input:
        table=ROOT + "/stats.parquet",
        code=code_files("plots"),
    output:
        csv=TABLES + "/main_matrix.csv",
        md=TABLES + "/main_matrix.md",
        tex=TABLES + "/main_matrix.tex",
        html=report(TABLES + "/main_matrix.html", category="8. Tables", caption="../report/table_main.rst",
                    labels={"table": "main matrix"}),
    params:
        policies=config["policies"],
        quotas=config["quotas"],
        backend=BACKEND,
    log:
        ROOT + "/logs/tables/main_matrix.log",
    script:
        "../scripts/table_main.py"


rule plot_ablation:
    input:
        cells=get_breakdown_cells(),
        code=code_files("plots"),
    output:
        png=report(PLOTS + "/ablation.png", category="7. Comparisons", caption="../report/ablation.rst",
                   labels={"figure": "Fig. 16 ablation"}),
        pdf=PLOTS + "/ablation.pdf",
    params:
        cells_keys=get_breakdown_keys(),
        steps=(get_breakdown() or {}).get("policies", []),
        labels=(get_breakdown() or {}).get("labels", {}),
    log:
        ROOT + "/logs/plots/ablation.log",
    script:
        "../scripts/plot_ablation.py"


# ---------------------------------------------------------------- model, solver, forecast


rule plot_model:
    input:
        code=code_files("plots", "solver/latency.py", "solver/utility.py"),
    output:
        util_png=report(PLOTS + "/utility_functions.png", category="5. Model and solver",
                        caption="../report/utility_functions.rst", labels={"figure": "Fig. 4a utility functions"}),
        util_pdf=PLOTS + "/utility_functions.pdf",
        rep_png=report(PLOTS + "/utility_vs_replicas.png", category="5. Model and solver",
                       caption="../report/utility_vs_replicas.rst", labels={"figure": "Fig. 6 utility vs replicas"}),
        rep_pdf=PLOTS + "/utility_vs_replicas.pdf",
    params:
        rate=20.0,
        caps=[0.8, 0.9, 0.95, 0.99],
        proc_s=get_model_job()["proc_s"],
        slo_s=get_model_job()["slo_s"],
    log:
        ROOT + "/logs/plots/model.log",
    script:
        "../scripts/plot_model.py"


rule bench_hierarchical:
    # Fig. 7's data: flat vs hierarchical decisions (compute, kept apart from the plot)
    input:
        trace=get_trace,
        code=code_files("solver", "plots/solver.py"),
    output:
        ROOT + "/bench/hierarchical.csv",
    params:
        job_counts=[10, 20, 50, 100],
        groups=[1, 3, 5, 10],
        starts=[60, 180, 300],
        cpus_per_job=3.2,
        proc_s=get_model_job()["proc_s"],
        slo_s=get_model_job()["slo_s"],
    log:
        ROOT + "/logs/bench/hierarchical.log",
    benchmark:
        ROOT + "/benchmarks/bench_hierarchical.tsv"
    script:
        "../scripts/plot_bench_hierarchical.py"


rule plot_hierarchical:
    input:
        csv=ROOT + "/bench/hierarchical.csv",
        code=code_files("plots"),
    output:
        png=report(PLOTS + "/hierarchical.png", category="5. Model and solver", caption="../report/hierarchical.rst",
                   labels={"figure": "Fig. 7 hierarchical solving"}),
        pdf=PLOTS + "/hierarchical.pdf",
    log:
        ROOT + "/logs/plots/hierarchical.log",
    script:
        "../scripts/plot_hierarchical.py"


rule bench_solver_optimality:
    # Fig. 5's data, unless plots.solver_csv names an existing CSV: the solver benchmark's
    # optimality study (scripts/bench_solver.py), every 30 trace minutes (~15 s)
    input:
        trace=get_trace,
        script="scripts/bench_solver.py",
        code=code_files("solver"),
    output:
        ROOT + "/bench/solver_optimality.csv",
    params:
        python=sys.executable,
    log:
        ROOT + "/logs/bench/solver_optimality.log",
    benchmark:
        ROOT + "/benchmarks/bench_solver_optimality.tsv"
    shell:
        "PYTHONPATH=workflow {params.python} {input.script} --trace {input.trace} --out {output}"
        " --skip-large --every 30 > {log} 2>&1"


rule plot_solver_optimality:
    input:
        csv=get_solver_csv(),
        code=code_files("plots"),
    output:
        png=report(PLOTS + "/solver_optimality.png", category="5. Model and solver",
                   caption="../report/solver_optimality.rst", labels={"figure": "Fig. 5 solver time vs optimality"}),
        pdf=PLOTS + "/solver_optimality.pdf",
    log:
        ROOT + "/logs/plots/solver_optimality.log",
    script:
        "../scripts/plot_solver_optimality.py"


rule forecast_day11:
    # Fig. 8's data: the forecaster trained on days 1-10, rolling over day 11 (compute)
    input:
        history=get_history_file(),
        code=code_files("forecast", "plots/forecast.py"),
    output:
        ROOT + "/bench/forecast_day11.csv",
    params:
        job=get_plot_config().get("forecast_job", 0),
        forecaster=get_plot_config().get("forecaster", "default"),
    log:
        ROOT + "/logs/bench/forecast_day11.log",
    script:
        "../scripts/plot_forecast_day11.py"


rule plot_forecast:
    input:
        csv=ROOT + "/bench/forecast_day11.csv",
        code=code_files("plots"),
    output:
        png=report(PLOTS + "/forecast_day11.png", category="6. Forecast", caption="../report/forecast.rst",
                   labels={"figure": "Fig. 8 forecast vs truth"}),
        pdf=PLOTS + "/forecast_day11.pdf",
    params:
        job=get_plot_config().get("forecast_job", 0),
        forecaster=get_plot_config().get("forecaster", "default"),
    log:
        ROOT + "/logs/plots/forecast_day11.log",
    script:
        "../scripts/plot_forecast.py"


rule plot_cilantro:
    input:
        cilantro=get_cilantro_files(),
        binned=get_cilantro_binned(),
        code=code_files("plots"),
    output:
        png=report(PLOTS + "/cilantro.png", category="7. Comparisons", caption="../report/cilantro.rst",
                   labels={"figure": "Fig. 11 Faro vs Cilantro"}),
        pdf=PLOTS + "/cilantro.pdf",
    params:
        quota=get_cilantro_run()[0],
        policy=get_cilantro_run()[1],
        backend=BACKEND,
    log:
        ROOT + "/logs/plots/cilantro.log",
    script:
        "../scripts/plot_cilantro.py"


# ---------------------------------------------------------------- tables across results roots


rule table_sim_vs_real:
    input:
        this=ROOT + "/stats.parquet",
        other=(get_compare() or {}).get("path", []),
        code=code_files("plots"),
    output:
        csv=TABLES + "/sim_vs_real.csv",
        summary=TABLES + "/sim_vs_real_summary.csv",
        md=TABLES + "/sim_vs_real.md",
        tex=TABLES + "/sim_vs_real.tex",
        html=report(TABLES + "/sim_vs_real.html", category="8. Tables", caption="../report/table_sim_vs_real.rst",
                    labels={"table": "Table 7 sim vs real"}),
    params:
        this_label=BACKEND,
        other_label=(get_compare() or {}).get("label", "real"),
    log:
        ROOT + "/logs/tables/sim_vs_real.log",
    script:
        "../scripts/table_sim_vs_real.py"


rule table_scale_out:
    input:
        tables=list((get_scale_out() or {}).values()),
        code=code_files("plots"),
    output:
        csv=TABLES + "/scale_out.csv",
        md=TABLES + "/scale_out.md",
        tex=TABLES + "/scale_out.tex",
        html=report(TABLES + "/scale_out.html", category="8. Tables", caption="../report/table_scale_out.rst",
                    labels={"table": "Table 8 scale-out"}),
    params:
        names=list(get_scale_out() or {}),
    log:
        ROOT + "/logs/tables/scale_out.log",
    script:
        "../scripts/table_scale_out.py"


rule plots_note:
    output:
        report(PLOTS + "/skipped.html", category="9. Notes", caption="../report/skipped.rst",
               labels={"note": "figures made and skipped"}),
    params:
        made=list(get_plot_plan()[0]),
        skipped=get_plot_plan()[1],
    log:
        ROOT + "/logs/plots/skipped.log",
    script:
        "../scripts/plot_note.py"


rule plots:
    input:
        get_plot_targets(),
