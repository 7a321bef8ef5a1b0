# The stage chain of one run (quota -> clusters -> jobs -> autoscaler -> replay ->
# fetch -> teardown), the same rules for every backend. Each stage writes a
# record under {run}/stages/ with what it did, its inputs and the live state.


rule setup_quota:
    input:
        marker=get_root_marker,
        experiment=EXPERIMENT_FILE,
        previous=get_previous_teardown,
        code=get_backend_code,
    output:
        RUN + "/stages/quota.json",
    log:
        RUN + "/logs/quota.log",
    params:
        stage="quota",
        run=get_run_spec,
        run_dir=get_run_dir,
    conda:
        "../envs/stages.yaml"
    script:
        "../scripts/stage.py"


rule deploy_clusters:
    input:
        RUN + "/stages/quota.json",
    output:
        RUN + "/stages/clusters.json",
    log:
        RUN + "/logs/clusters.log",
    params:
        stage="clusters",
        run=get_run_spec,
        run_dir=get_run_dir,
    conda:
        "../envs/stages.yaml"
    script:
        "../scripts/stage.py"


rule deploy_jobs:
    input:
        RUN + "/stages/clusters.json",
    output:
        RUN + "/stages/jobs.json",
    log:
        RUN + "/logs/jobs.log",
    params:
        stage="jobs",
        run=get_run_spec,
        run_dir=get_run_dir,
    conda:
        "../envs/stages.yaml"
    script:
        "../scripts/stage.py"


rule launch_autoscaler:
    input:
        RUN + "/stages/jobs.json",
        policy=POLICY_DIR + "/{policy}.yaml",
    output:
        RUN + "/stages/autoscaler.json",
    log:
        RUN + "/logs/autoscaler.log",
    params:
        stage="autoscaler",
        run=get_run_spec,
        run_dir=get_run_dir,
    conda:
        "../envs/stages.yaml"
    script:
        "../scripts/stage.py"


rule replay:
    input:
        RUN + "/stages/autoscaler.json",
        trace=get_trace,
        data=get_policy_data,
        code=get_replay_code,
    output:
        RUN + "/stages/replay.json",
    log:
        RUN + "/logs/replay.log",
    benchmark:
        RUN + "/benchmarks/replay.tsv"
    params:
        stage="replay",
        run=get_run_spec,
        run_dir=get_run_dir,
    conda:
        "../envs/stages.yaml"
    script:
        "../scripts/stage.py"


rule fetch_logs:
    input:
        RUN + "/stages/replay.json",
    output:
        record=RUN + "/stages/fetch.json",
        raw=directory(RUN + "/raw"),
    log:
        RUN + "/logs/fetch.log",
    params:
        stage="fetch",
        run=get_run_spec,
        run_dir=get_run_dir,
    conda:
        "../envs/stages.yaml"
    script:
        "../scripts/stage.py"


rule teardown_run:
    input:
        RUN + "/stages/fetch.json",
    output:
        RUN + "/stages/teardown.json",
    log:
        RUN + "/logs/teardown.log",
    params:
        stage="teardown",
        run=get_run_spec,
        run_dir=get_run_dir,
    conda:
        "../envs/stages.yaml"
    script:
        "../scripts/stage.py"


rule teardown:
    log:
        ROOT + "/logs/teardown_all.log",
    # `snakemake teardown`: remove every session of this results root left open
    params:
        root=ROOT,
        backend=BACKEND,
    conda:
        "../envs/stages.yaml"
    script:
        "../scripts/teardown_all.py"
