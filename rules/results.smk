# Logs -> one results job per run (Parquet, stats, decision records, per-minute frames) ->
# per-cell stats (averaged over seeds) -> table.


rule run_results:
    # one job per run: its logs parsed once, then the stats, the decision records and the
    # per-minute frames of the figures, from the requests in memory
    input:
        logs=get_run_logs,
        trace=get_trace,
        code=get_results_code,
    output:
        requests=os.path.join(RUN, "requests.parquet"),
        replicas=os.path.join(RUN, "replicas.parquet"),
        decisions=os.path.join(RUN, "decisions.parquet"),
        pkl=os.path.join(RUN, "latency_stats.pkl"),
        json=os.path.join(RUN, "latency_stats.json"),
        binned=os.path.join(RUN, "binned.parquet"),
        latency=os.path.join(RUN, "job_latency.parquet"),
    log:
        os.path.join(RUN, "logs/results.log"),
    benchmark:
        os.path.join(RUN, "benchmarks/results.tsv")
    group:
        "run"
    conda:
        "../envs/results.yaml"
    threads: 1
    resources:
        mem_mb=get_run_mem_mb,
        runtime=get_results_runtime,
    params:
        run=get_run_spec,
        run_dir=get_run_dir,
    script:
        "../scripts/rule.py"


rule cell_stats:
    input:
        stats=get_seed_stats,
        code=get_rule_code("cell_stats"),
    output:
        pkl=os.path.join(CELL, "latency_stats.pkl"),
        json=os.path.join(CELL, "latency_stats.json"),
    log:
        os.path.join(CELL, "logs/cell_stats.log"),
    conda:
        "../envs/results.yaml"
    params:
        seeds=config["seeds"],
    script:
        "../scripts/rule.py"


rule stats_table:
    input:
        stats=get_run_stats(),
        code=get_rule_code("stats_table"),
    output:
        parquet=os.path.join(ROOT, "stats.parquet"),
        csv=os.path.join(ROOT, "stats.csv"),
    log:
        os.path.join(ROOT, "logs/stats_table.log"),
    conda:
        "../envs/results.yaml"
    params:
        runs=get_run_keys(),
    script:
        "../scripts/rule.py"


rule stats:
    # every cell and the stats table, without the figures
    input:
        get_cell_stats(),
        get_stats_table(),
