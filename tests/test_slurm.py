"""The simulator matrix through a real Slurm cluster (profiles/slurm), against a local run.

Needs a running Slurm cluster whose jobs see this folder (the CI starts a single-node one
with `.ci/slurm-single-node start`) and the `slurm` extra; skipped otherwise. A small
matrix (2 policies x 2 quotas of a 30-minute window of the artifact's trace, 2 jobs) runs
once locally and once through Slurm. Checked: one Slurm job per run, each COMPLETED with
exit code 0 in Slurm's own records (`scontrol show job`), its Slurm log naming the run's
jobs; nothing else went to Slurm; and the results equal the local run's byte for byte (the
data of every requests.parquet and replicas.parquet, whose metadata records provenance,
and the per-run stats and the stats table, whole files).

With FARO_SLURM_REPORT set, the job ids, states, comparison and times are written there
(the CI prints the file).
"""

from __future__ import annotations

import filecmp
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from faro.workflow.executor import (
    parquet_data_digest,
    slurm_job_record,
    submitted_slurm_jobs,
    window_experiment,
)

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
PROJECT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
QUOTAS, POLICIES, SEED = (4, 6), ("fairshare", "aiad"), 42
RUNS = [f"{q}_cpus/{p}/seed_{SEED}" for q in QUOTAS for p in POLICIES]
#: the jobs of a simulated run (its replay job does every stage): one Slurm job, the group "run"
RUN_RULES = ("replay", "run_results")


def slurm_unavailable() -> str | None:
    """Why the Slurm test cannot run here (None: it can)."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return 'the Slurm executor plugin is not installed (pip install -c constraints.txt -e ".[slurm]")'
    for tool in ("sbatch", "squeue", "scontrol", "sinfo"):
        if shutil.which(tool) is None:
            return f"no Slurm here ({tool} not on PATH; a test cluster: sudo .ci/slurm-single-node start)"
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        said = (ping.stdout + ping.stderr).strip().splitlines()
        return (f"no Slurm controller answers `scontrol ping` ({said[-1][:160] if said else 'no answer'}; "
                "a test cluster: sudo .ci/slurm-single-node start)")
    states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                            timeout=30).stdout.split()
    if not {"idle", "mix"} & set(states):
        return f"no idle Slurm node (sinfo: {' '.join(states) or 'none'})"
    return None


@pytest.fixture(scope="module")
def slurm() -> None:
    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)


def run_matrix(tmp: Path, name: str, mirror: Path, *args: str) -> tuple[str, float]:
    cfg = {"experiment": tmp / "exp", "results": tmp / name, "data_dir": tmp / f"data_{name}",
           "data_mirror": mirror, "quotas": f"[{','.join(map(str, QUOTAS))}]",
           "policies": f"[{','.join(POLICIES)}]", "seeds": f"[{SEED}]"}
    cmd = [*SNAKEMAKE, *args, "--nolock", "stats", "--config", *[f"{k}={v}" for k, v in cfg.items()]]
    t0 = time.monotonic()
    out = subprocess.run(cmd, cwd=PROJECT, capture_output=True, text=True, timeout=1200)
    elapsed = time.monotonic() - t0
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise AssertionError(f"{name} run failed ({out.returncode}):\n{text[-6000:]}")
    return text, elapsed


@pytest.mark.timeout(2400)
def test_matrix_through_slurm_equals_a_local_run(tmp_path, mirror, slurm):
    # 2 artifact jobs, trace minutes 100-129
    window_experiment(tmp_path / "exp", ["serve-cluster0", "serve-cluster3"], first_minute=100, minutes=30)
    _, t_local = run_matrix(tmp_path, "local", mirror, "--cores", "2")
    logdir = tmp_path / "slurm_logs"
    text, t_slurm = run_matrix(tmp_path, "slurm", mirror, "--profile", "profiles/slurm",
                               "--slurm-logdir", str(logdir), "--slurm-keep-successful-logs")
    report = [(f"Slurm test ({len(RUNS)} runs: quotas {QUOTAS} x policies {POLICIES}, "
               f"30-minute window, 2 jobs)")]

    # one Slurm job per run, each finished with exit code 0 in Slurm's own records
    jobids = submitted_slurm_jobs(text)
    assert len(jobids) == len(RUNS), f"expected one Slurm job per run, got {jobids}:\n{text[-4000:]}"
    logs = {p.stem: p.read_text() for p in logdir.rglob("*.log")}
    runs_seen = []
    for jobid in jobids:
        job = slurm_job_record(jobid)
        assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0", job
        assert job["JobName"].startswith("faro_"), job["JobName"]
        log = logs[jobid]  # the job's own Slurm log: the run's jobs, executed inside the allocation
        assert "--executor slurm-jobstep" in log and "--mode remote" in log
        for rule in RUN_RULES:
            assert re.search(rf"^\s*rule {rule}:", log, re.M), f"job {jobid}: no {rule} in its log"
        (wc,) = set(re.findall(r"wildcards: quota=(\d+), policy=(\w+), seed=(\d+)", log))
        run = f"{wc[0]}_cpus/{wc[1]}/seed_{wc[2]}"
        runs_seen.append(run)
        report.append(f"  SLURM jobid {jobid} {job['JobName']} JobState={job['JobState']} "
                      f"ExitCode={job['ExitCode']} RunTime={job['RunTime']} NodeList={job['NodeList']} "
                      f"mem={job.get('MinMemoryNode', '?')} TimeLimit={job['TimeLimit']} run={run}")
    assert sorted(runs_seen) == sorted(RUNS), runs_seen
    # light rules stayed on the submitting host
    for rule in ("fetch_data", "prepare_trace", "cell_stats", "stats_table", "stats"):
        assert re.search(rf"^localrule {rule}:", text, re.M), f"{rule} did not run locally"
    assert not re.search(r"^rule (fetch_data|prepare_trace|cell_stats|stats_table):", text, re.M)

    # the results equal a local run's, byte for byte
    local, viaslurm = tmp_path / "local", tmp_path / "slurm"
    for run in RUNS:
        for name in ("requests.parquet", "replicas.parquet"):
            (a, rows), (b, _) = (parquet_data_digest(local / run / name),
                                 parquet_data_digest(viaslurm / run / name))
            assert a == b, f"{run}/{name}: data differ between the local and the Slurm run"
            report.append(f"  {run}/{name}: {rows} rows, data sha256 local {a[:16]} == slurm {b[:16]}")
        assert filecmp.cmp(local / run / "latency_stats.json", viaslurm / run / "latency_stats.json",
                           shallow=False)
    assert filecmp.cmp(local / "stats.csv", viaslurm / "stats.csv", shallow=False)
    report.append("  latency_stats.json of every run and stats.csv: identical files")
    report.append(f"  time (snakemake stats, 44 jobs): local --cores 2 {t_local:.1f} s, "
                  f"--profile profiles/slurm {t_slurm:.1f} s")
    if os.environ.get("FARO_SLURM_REPORT"):
        Path(os.environ["FARO_SLURM_REPORT"]).write_text("\n".join(report) + "\n")
    print("\n".join(report))
