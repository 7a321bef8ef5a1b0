# Data sets (downloaded from the pinned artifact commit or copied from a mirror,
# sha256-checked) and the experiment's trace.


rule fetch_data:
    output:
        os.path.join(DATA, "{dataset}/{file}"),
    log:
        os.path.join(DATA, "logs/{dataset}/{file}.log"),
    # a data set is one folder level: cilantro-eks/<file> is a file of faro-artifact
    wildcard_constraints:
        dataset=r"[^/]+",
    conda:
        "../envs/data.yaml"
    # the mirror (config, FARO_DATA_MIRROR or the user's settings) is read by the script, not a
    # param: forgetting it must not make a verified file look stale (faro.model.data)
    params:
        dataset="{dataset}",
        name="{file}",
    script:
        "../scripts/rule.py"


rule prepare_trace:
    input:
        trace=get_trace_source,
        experiment=EXPERIMENT_FILE,
        code=get_rule_code("prepare_trace"),
    output:
        os.path.join(ROOT, "trace.json"),
    log:
        os.path.join(ROOT, "logs/prepare_trace.log"),
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/rule.py"


rule train_forecaster:
    input:
        history=os.path.join(DATA, "faro-artifact/") + HISTORY_FILE,
        code=get_rule_code("train_forecaster"),
    output:
        os.path.join(DATA, "models/light.pkl"),
    log:
        os.path.join(DATA, "logs/train_forecaster_light.log"),
    benchmark:
        os.path.join(DATA, "benchmarks/train_forecaster_light.tsv")
    conda:
        "../envs/stages.yaml"
    threads: 1
    resources:
        mem_mb=get_train_light_mem_mb,
        runtime=get_train_light_runtime,
    script:
        "../scripts/rule.py"


rule train_nhits:
    # optional N-HiTS forecaster (pip install -e ".[nhits]"): days 1-8 train, 9-10 validate
    input:
        history=os.path.join(DATA, "faro-artifact", HISTORY_FILE),
        code=get_rule_code("train_nhits"),
    output:
        os.path.join(DATA, "models", "nhits", "manifest.json"),
    log:
        os.path.join(DATA, "logs", "train_nhits.log"),
    benchmark:
        os.path.join(DATA, "benchmarks", "train_nhits.tsv")
    conda:
        "../envs/nhits.yaml"
    threads: 2
    resources:
        mem_mb=get_train_nhits_mem_mb,
        runtime=get_train_nhits_runtime,
    script:
        "../scripts/rule.py"
