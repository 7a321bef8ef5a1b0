# Data sets (downloaded from the pinned artifact commit or copied from a mirror,
# sha256-checked) and the experiment's trace.


rule fetch_data:
    output:
        DATA + "/{dataset}/{file}",
    log:
        DATA + "/logs/{dataset}/{file}.log",
    params:
        dataset="{dataset}",
        name="{file}",
        mirror=config["data_mirror"],
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/fetch_data.py"


rule prepare_trace:
    input:
        trace=get_trace_source,
        experiment=EXPERIMENT_FILE,
        code=code_files("trace.py", "experiment.py"),
    output:
        ROOT + "/trace.json",
    log:
        ROOT + "/logs/prepare_trace.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/prepare_trace.py"


rule mark_root:
    output:
        ROOT + "/.faro-root.json",
    log:
        ROOT + "/logs/mark_root.log",
    params:
        config=get_root_identity(),
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/mark_root.py"


rule train_forecaster:
    input:
        history=DATA + "/faro-artifact/" + HISTORY_FILE,
        code=code_files("forecast"),
    output:
        DATA + "/models/light.pkl",
    log:
        DATA + "/logs/train_forecaster_light.log",
    benchmark:
        DATA + "/benchmarks/train_forecaster_light.tsv"
    conda:
        "../envs/stages.yaml"
    script:
        "../scripts/train_forecaster.py"
