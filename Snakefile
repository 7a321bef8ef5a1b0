# faro: reproducible SLO-aware autoscaling experiments (the Faro paper) as a workflow.
# Targets: all (default), plots, teardown; one cell: results/{quota}_cpus/{policy}/latency_stats.pkl
from snakemake.utils import min_version, validate

from faro.config import coerce_cli

min_version("9.0")


configfile: "config/config.yaml"


coerce_cli(config)
validate(config, "config/schema/config.schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/cluster.smk"
include: "rules/data.smk"
include: "rules/session.smk"
include: "rules/results.smk"
include: "rules/plots.smk"


rule all:
    default_target: True
    input:
        get_cell_stats(),
        get_stats_table(),
        get_plots(),


onstart:
    check_executor_on_start()
    mark_results_root()


onerror:
    teardown_open_sessions(log)
