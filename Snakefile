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
include: "rules/data.smk"
include: "rules/session.smk"
include: "rules/results.smk"
include: "rules/plots.smk"
include: "rules/decisions.smk"


rule all:
    default_target: True
    input:
        get_cell_stats(),
        get_stats_table(),
        get_run_decisions(),
        get_plots(),


onstart:
    mark_results_root()


onerror:
    teardown_open_sessions(log)
