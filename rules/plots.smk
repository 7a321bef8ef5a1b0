# Figures and tables (through report()) and the `plots` target, which redoes only figures
# and tables from existing results. A figure whose inputs are neither configured nor
# available is left out of the DAG and listed, with the reason, in plots/skipped.html.


# ---------------------------------------------------------------- per run, per cell, per quota


rule plot_headline:
    input:
        table=os.path.join(ROOT, "stats.parquet"),
        code=get_rule_code("plot_headline"),
    output:
        png=report(
            os.path.join(PLOTS, "headline_{quota}cpus.png"),
            category="3. Headline",
            subcategory="{quota} CPUs",
            caption="../report/headline.rst",
            labels={
                "figure": "headline (lost utility, violation, SLO%)",
                "quota": "{quota}",
            },
        ),
        pdf=os.path.join(PLOTS, "headline_{quota}cpus.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/headline_{quota}cpus.log"),
    conda:
        "../envs/plots.yaml"
    params:
        policies=config["policies"],
        quota="{quota}",
        backend=BACKEND,
    script:
        "../scripts/rule.py"


rule plot_headline_settings:
    input:
        table=os.path.join(ROOT, "stats.parquet"),
        others=list(get_other_settings().values()),
        code=get_rule_code("plot_headline_settings"),
    output:
        png=report(
            os.path.join(PLOTS, "headline_settings.png"),
            category="3. Headline",
            subcategory="all settings",
            caption="../report/headline_settings.rst",
            labels={"figure": "headline, all settings", "quota": "all"},
        ),
        pdf=os.path.join(PLOTS, "headline_settings.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/headline_settings.log"),
    conda:
        "../envs/plots.yaml"
    params:
        policies=config["policies"],
        title=f"{EXP.n_jobs} jobs",
        other_names=list(get_other_settings()),
    script:
        "../scripts/rule.py"


rule plot_quota_timelines:
    # Fig. 1 and the replicas of every policy of the quota, and Fig. 2 per policy (one job per quota)
    input:
        binned=get_quota_binned,
        replicas=get_quota_replicas,
        code=get_rule_code("plot_quota_timelines"),
    output:
        **get_quota_timeline_outputs(),
    log:
        os.path.join(ROOT, "logs/plots/timelines_{quota}cpus.log"),
    conda:
        "../envs/plots.yaml"
    params:
        policies=config["policies"],
        jobs=list(EXP.jobs),
        quota="{quota}",
        seed=get_plot_seed(),
        backend=BACKEND,
        unit_time=UNIT_TIME,
        proc_s=get_job_proc(),
        window=5,
    script:
        "../scripts/rule.py"


rule plot_cell_pdf:
    # one per-cell figure (Fig. 2 or why) as a vector PDF, on request: `all` and the report
    # use the PNGs (plot_quota_timelines, plot_why); `snakemake cell_pdfs` draws every one
    input:
        unpack(get_cell_pdf_inputs),
        code=get_rule_code("plot_cell_pdf"),
    output:
        pdf=os.path.join(PLOTS, "{kind}_{quota}cpus_{policy}.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/{kind}_{quota}cpus_{policy}.pdf.log"),
    wildcard_constraints:
        kind="|".join(CELL_FIGURES),
    conda:
        "../envs/plots.yaml"
    params:
        kind="{kind}",
        policy="{policy}",
        quota="{quota}",
        seed=get_plot_seed(),
        backend=BACKEND,
        unit_time=UNIT_TIME,
        jobs=list(EXP.jobs),
    script:
        "../scripts/rule.py"


rule cell_pdfs:
    # every per-cell figure as PDF (not part of `all`)
    input:
        get_cell_pdfs(),


# ---------------------------------------------------------------- whole matrix


rule plot_overview:
    # one view of the whole matrix (and, with several seeds, the spread over seeds)
    input:
        table=os.path.join(ROOT, "stats.parquet"),
        code=get_rule_code("plot_overview"),
    output:
        **get_overview_outputs(),
    log:
        os.path.join(ROOT, "logs/plots/overview.log"),
    conda:
        "../envs/plots.yaml"
    params:
        policies=config["policies"],
        quotas=config["quotas"],
    script:
        "../scripts/rule.py"


