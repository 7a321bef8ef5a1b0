# The stage chain of one run (quota -> clusters -> jobs -> autoscaler -> replay ->
# fetch -> teardown), the same rules for every live backend, one job per stage. Each stage
# writes a record under {run}/stages/ with what it did, its inputs and the live state. A
# backend without live state (sim) runs the whole chain in its replay job: same records.


rule setup_quota:
    # live backends embed the trace and the policy's data files (trained forecasters) in the
    # session: the trace and model rules run before the session starts
    input:
        previous=get_previous_teardown,
        trace=get_trace,
        data=get_policy_data,
        code=get_backend_code,
    output:
        os.path.join(RUN, "stages/quota.json"),
    log:
        os.path.join(RUN, "logs/quota.log"),
    group:
        "run"
    conda:
        "../envs/stages.yaml"
    threads: 1
    resources:
        mem_mb=get_run_mem_mb,
        runtime=get_stage_runtime,
    params:
        stage="quota",
        run=get_run_spec,
        run_dir=get_run_dir,
    script:
        "../scripts/rule.py"


rule deploy_clusters:
    input:
        os.path.join(RUN, "stages/quota.json"),
    output:
        os.path.join(RUN, "stages/clusters.json"),
    log:
        os.path.join(RUN, "logs/clusters.log"),
    group:
        "run"
    conda:
        "../envs/stages.yaml"
    threads: 1
    resources:
        mem_mb=get_run_mem_mb,
        runtime=get_stage_runtime,
    params:
        stage="clusters",
        run=get_run_spec,
        run_dir=get_run_dir,
    script:
        "../scripts/rule.py"


rule deploy_jobs:
    input:
        os.path.join(RUN, "stages/clusters.json"),
    output:
        os.path.join(RUN, "stages/jobs.json"),
    log:
        os.path.join(RUN, "logs/jobs.log"),
    group:
        "run"
    conda:
        "../envs/stages.yaml"
    threads: 1
    resources:
        mem_mb=get_run_mem_mb,
        runtime=get_stage_runtime,
    params:
        stage="jobs",
        run=get_run_spec,
        run_dir=get_run_dir,
    script:
        "../scripts/rule.py"


rule launch_autoscaler:
    # a live autoscaler binds its policy at start: trace (oracle) and trained models; the
    # policy's class and parameters are in params.run (an edit of comments reruns nothing)
    input:
        os.path.join(RUN, "stages/jobs.json"),
    output:
        os.path.join(RUN, "stages/autoscaler.json"),
    log:
        os.path.join(RUN, "logs/autoscaler.log"),
    group:
        "run"
    conda:
        "../envs/stages.yaml"
    threads: 1
    resources:
        mem_mb=get_run_mem_mb,
        runtime=get_stage_runtime,
    params:
        stage="autoscaler",
        run=get_run_spec,
        run_dir=get_run_dir,
    script:
        "../scripts/rule.py"


rule replay:
    # a live backend's replay follows its autoscaler stage; a backend without live state (sim)
    # does every stage of the run in this one job (each still writes its record)
    input:
        after=get_replay_after,
        trace=get_trace,
        data=get_policy_data,
        code=get_replay_code,
    output:
        os.path.join(RUN, "stages/replay.json"),
    log:
        os.path.join(RUN, "logs/replay.log"),
    benchmark:
        os.path.join(RUN, "benchmarks/replay.tsv")
    group:
        "run"
    conda:
        "../envs/stages.yaml"
    threads: 1
    resources:
        mem_mb=get_run_mem_mb,
        runtime=get_replay_runtime,
    params:
        stage="replay",
        run=get_run_spec,
        run_dir=get_run_dir,
    script:
        "../scripts/rule.py"


rule fetch_logs:
    input:
        os.path.join(RUN, "stages/replay.json"),
    output:
        # the logs land in {run}/raw/, which live backends fill during the replay already:
        # not a declared output, so that Snakemake never clears it before this stage
        os.path.join(RUN, "stages/fetch.json"),
    log:
        os.path.join(RUN, "logs/fetch.log"),
    group:
        "run"
    conda:
        "../envs/stages.yaml"
    threads: 1
    resources:
        mem_mb=get_run_mem_mb,
        runtime=get_stage_runtime,
    params:
        stage="fetch",
        run=get_run_spec,
        run_dir=get_run_dir,
    script:
        "../scripts/rule.py"


rule k8s_manifests:
    # k8s: what the stages apply for one run, as YAML (inspect it, `kubectl apply --dry-run=server`)
    # and its run spec, the input of the by-hand `python -m faro.workflow.k8s_cli stage`; no cluster
    input:
        trace=get_trace,
        data=get_policy_data,
    output:
        directory(os.path.join(RUN, "manifests")),
    log:
        os.path.join(RUN, "logs/manifests.log"),
    conda:
        "../envs/stages.yaml"
    params:
        run=get_run_spec,
    script:
        "../scripts/rule.py"


rule teardown_run:
    input:
        os.path.join(RUN, "stages/fetch.json"),
    output:
        os.path.join(RUN, "stages/teardown.json"),
    log:
        os.path.join(RUN, "logs/teardown.log"),
    group:
        "run"
    conda:
        "../envs/stages.yaml"
    threads: 1
    resources:
        mem_mb=get_run_mem_mb,
        runtime=get_stage_runtime,
    params:
        stage="teardown",
        run=get_run_spec,
        run_dir=get_run_dir,
    script:
        "../scripts/rule.py"


rule teardown:
    log:
        os.path.join(ROOT, "logs/teardown_all.log"),
    conda:
        "../envs/stages.yaml"
    # `snakemake teardown`: remove every session of this results root left open
    params:
        root=ROOT,
        backend=BACKEND,
    script:
        "../scripts/rule.py"
