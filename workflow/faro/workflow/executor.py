"""Running the workflow through a Snakemake executor plugin (Slurm, Kubernetes).

What goes where: one cluster job per simulation run (the run's stage jobs and its results
job form the Snakemake group ``run``), the model training on the cluster too, and
everything light (data fetch, trace preparation, per-cell and table aggregation,
figures) on the submitting host (``localrules`` in ``rules/cluster.smk``).

The resources a cluster job asks for come from measurements on this project's machine
(``benchmarks/*.tsv`` of the replay stage and the training rule, the peak memory of parse
and stats under ``/usr/bin/time``; README, "Running sweeps on a cluster"), with headroom, and
grow with Snakemake's ``attempt`` so that a retry after an out-of-memory or time-limit kill asks for more.

Live backends (``ray``, ``k8s``) never run through a remote executor: a live session (a
Ray head with its processes, a port-forward, a lease) belongs to the host that started
it, and the session chain of a live matrix runs one cell after another on that host.
"""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
from pathlib import Path

import yaml

from faro.workflow.config import ConfigError, project_root

#: the Snakemake group of one run: its stage jobs and its results job become one cluster job
RUN_GROUP = "run"

# Peak memory (MB) of a run's jobs, measured on this project's machine: the replay stage
# (benchmarks/replay.tsv, max_rss) and parse/stats (/usr/bin/time, max RSS):
#   10 jobs x 6 h (2.68 M requests): replay 340-382, parse 402, stats 673
#   100 jobs x 6 h (26.8 M requests): replay 1,324-1,500, parse 1,621, stats 4,802 (37 s and 68 s)
# The group's peak is the stats job: a line through (10 jobs, 673 MB) and (100 jobs,
# 4,802 MB), per job of a 6-hour trace, times the headroom (1,100 MB at 10 jobs, 7,300 at 100).
RUN_BASE_MB = 214.0
RUN_PER_JOB_MB = 45.9
HEADROOM = 1.5
#: peak memory of train_forecaster (benchmarks/train_forecaster_light.tsv: 220 MB, 3.2 s), with headroom
TRAIN_LIGHT_MB = 500
#: N-HiTS training (torch, 2 threads; not measured here: an estimate)
TRAIN_NHITS_MB = 4000

#: minutes a cluster job may run (Slurm's time limit; a group's is the sum of its jobs').
#: Measured on a 6-hour trace: replay 3-18 s (10 jobs) and 31-73 s (100 jobs), parse 5 s and
#: 37 s, stats 5 s and 68 s (one results job now does both); every other stage only writes a
#: record (the simulator's run them inside its replay job).
RUNTIME_MIN = {"stage": 2, "replay": 20, "results": 20, "train_light": 10, "train_nhits": 60}

REMOTE_BACKENDS = ("sim",)


def run_mem_mb(n_jobs: int, attempt: int = 1) -> int:
    """Memory (MB) a run's cluster job asks for: the measured peak, with headroom.

    Rounded up to 100 MB; doubled per retry (``attempt`` 2 asks twice as much).
    """
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1 (got {n_jobs})")
    return _scaled((RUN_BASE_MB + RUN_PER_JOB_MB * n_jobs) * HEADROOM, attempt)


def train_mem_mb(kind: str, attempt: int = 1) -> int:
    """Memory (MB) of a training job (``light`` or ``nhits``), doubled per retry."""
    known = {"light": TRAIN_LIGHT_MB, "nhits": TRAIN_NHITS_MB}
    if kind not in known:
        raise KeyError(f"unknown forecaster {kind!r} (known: {', '.join(known)})")
    return _scaled(known[kind], attempt)


def _scaled(mb: float, attempt: int) -> int:
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1 (got {attempt})")
    return int(math.ceil(mb / 100.0) * 100) * 2 ** (attempt - 1)


def runtime_min(kind: str, attempt: int = 1) -> int:
    """Time limit (minutes) of one job of ``kind`` (see :data:`RUNTIME_MIN`), doubled per retry."""
    if kind not in RUNTIME_MIN:
        raise KeyError(f"unknown job kind {kind!r} (known: {', '.join(RUNTIME_MIN)})")
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1 (got {attempt})")
    return RUNTIME_MIN[kind] * 2 ** (attempt - 1)


def check_executor(backend: str, *, non_local: bool, in_remote_job: bool = False, executor: str = "") -> None:
    """Refuse a live backend on a remote executor, with a message saying what to do instead.

    ``non_local``: the main Snakemake process submits jobs to a cluster (``--executor
    slurm``, ``--profile profiles/slurm``, Kubernetes, ...). ``in_remote_job``: this process
    is itself a job that such an executor started on some node.
    """
    if backend in REMOTE_BACKENDS or not (non_local or in_remote_job):
        return
    where = f"executor {executor!r}" if executor else "a remote executor"
    raise ConfigError(
        f"backend {backend!r} runs live sessions, which belong to the host that starts them "
        f"(processes, ports, the session chain of the matrix): it cannot run through {where}. "
        f"Run it with the local executor on the machine that reaches the cluster, e.g. "
        f"`snakemake --cores 2 all --config backend={backend}` (no --profile profiles/slurm, no "
        f"--executor); only backend 'sim' sweeps run as cluster jobs."
    )


# ------------------------------------------------- checking a cluster run against a local one


def window_experiment(folder: str | Path, jobs: list[str], *, first_minute: int, minutes: int,
                      scale: float = 1.0) -> Path:
    """An experiment of ``minutes`` trace minutes of some of the artifact's jobs (the main
    experiment's model), written to ``folder/experiment.yaml``: the small matrix of the Slurm
    test and benchmark."""
    base = yaml.safe_load((project_root() / "experiments/twitter_10jobs/experiment.yaml").read_text())
    base["name"] = "window"
    base["trace"] = {"dataset": "faro-artifact", "file": "input.json",
                     "derive": {"jobs": list(jobs), "first_minute": int(first_minute),
                                "minutes": int(minutes), "scale": float(scale)}}
    base["jobs"] = {"names": list(jobs), "model": "resnet34"}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "experiment.yaml").write_text(yaml.safe_dump(base))
    return folder


def parquet_data_digest(path: str | Path) -> tuple[str, int]:
    """sha256 of a Parquet file's data (schema and rows, as Arrow IPC) without its metadata
    (which records provenance: when, where, which commit), and its number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path).replace_schema_metadata(None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest(), table.num_rows


def submitted_slurm_jobs(snakemake_output: str) -> list[str]:
    """Slurm job ids the executor plugin reported in Snakemake's output."""
    return re.findall(r"has been submitted with SLURM jobid (\d+)", snakemake_output)


def slurm_job_record(jobid: str) -> dict[str, str]:
    """Slurm's own record of a job (``scontrol show job``; kept for MinJobAge after it ends)."""
    out = subprocess.run(["scontrol", "-o", "show", "job", str(jobid)], capture_output=True, text=True,
                         timeout=30)
    if out.returncode != 0:
        raise LookupError(f"Slurm has no record of job {jobid}: {out.stderr.strip()}")
    return dict(re.findall(r"(\w+)=(\S*)", out.stdout))