rule table_fidelity:
    # ours vs the paper's published numbers (config/reference/paper_numbers.yaml)
    input:
        table=os.path.join(ROOT, "stats.parquet"),
        reference=REFERENCE_FILE,
        code=get_rule_code("table_fidelity"),
    output:
        csv=report(
            os.path.join(TABLES, "fidelity.csv"),
            category="2. Ours vs the paper",
            caption="../report/table_fidelity.rst",
            labels={"table": "ours vs the paper (CSV)"},
        ),
        md=os.path.join(TABLES, "fidelity.md"),
        tex=os.path.join(TABLES, "fidelity.tex"),
        html=report(
            os.path.join(TABLES, "fidelity.html"),
            category="2. Ours vs the paper",
            caption="../report/table_fidelity.rst",
            labels={"table": "ours vs the paper"},
        ),
        png=report(
            os.path.join(PLOTS, "fidelity.png"),
            category="2. Ours vs the paper",
            caption="../report/fidelity.rst",
            labels={"table": "ours vs the paper (figure)"},
        ),
        pdf=os.path.join(PLOTS, "fidelity.pdf"),
    log:
        os.path.join(ROOT, "logs/tables/fidelity.log"),
    conda:
        "../envs/plots.yaml"
    params:
        experiment=config["experiment"],
        backend=BACKEND,
    script:
        "../scripts/rule.py"


rule plot_job_latency:
    # per-job latency of every policy (one seed), one panel per quota
    input:
        latency=get_matrix_job_latency(),
        code=get_rule_code("plot_job_latency"),
    output:
        png=report(
            os.path.join(PLOTS, "job_latency.png"),
            category="5. Matrix",
            caption="../report/job_latency.rst",
            labels={"figure": "per-job latency"},
        ),
        pdf=os.path.join(PLOTS, "job_latency.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/job_latency.log"),
    conda:
        "../envs/plots.yaml"
    params:
        cells_keys=get_matrix_keys(),
        jobs=list(EXP.jobs),
        slo_ms=get_job_slos(),
    script:
        "../scripts/rule.py"


rule plot_summary:
    input:
        table=os.path.join(ROOT, "stats.parquet"),
        binned=get_matrix_binned(),
        code=get_rule_code("plot_summary"),
    output:
        scatter_png=report(
            os.path.join(PLOTS, "utility_vs_slo.png"),
            category="5. Matrix",
            caption="../report/utility_vs_slo.rst",
            labels={"figure": "Fig. 4b utility vs SLO satisfaction"},
        ),
        scatter_pdf=os.path.join(PLOTS, "utility_vs_slo.pdf"),
        boxes_png=report(
            os.path.join(PLOTS, "job_boxes.png"),
            category="5. Matrix",
            caption="../report/job_boxes.rst",
            labels={"figure": "per-job box plots"},
        ),
        boxes_pdf=os.path.join(PLOTS, "job_boxes.pdf"),
        effective_png=report(
            os.path.join(PLOTS, "utility_vs_effective.png"),
            category="5. Matrix",
            caption="../report/utility_vs_effective.rst",
            labels={"figure": "utility vs effective utility"},
        ),
        effective_pdf=os.path.join(PLOTS, "utility_vs_effective.pdf"),
        pareto_png=report(
            os.path.join(PLOTS, "pareto.png"),
            category="5. Matrix",
            caption="../report/pareto.rst",
            labels={"figure": "utility vs cluster size (Pareto)"},
        ),
        pareto_pdf=os.path.join(PLOTS, "pareto.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/summary.log"),
    conda:
        "../envs/plots.yaml"
    params:
        policies=config["policies"],
        quotas=config["quotas"],
    script:
        "../scripts/rule.py"


rule table_main:
    input:
        table=os.path.join(ROOT, "stats.parquet"),
        code=get_rule_code("table_main"),
    output:
        csv=report(
            os.path.join(TABLES, "main_matrix.csv"),
            category="8. Tables",
            caption="../report/table_main.rst",
            labels={"table": "main matrix (CSV)"},
        ),
        md=os.path.join(TABLES, "main_matrix.md"),
        tex=os.path.join(TABLES, "main_matrix.tex"),
        html=report(
            os.path.join(TABLES, "main_matrix.html"),
            category="8. Tables",
            caption="../report/table_main.rst",
            labels={"table": "main matrix"},
        ),
    log:
        os.path.join(ROOT, "logs/tables/main_matrix.log"),
    conda:
        "../envs/plots.yaml"
    params:
        policies=config["policies"],
        quotas=config["quotas"],
        backend=BACKEND,
    script:
        "../scripts/rule.py"


rule plot_ablation:
    input:
        cells=get_breakdown_cells(),
        code=get_rule_code("plot_ablation"),
    output:
        png=report(
            os.path.join(PLOTS, "ablation.png"),
            category="7. Comparisons",
            caption="../report/ablation.rst",
            labels={"figure": "Fig. 16 ablation"},
        ),
        pdf=os.path.join(PLOTS, "ablation.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/ablation.log"),
    conda:
        "../envs/plots.yaml"
    params:
        cells_keys=get_breakdown_keys(),
        steps=(get_breakdown() or {}).get("policies", []),
        labels=(get_breakdown() or {}).get("labels", {}),
    script:
        "../scripts/rule.py"


# ---------------------------------------------------------------- model, solver, forecast


