# Logs -> Parquet -> per-run stats -> per-cell stats (averaged over seeds) -> table.


rule parse_logs:
    input:
        fetch=os.path.join(RUN, "stages/fetch.json"),
        teardown=os.path.join(RUN, "stages/teardown.json"),
        code=get_parse_code,
    output:
        requests=os.path.join(RUN, "requests.parquet"),
        replicas=os.path.join(RUN, "replicas.parquet"),
    log:
        os.path.join(RUN, "logs/parse.log"),
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


rule run_stats:
    input:
        requests=os.path.join(RUN, "requests.parquet"),
        replicas=os.path.join(RUN, "replicas.parquet"),
        trace=get_trace,
        code=get_rule_code("run_stats"),
    output:
        pkl=os.path.join(RUN, "latency_stats.pkl"),
        json=os.path.join(RUN, "latency_stats.json"),
    log:
        os.path.join(RUN, "logs/stats.log"),
    group:
        "run"
    conda:
        "../envs/results.yaml"
    threads: 1
    resources:
        mem_mb=get_run_mem_mb,
        runtime=get_stats_runtime,
    params:
        run=get_run_spec,
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
