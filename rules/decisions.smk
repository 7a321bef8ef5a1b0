# Decision records (one row per job and controller tick, the same schema on every backend)
# and the per-cell "why" figure built from them.


rule parse_decisions:
    # the controller's decision records of one run, with provenance
    input:
        fetch=os.path.join(RUN, "stages/fetch.json"),
        code=get_rule_code("parse_decisions"),
    output:
        os.path.join(RUN, "decisions.parquet"),
    log:
        os.path.join(RUN, "logs/decisions.log"),
    group:
        "run"
    conda:
        "../envs/results.yaml"
    threads: 1
    resources:
        mem_mb=get_run_mem_mb,
        runtime=get_parse_runtime,
    params:
        run=get_run_spec,
        run_dir=get_run_dir,
    script:
        "../scripts/rule.py"


rule plot_why:
    # one cell's plotted seed: its worst job's load, forecast, replicas, controller and SLO
    input:
        decisions=get_why_decisions,
        binned=get_why_binned,
        code=get_rule_code("plot_why"),
    output:
        png=report(
            os.path.join(PLOTS, "why_{quota}cpus_{policy}.png"),
            category="5. Why (decision records)",
            subcategory="{quota} CPUs",
            caption="../report/why.rst",
            labels={"figure": "why", "quota": "{quota}", "policy": "{policy}"},
        ),
        pdf=os.path.join(PLOTS, "why_{quota}cpus_{policy}.pdf"),
    log:
        os.path.join(ROOT, "logs/plots/why_{quota}cpus_{policy}.log"),
    conda:
        "../envs/plots.yaml"
    params:
        policy="{policy}",
        quota="{quota}",
        seed=get_plot_seed(),
        unit_time=UNIT_TIME,
    script:
        "../scripts/rule.py"