rule plot_model:
    input:
        code=get_rule_code("plot_model"),
    output:
        util_png=report(
            os.path.join(PLOTS, "utility_functions.png"),
            category="6. Model, solver, forecast",
            caption="../report/utility_functions.rst",
            labels={"figure": "Fig. 4a utility functions"},
        ),
        util_pdf=os.path.join(PLOTS, "utility_functions.pdf"),
        rep_png=report(
            os.path.join(PLOTS, "utility_vs_replicas.png"),
            category="6. Model, solver, forecast",
            caption="../report/utility_vs_replicas.rst",
            labels={"figure": "Fig. 6 utility vs replicas"},
        ),
        rep_pdf=os.path.join(PLOTS, "utility_vs_replicas.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/model.log"),
    conda:
        "../envs/plots.yaml"
    params:
        rate=20.0,
        caps=[0.8, 0.9, 0.95, 0.99],
        proc_s=get_model_job()["proc_s"],
        slo_s=get_model_job()["slo_s"],
    script:
        "../scripts/rule.py"


rule bench_hierarchical:
    # Fig. 7's data: flat vs hierarchical decisions (compute, kept apart from the plot)
    input:
        trace=get_trace,
        code=get_rule_code("bench_hierarchical"),
    output:
        os.path.join(ROOT, "bench/hierarchical.csv"),
    log:
        os.path.join(ROOT, "logs/bench/hierarchical.log"),
    benchmark:
        os.path.join(ROOT, "benchmarks/bench_hierarchical.tsv")
    conda:
        "../envs/plots.yaml"
    params:
        job_counts=[10, 20, 50, 100],
        groups=[1, 3, 5, 10],
        starts=[60, 180, 300],
        cpus_per_job=3.2,
        proc_s=get_model_job()["proc_s"],
        slo_s=get_model_job()["slo_s"],
    script:
        "../scripts/rule.py"


