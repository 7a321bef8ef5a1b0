# Logs -> Parquet -> per-run stats -> per-cell stats (averaged over seeds) -> table.


rule parse_logs:
    input:
        fetch=RUN + "/stages/fetch.json",
        teardown=RUN + "/stages/teardown.json",
        code=code_files("schema.py", "backends/base.py", f"backends/{BACKEND}"),
    output:
        requests=RUN + "/requests.parquet",
        replicas=RUN + "/replicas.parquet",
    log:
        RUN + "/logs/parse.log",
    params:
        run=get_run_spec,
        run_dir=get_run_dir,
    conda:
        "../envs/results.yaml"
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
    log:
        RUN + "/logs/stats.log",
    params:
        run=get_run_spec,
    conda:
        "../envs/results.yaml"
    script:
        "../scripts/run_stats.py"


rule cell_stats:
    input:
        get_seed_stats,
    output:
        pkl=CELL + "/latency_stats.pkl",
        json=CELL + "/latency_stats.json",
    log:
        CELL + "/logs/cell_stats.log",
    params:
        seeds=config["seeds"],
    conda:
        "../envs/results.yaml"
    script:
        "../scripts/cell_stats.py"


rule stats_table:
    input:
        get_run_stats(),
    output:
        parquet=ROOT + "/stats.parquet",
        csv=ROOT + "/stats.csv",
    log:
        ROOT + "/logs/stats_table.log",
    params:
        runs=get_run_keys(),
    conda:
        "../envs/results.yaml"
    script:
        "../scripts/stats_table.py"
