# Logs -> Parquet -> per-run stats -> per-cell stats (averaged over seeds) -> table.


rule parse_logs:
    input:
        fetch=RUN + "/stages/fetch.json",
        teardown=RUN + "/stages/teardown.json",
        code=code_files("schema.py", "backends/base.py", f"backends/{BACKEND}"),
    output:
        requests=RUN + "/requests.parquet",
        replicas=RUN + "/replicas.parquet",
    params:
        run=get_run_spec,
        run_dir=get_run_dir,
    log:
        RUN + "/logs/parse.log",
    script:
        "../scripts/parse_logs.py"


rule run_stats:
    input:
        requests=RUN + "/requests.parquet",
        replicas=RUN + "/replicas.parquet",
        trace=get_trace,
        code=code_files("stats.py"),
    output:
        pkl=RUN + "/latency_stats.pkl",
        json=RUN + "/latency_stats.json",
    params:
        run=get_run_spec,
    log:
        RUN + "/logs/stats.log",
    script:
        "../scripts/run_stats.py"


rule cell_stats:
    input:
        get_seed_stats,
    output:
        pkl=CELL + "/latency_stats.pkl",
        json=CELL + "/latency_stats.json",
    params:
        seeds=config["seeds"],
    log:
        CELL + "/logs/cell_stats.log",
    script:
        "../scripts/cell_stats.py"


rule stats_table:
    input:
        get_run_stats(),
    output:
        parquet=ROOT + "/stats.parquet",
        csv=ROOT + "/stats.csv",
    params:
        runs=get_run_keys(),
    log:
        ROOT + "/logs/stats_table.log",
    script:
        "../scripts/stats_table.py"
