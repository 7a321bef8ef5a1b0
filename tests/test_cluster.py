"""Cluster execution without a cluster: the resource model, the refusal of live backends on
remote executors, and which rules run where (one cluster job per run; light rules local).

The real Slurm run is tests/test_slurm.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from faro.workflow.config import ConfigError
from faro.workflow.executor import RUN_GROUP, check_executor, run_mem_mb, runtime_min, train_mem_mb

PROJECT = Path(__file__).resolve().parents[1]
#: the jobs of one run: on a cluster they are one job (the group)
RUN_RULES = {"setup_quota", "deploy_clusters", "deploy_jobs", "launch_autoscaler", "replay",
             "fetch_logs", "teardown_run", "run_results"}
#: the other rules that go to the cluster (one job each)
REMOTE_RULES = {"train_forecaster", "train_nhits"}


def test_run_memory_covers_the_measured_peaks_with_headroom():
    # peaks of a run's jobs on this project's machine (faro.workflow.executor): 10 jobs 673 MB,
    # 100 jobs 4,802 MB
    assert run_mem_mb(10) >= 673 * 1.4 and run_mem_mb(100) >= 4802 * 1.4
    assert run_mem_mb(10) <= 673 * 2 and run_mem_mb(100) <= 4802 * 2  # not wasteful either
    assert run_mem_mb(2) < run_mem_mb(10) < run_mem_mb(20) < run_mem_mb(100)
    assert all(run_mem_mb(n) % 100 == 0 for n in (1, 2, 10, 37, 100))
    # a retry (after an out-of-memory kill) asks for twice as much, and twice the time
    assert run_mem_mb(10, attempt=2) == 2 * run_mem_mb(10)
    assert runtime_min("replay", attempt=2) == 2 * runtime_min("replay")
    assert train_mem_mb("light") >= 220 * 1.4  # benchmarks/train_forecaster_light.tsv: 220 MB
    with pytest.raises(ValueError):
        run_mem_mb(0)
    with pytest.raises(ValueError):
        run_mem_mb(10, attempt=0)
    with pytest.raises(KeyError, match="unknown job kind"):
        runtime_min("nosuch")
    with pytest.raises(KeyError, match="unknown forecaster"):
        train_mem_mb("nosuch")


@pytest.mark.parametrize("backend", ["ray", "k8s"])
def test_live_backends_refuse_remote_executors(backend):
    with pytest.raises(ConfigError, match=f"backend '{backend}' runs live sessions.*executor 'slurm'"):
        check_executor(backend, non_local=True, executor="slurm")
    with pytest.raises(ConfigError, match="local executor"):
        check_executor(backend, non_local=False, in_remote_job=True)  # a job on a cluster node
    check_executor(backend, non_local=False)  # the local executor: fine


def test_sim_runs_anywhere():
    check_executor("sim", non_local=True, executor="slurm")
    check_executor("sim", non_local=False, in_remote_job=True)


_RULES_SCRIPT = """
import json, sys
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
config = json.loads(sys.argv[1])
with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(resource_settings=ResourceSettings(), config_settings=ConfigSettings(config=config),
                      snakefile=__import__("pathlib").Path("Snakefile"),
                      workdir=__import__("pathlib").Path("."))._workflow
    out = {}
    for rule in wf.rules:
        res = {}
        for key in ("_cores", "mem_mb", "runtime"):
            v = rule.resources.get(key)
            res[key] = None if v is None else v.evaluate(None, attempt=1).value
        # rule.group is None unless executing remotely
        out[rule.name] = {"local": rule.name in wf._localrules, "group": rule._group, **res}
    print("RULES " + json.dumps(out))
"""


def test_every_rule_is_local_or_a_sized_cluster_job(tmp_path):
    """Light rules are localrules; every other rule declares threads, memory and time, and
    the jobs of one run form one group (one cluster job per simulation run)."""
    cfg = {"results": str(tmp_path / "r"), "data_dir": str(tmp_path / "d")}
    out = subprocess.run([sys.executable, "-c", _RULES_SCRIPT, json.dumps(cfg)], cwd=PROJECT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "localrules directive specifies rules that are not present" not in out.stdout + out.stderr
    rules = json.loads(next(ln for ln in out.stdout.splitlines() if ln.startswith("RULES "))[6:])
    remote = {name for name, r in rules.items() if not r["local"]}
    assert remote == RUN_RULES | REMOTE_RULES, (f"unexpected cluster rules: "
                                                f"{sorted(remote ^ (RUN_RULES | REMOTE_RULES))}")
    for name in remote:
        r = rules[name]
        assert r["group"] == (RUN_GROUP if name in RUN_RULES else None), name
        assert isinstance(r["_cores"], int) and r["_cores"] >= 1, name
        assert isinstance(r["mem_mb"], int) and r["mem_mb"] >= 300, name
        assert isinstance(r["runtime"], int) and r["runtime"] >= 1, name
    # a run's jobs all ask for the run's memory (a group job asks for its largest member's)
    assert len({rules[n]["mem_mb"] for n in RUN_RULES}) == 1
    assert not any(r["group"] for n, r in rules.items() if n not in RUN_RULES)


def test_slurm_profile_polls_squeue_and_leaves_accounts_to_the_user():
    profile = yaml.safe_load((PROJECT / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    # without slurmdbd, `sacct` never reports a job as finished: the plugin must poll squeue
    assert profile["slurm-status-command"] == "squeue"
    assert "default-resources" not in profile  # no site's account or partition in the project


def _tiny_experiment(tmp_path: Path) -> Path:
    exp = tmp_path / "exp"
    exp.mkdir()
    base = yaml.safe_load((PROJECT / "experiments/twitter_10jobs/experiment.yaml").read_text())
    base["trace"] = {"file": "trace.json"}
    base["jobs"] = {"names": ["job0", "job1"], "model": "resnet34"}
    (exp / "experiment.yaml").write_text(yaml.safe_dump(base))
    (exp / "trace.json").write_text('{"ts": 0, "counts": {"job0": {"classifier": 5}, '
                                    '"job1": {"classifier": 5}}}\n')
    return exp


def test_a_live_backend_job_started_by_a_remote_executor_fails(tmp_path):
    """The job side: Snakemake inside a cluster job runs with --mode remote (as the Slurm
    plugin's jobs do); a live backend refuses to run there."""
    exp = _tiny_experiment(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--mode", "remote", "--cores", "1", "--nolock", "-n", "stats",
         "--config", f"experiment={exp}", f"results={tmp_path / 'r'}", f"data_dir={tmp_path / 'd'}",
         "backend=ray", "quotas=[4]", "policies=[fairshare]"],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "backend 'ray' runs live sessions" in text, text[-3000:]


def test_live_backend_with_the_slurm_profile_fails_before_submitting(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    if shutil.which("squeue") is None:
        pytest.skip("Slurm's client tools are not installed "
                    "(the Slurm executor plugin needs squeue or sacct to load)")
    exp = _tiny_experiment(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "--nolock", "stats", "--config",
         f"experiment={exp}", f"results={tmp_path / 'r'}", f"data_dir={tmp_path / 'd'}", "backend=ray",
         "quotas=[4]", "policies=[fairshare]"],
        cwd=PROJECT, capture_output=True, text=True, timeout=300,
    )
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "backend 'ray' runs live sessions" in text and "executor 'slurm'" in text, text[-3000:]
    assert "submitted with SLURM jobid" not in text
    assert not (tmp_path / "r").exists(), "nothing ran, no results root was marked"
