# faro: reproducible SLO-aware autoscaling experiments (the Faro paper) as a workflow.
# Targets: all (default), plots, teardown; one cell: results/{quota}_cpus/{policy}/latency_stats.pkl
import os
import sys

from snakemake.utils import min_version, validate

# this checkout's package, whatever else is installed; the project root is this folder
sys.path.insert(0, os.path.join(workflow.basedir, "workflow"))

from faro.workflow.config import check_config_schema, coerce_cli, set_project_root
from faro.workflow.provenance import share_with_jobs
from faro.workflow.support import config_sources_of, is_verbose

set_project_root(workflow.basedir)
share_with_jobs()  # the commit and package versions, computed once for every job

min_version("9.0")


configfile: "config/config.yaml"


coerce_cli(config)
# one short line naming the file (or --config), the key and a close match; then Snakemake's
# validate fills in the defaults (the config is valid by then, so it never dumps the schema)
check_config_schema(config, config_sources_of(workflow), is_verbose(workflow))
validate(config, "config/schema/config.schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/cluster.smk"
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
    check_executor_on_start()
    mark_results_root()


onsuccess:
    print_summary(log)


onerror:
    teardown_open_sessions(log)
    print_resume_hint(log)
