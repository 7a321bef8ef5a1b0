# The "why" figures, built from the decision records (one row per job and controller tick, the
# same schema on every backend; written by each run's run_results job).


rule plot_why:
    # every cell's plotted seed at one quota: its worst job's load, forecast, replicas,
    # controller and SLO, one figure per policy (one process draws them all)
    input:
        decisions=get_why_decisions,
        binned=get_why_binned,
        code=get_rule_code("plot_why"),
    output:
        **get_why_outputs(),
    log:
        os.path.join(ROOT, "logs/plots/why_{quota}cpus.log"),
    conda:
        "../envs/plots.yaml"
    params:
        policies=get_why_policies(),
        quota="{quota}",
        seed=get_plot_seed(),
        unit_time=UNIT_TIME,
    script:
        "../scripts/rule.py"
