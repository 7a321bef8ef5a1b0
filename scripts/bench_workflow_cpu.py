"""CPU-seconds of a whole `snakemake all` and what each job costs beside the simulations.

Runs (or, with --time-log, reads) ``/usr/bin/time -v snakemake --cores N all`` in a checkout
and prints: the whole run's CPU-seconds (user + system, Snakemake and every job), the
simulations' share (the replay rule's ``benchmarks/replay.tsv``, ``cpu_time``), the number of
jobs, and the mean CPU-seconds of a job that is not a simulation (stage bookkeeping, parse,
stats, figures, Snakemake's own scheduling spread over them).

    python scripts/bench_workflow_cpu.py --checkout . --data-mirror ../shared/data/faro-artifact
    python scripts/bench_workflow_cpu.py --checkout OTHER --time-log time.err   # an earlier run

Compare two commits side by side, back to back, on the same machine (README, "Performance").
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


def _field(text: str, label: str) -> str:
    found = re.search(re.escape(label) + r": ([\d:.]+)", text)
    if found is None:
        raise ValueError(f"no {label!r} in the /usr/bin/time -v report")
    return found.group(1)


def time_fields(text: str) -> dict[str, float]:
    """User and system seconds and the wall clock of ``/usr/bin/time -v``'s report."""
    user = float(_field(text, "User time (seconds)"))
    system = float(_field(text, "System time (seconds)"))
    wall = 0.0
    for part in _field(text, "Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
        wall = wall * 60 + float(part)
    return {"user_s": user, "system_s": system, "cpu_s": user + system, "wall_s": wall}


def jobs_done(text: str) -> int:
    """Jobs Snakemake ran (its last "N of M steps" line)."""
    found = re.findall(r"(\d+) of (\d+) steps", text)
    return int(found[-1][0]) if found else 0


def replay_cpu(results: Path) -> tuple[float, int]:
    """CPU-seconds of every replay (simulation) job, from their benchmark files, and their count."""
    total, n = 0.0, 0
    for tsv in results.glob("*_cpus/*/seed_*/benchmarks/replay.tsv"):
        with open(tsv) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        total += float(row["cpu_time"])
        n += 1
    return total, n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, default=Path("."), help="the project checkout to measure")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--data-mirror", help="data_mirror for the run (offline machines)")
    ap.add_argument("--time-log", type=Path, help="read this /usr/bin/time -v report instead of running")
    ap.add_argument("--snakemake-log", type=Path, help="with --time-log: Snakemake's own log (its stderr)")
    a = ap.parse_args(argv)
    root = a.checkout.resolve()
    if a.time_log is None:
        shutil.rmtree(root / "results", ignore_errors=True)
        shutil.rmtree(root / ".snakemake", ignore_errors=True)
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "snakemake", "--cores", str(a.cores), "all"]
        if a.data_mirror:
            cmd += ["--config", f"data_mirror={Path(a.data_mirror).resolve()}"]
        env = {**os.environ, "PYTHONPATH": str(root / "workflow")}
        out = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return out.returncode
        text = out.stderr
    else:
        text = a.time_log.read_text() + (a.snakemake_log.read_text() if a.snakemake_log else "")
    t = time_fields(text)
    n_jobs = jobs_done(text)
    sim_s, n_sim = replay_cpu(root / "results")
    other = max(n_jobs - n_sim, 1)
    print(f"checkout {root}")
    print(f"whole run: {t['cpu_s']:.1f} CPU-s (user {t['user_s']:.1f}, system {t['system_s']:.1f}), "
          f"wall {t['wall_s']:.1f} s, {n_jobs} jobs")
    print(f"simulations (replay): {sim_s:.1f} CPU-s in {n_sim} jobs")
    print(f"everything else: {t['cpu_s'] - sim_s:.1f} CPU-s in {n_jobs - n_sim} jobs "
          f"= {(t['cpu_s'] - sim_s) / other:.2f} CPU-s per job")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
