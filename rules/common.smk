# The cell grid, paths, and the named input functions used by the rules.
import json

from faro.config import check_config, config_hash, project_root
from faro.config import experiment_dir, experiment_trace_file, project_relative
from faro.data import HISTORY_FILE
from faro.config import unit_time as experiment_unit_time
from faro.workflow_support import (
    code_files,
    open_sessions,
    policy_code,
    policy_data,
    run_order,
    teardown_sessions,
)

EXP = check_config(config)  # fails here, naming the bad value, before any rule runs
ROOT = config["results"]
DATA = config["data_dir"]
BACKEND = config["backend"]
UNIT_TIME = experiment_unit_time(config, EXP)
POLICY_DIR = config.get("policy_dir", "config/policies")
EXPERIMENT_FILE = project_relative(experiment_dir(config) / "experiment.yaml")
CELL = ROOT + "/{quota}_cpus/{policy}"
RUN = CELL + "/seed_{seed}"
RUNS = run_order(config["quotas"], config["policies"], config["seeds"])
CONFIG_HASH = config_hash(
    {"config": config, "experiment": EXP.raw, "unit_time": UNIT_TIME}
)


wildcard_constraints:
    quota=r"\d+",
    policy=r"[A-Za-z0-9_-]+",
    seed=r"\d+",


def get_run_dir(wildcards):
    return RUN.format(**wildcards)


def get_run_spec(wildcards):
    """Everything a stage needs to know about one run (also a rerun trigger)."""
    return {
        "experiment": config["experiment"],
        "experiment_file": EXPERIMENT_FILE,
        "backend": BACKEND,
        "quota": int(wildcards.quota),
        "policy": wildcards.policy,
        "policy_file": f"{POLICY_DIR}/{wildcards.policy}.yaml",
        "seed": int(wildcards.seed),
        "unit_time": UNIT_TIME,
        "trace_file": get_trace(wildcards),
        "results": ROOT,
        "data_dir": DATA,
        "project_root": str(project_root()),
        "config_hash": CONFIG_HASH,
        "backend_options": config.get(BACKEND, {}),
    }


def get_trace_source(wildcards=None):
    """The experiment's source trace: a fetched data set file, or the user's own file."""
    spec = EXP.trace_spec
    if "dataset" in spec:
        return f"{DATA}/{spec['dataset']}/{spec['file']}"
    return experiment_trace_file(config, EXP)


def get_trace(wildcards=None):
    return f"{ROOT}/trace.json"


def get_root_identity(wildcards=None):
    return {
        "experiment": config["experiment"],
        "backend": BACKEND,
        "results": ROOT,
    }


def get_root_marker(wildcards=None):
    return f"{ROOT}/.faro-root.json"


def get_previous_teardown(wildcards):
    """Live sessions never overlap: a run's quota stage waits for the previous run's teardown."""
    if BACKEND == "sim":
        return []
    key = (int(wildcards.quota), wildcards.policy, int(wildcards.seed))
    k = RUNS.index(key)
    if k == 0:
        return []
    q, p, s = RUNS[k - 1]
    return RUN.format(quota=q, policy=p, seed=s) + "/stages/teardown.json"


def get_backend_code(wildcards=None):
    return code_files("stages.py", "backends/base.py", f"backends/{BACKEND}")


def get_replay_code(wildcards):
    """Modules a replay runs: its backend, the control loop, the policy's own code."""
    extra = ["sim", "trace.py", "experiment.py"] if BACKEND == "sim" else []
    return (
        code_files("control", *extra) + get_backend_code() + get_policy_code(wildcards)
    )


def get_policy_data(wildcards):
    return policy_data(f"{POLICY_DIR}/{wildcards.policy}.yaml", DATA)


def get_policy_code(wildcards):
    return policy_code(f"{POLICY_DIR}/{wildcards.policy}.yaml")


def get_seed_stats(wildcards):
    return expand(
        RUN + "/latency_stats.pkl",
        quota=wildcards.quota,
        policy=wildcards.policy,
        seed=config["seeds"],
    )


def get_cell_stats(wildcards=None):
    return [
        CELL.format(quota=q, policy=p) + "/latency_stats.pkl"
        for q in config["quotas"]
        for p in config["policies"]
    ]


def get_run_stats(wildcards=None):
    return [
        RUN.format(quota=q, policy=p, seed=s) + "/latency_stats.pkl" for q, p, s in RUNS
    ]


def get_run_keys(wildcards=None):
    return [
        {
            "experiment": config["experiment"],
            "backend": BACKEND,
            "quota": q,
            "policy": p,
            "seed": s,
        }
        for q, p, s in RUNS
    ]


def get_stats_table(wildcards=None):
    return [f"{ROOT}/stats.parquet", f"{ROOT}/stats.csv"]


def get_quota_cells(wildcards):
    return expand(
        CELL + "/latency_stats.pkl", quota=wildcards.quota, policy=config["policies"]
    )


def get_plots(wildcards=None):
    return expand(
        ROOT + "/plots/headline_{quota}cpus.{ext}",
        quota=config["quotas"],
        ext=["png", "pdf"],
    )


def teardown_open_sessions(log_text=None):
    """Tear down every session of this results root that is still open."""
    teardown_sessions(ROOT, BACKEND)
