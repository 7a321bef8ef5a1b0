# Data sets (downloaded from the pinned artifact commit or copied from a mirror,
# sha256-checked) and the experiment's trace.


rule fetch_data:
    output:
        DATA + "/{dataset}/{file}",
    params:
        dataset="{dataset}",
        name="{file}",
        mirror=config["data_mirror"],
    log:
        DATA + "/logs/{dataset}/{file}.log",
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
    script:
        "../scripts/prepare_trace.py"


rule mark_root:
    output:
        ROOT + "/.faro-root.json",
    params:
        config=get_root_identity(),
    log:
        ROOT + "/logs/mark_root.log",
    script:
        "../scripts/mark_root.py"
