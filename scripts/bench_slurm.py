"""Benchmark: the small matrix of the Slurm test, locally vs through Slurm, side by side.

2 policies x 2 quotas of a 30-minute window of the artifact's trace (2 jobs; the matrix of
tests/test_slurm.py), `snakemake stats` from scratch, alternately with the local executor
(`--cores N`) and with `--profile profiles/slurm`, `--repeats` times each. Needs a running
Slurm cluster that sees this folder (`sudo .ci/slurm-single-node start`) and the `slurm`
extra. Prints the wall times, the Slurm jobs' own run times (scontrol) and the overhead per
Slurm job: (Slurm - local wall time) / (Slurm jobs / job slots), job slots being the
cluster's CPUs divided by the CPUs a run asks for.

    python scripts/bench_slurm.py --mirror ../shared/data/faro-artifact --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
from faro.workflow.executor import slurm_job_record, submitted_slurm_jobs, window_experiment  # noqa: E402


def _seconds(hms: str) -> int:
    parts = [int(x) for x in hms.replace("-", ":").split(":")]
    return sum(v * m for v, m in zip(reversed(parts), (1, 60, 3600, 86400), strict=False))


def run(tmp: Path, name: str, args: list[str], a) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "snakemake", *args, "--nolock", "stats", "--config",
           f"experiment={tmp / 'exp'}", f"results={tmp / name}", f"data_dir={tmp / ('data_' + name)}",
           f"data_mirror={a.mirror}", f"policies=[{a.policies}]", f"quotas=[{a.quotas}]", "seeds=[42]"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return dt, out.stdout + out.stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--policies", default="fairshare,aiad")
    ap.add_argument("--quotas", default="4,6")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--mirror", default=str(ROOT.parent / "shared/data/faro-artifact"))
    a = ap.parse_args()
    cpus = sum(int(x) for x in subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True,
                                              check=True).stdout.split())
    local_t, slurm_t, job_t, n_jobs = [], [], [], 0
    for k in range(a.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            window_experiment(tmp / "exp", ["serve-cluster0", "serve-cluster3"], first_minute=100, minutes=30)
            local_t.append(run(tmp, "local", ["--cores", str(a.cores)], a)[0])
            dt, text = run(tmp, "slurm", ["--profile", "profiles/slurm"], a)
            slurm_t.append(dt)
            ids = submitted_slurm_jobs(text)
            n_jobs = len(ids)
            job_t += [_seconds(slurm_job_record(j)["RunTime"]) for j in ids]
        print(f"repeat {k + 1}: local {local_t[-1]:.1f} s, Slurm {slurm_t[-1]:.1f} s ({n_jobs} Slurm jobs)",
              flush=True)
    lo, sl = statistics.median(local_t), statistics.median(slurm_t)
    slots = cpus  # every run's job asks for 1 CPU
    waves = -(-n_jobs // slots)
    print(f"\nmatrix: policies {a.policies} x quotas {a.quotas}, 30-minute window, "
          f"{a.repeats} repeats (medians)")
    print("| executor | wall time | Slurm jobs | a Slurm job's own run time |")
    print("|---|---|---|---|")
    print(f"| local, --cores {a.cores} | {lo:.1f} s | - | - |")
    print(f"| --profile profiles/slurm ({cpus} CPUs) | {sl:.1f} s | {n_jobs} | "
          f"median {statistics.median(job_t):.0f} s |")
    print(f"overhead per Slurm job: ({sl:.1f} - {lo:.1f}) s / {waves} waves of {slots} jobs "
          f"= {(sl - lo) / waves:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