rule plot_hierarchical:
    input:
        csv=os.path.join(ROOT, "bench/hierarchical.csv"),
        code=get_rule_code("plot_hierarchical"),
    output:
        png=report(
            os.path.join(PLOTS, "hierarchical.png"),
            category="6. Model, solver, forecast",
            caption="../report/hierarchical.rst",
            labels={"figure": "Fig. 7 hierarchical solving"},
        ),
        pdf=os.path.join(PLOTS, "hierarchical.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/hierarchical.log"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/rule.py"


rule bench_solver_optimality:
    # Fig. 5's data, unless plots.solver_csv names an existing CSV: the optimality study of
    # scripts/bench_solver.py, decisions every 30 trace minutes (~15 s)
    input:
        trace=get_trace,
        script="scripts/bench_solver.py",
        code=get_rule_code("bench_solver_optimality"),
    output:
        os.path.join(ROOT, "bench/solver_optimality.csv"),
    log:
        os.path.join(ROOT, "logs/bench/solver_optimality.log"),
    benchmark:
        os.path.join(ROOT, "benchmarks/bench_solver_optimality.tsv")
    conda:
        "../envs/plots.yaml"
    params:
        every=30,
    script:
        "../scripts/rule.py"


rule plot_solver_optimality:
    input:
        csv=get_solver_csv(),
        code=get_rule_code("plot_solver_optimality"),
    output:
        png=report(
            os.path.join(PLOTS, "solver_optimality.png"),
            category="6. Model, solver, forecast",
            caption="../report/solver_optimality.rst",
            labels={"figure": "Fig. 5 solver time vs optimality"},
        ),
        pdf=os.path.join(PLOTS, "solver_optimality.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/solver_optimality.log"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/rule.py"


rule forecast_day11:
    # Fig. 8's data: the forecaster trained on days 1-10, rolling over day 11 (compute)
    input:
        history=get_history_file(),
        code=get_rule_code("forecast_day11"),
    output:
        os.path.join(ROOT, "bench/forecast_day11.csv"),
    log:
        os.path.join(ROOT, "logs/bench/forecast_day11.log"),
    conda:
        "../envs/plots.yaml"
    params:
        job=get_plot_config().get("forecast_job", 0),
        forecaster=get_plot_config().get("forecaster", "default"),
    script:
        "../scripts/rule.py"


rule plot_forecast:
    input:
        csv=os.path.join(ROOT, "bench/forecast_day11.csv"),
        code=get_rule_code("plot_forecast"),
    output:
        png=report(
            os.path.join(PLOTS, "forecast_day11.png"),
            category="6. Model, solver, forecast",
            caption="../report/forecast.rst",
            labels={"figure": "Fig. 8 forecast vs truth"},
        ),
        pdf=os.path.join(PLOTS, "forecast_day11.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/forecast_day11.log"),
    conda:
        "../envs/plots.yaml"
    params:
        job=get_plot_config().get("forecast_job", 0),
        forecaster=get_plot_config().get("forecaster", "default"),
    script:
        "../scripts/rule.py"


rule plot_forecasters:
    # the forecaster comparison, from scripts/compare_forecasters.py CSVs in the results root
    input:
        csv=get_plot_csvs("forecasters"),
        code=get_rule_code("plot_forecasters"),
    output:
        png=report(
            os.path.join(PLOTS, "forecasters.png"),
            category="6. Model, solver, forecast",
            caption="../report/forecasters.rst",
            labels={"figure": "forecaster comparison"},
        ),
        pdf=os.path.join(PLOTS, "forecasters.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/forecasters.log"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/rule.py"


rule plot_forecast_selection:
    # the forecaster / quantile selection on days 1-10 (scripts/select_forecaster.py CSVs)
    input:
        csv=get_plot_csvs("selection"),
        code=get_rule_code("plot_forecast_selection"),
    output:
        png=report(
            os.path.join(PLOTS, "forecast_selection.png"),
            category="6. Model, solver, forecast",
            caption="../report/forecast_selection.rst",
            labels={"figure": "forecaster / quantile selection"},
        ),
        pdf=os.path.join(PLOTS, "forecast_selection.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/forecast_selection.log"),
    conda:
        "../envs/plots.yaml"
    script:
        "../scripts/rule.py"


rule plot_cilantro:
    input:
        cilantro=get_cilantro_files(),
        binned=get_cilantro_binned(),
        code=get_rule_code("plot_cilantro"),
    output:
        png=report(
            os.path.join(PLOTS, "cilantro.png"),
            category="7. Comparisons",
            caption="../report/cilantro.rst",
            labels={"figure": "Fig. 11 Faro vs Cilantro"},
        ),
        pdf=os.path.join(PLOTS, "cilantro.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/cilantro.log"),
    conda:
        "../envs/plots.yaml"
    params:
        quota=get_cilantro_run()[0],
        policy=get_cilantro_run()[1],
        backend=BACKEND,
    script:
        "../scripts/rule.py"


# ---------------------------------------------------------------- tables across results roots


rule table_sim_vs_real:
    input:
        this=os.path.join(ROOT, "stats.parquet"),
        other=(get_compare() or {}).get("path", []),
        code=get_rule_code("table_sim_vs_real"),
    output:
        csv=os.path.join(TABLES, "sim_vs_real.csv"),
        summary=os.path.join(TABLES, "sim_vs_real_summary.csv"),
        md=os.path.join(TABLES, "sim_vs_real.md"),
        tex=os.path.join(TABLES, "sim_vs_real.tex"),
        html=report(
            os.path.join(TABLES, "sim_vs_real.html"),
            category="8. Tables",
            caption="../report/table_sim_vs_real.rst",
            labels={"table": "Table 7 sim vs real"},
        ),
        png=report(
            os.path.join(PLOTS, "sim_vs_real.png"),
            category="7. Comparisons",
            caption="../report/sim_vs_real.rst",
            labels={"figure": "Fig. 13 simulator vs real backend"},
        ),
        pdf=os.path.join(PLOTS, "sim_vs_real.pdf"),
    log:
        os.path.join(ROOT, "logs/tables/sim_vs_real.log"),
    conda:
        "../envs/plots.yaml"
    params:
        this_label=BACKEND,
        other_label=(get_compare() or {}).get("label", "real"),
    script:
        "../scripts/rule.py"


rule table_scale_out:
    input:
        tables=list((get_scale_out() or {}).values()),
        code=get_rule_code("table_scale_out"),
    output:
        csv=os.path.join(TABLES, "scale_out.csv"),
        md=os.path.join(TABLES, "scale_out.md"),
        tex=os.path.join(TABLES, "scale_out.tex"),
        html=report(
            os.path.join(TABLES, "scale_out.html"),
            category="8. Tables",
            caption="../report/table_scale_out.rst",
            labels={"table": "Table 8 scale-out"},
        ),
    log:
        os.path.join(ROOT, "logs/tables/scale_out.log"),
    conda:
        "../envs/plots.yaml"
    params:
        names=list(get_scale_out() or {}),
    script:
        "../scripts/rule.py"


rule plots_note:
    output:
        report(
            os.path.join(PLOTS, "skipped.html"),
            category="9. Notes",
            caption="../report/skipped.rst",
            labels={"note": "figures made and skipped"},
        ),
    log:
        os.path.join(ROOT, "logs/plots/skipped.log"),
    conda:
        "../envs/plots.yaml"
    params:
        made=list(get_plot_plan()[0]),
        skipped=get_plot_plan()[1],
    script:
        "../scripts/rule.py"


rule plots:
    input:
        get_plot_targets(),


rule breakdown:
    # the ablation ladder (paper Fig. 16): runs its cells, then draws the figure
    input:
        get_breakdown_cells(),
        get_ablation_plot(),
