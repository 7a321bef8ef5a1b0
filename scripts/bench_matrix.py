"""Benchmark: the default matrix of baseline cells from scratch with Snakemake.

Runs `snakemake --cores N stats` (every stage of every cell, parse, per-run and per-cell
stats, the stats table) for the given policies x quotas (one seed) into a fresh results
root (data copied from a local mirror), then `snakemake plots` (the default figure set),
and prints both wall times.

    python scripts/bench_matrix.py --cores 2 --policies fairshare,oneshot,aiad
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--policies", default="fairshare,oneshot,aiad")
    ap.add_argument("--quotas", default="16,32,36,40")
    ap.add_argument("--mirror", default=str(ROOT.parent / "shared/data/faro-artifact"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        n_cells = len(a.policies.split(",")) * len(a.quotas.split(","))
        for target in ("stats", "plots"):
            cmd = [sys.executable, "-m", "snakemake", "--cores", str(a.cores), target, "--config",
                   f"results={tmp}/results", f"data_dir={tmp}/data", f"data_mirror={a.mirror}",
                   f"policies=[{a.policies}]", f"quotas=[{a.quotas}]", "seeds=[42]"]
            t0 = time.perf_counter()
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            dt = time.perf_counter() - t0
            if out.returncode != 0:
                print(out.stdout[-3000:], out.stderr[-3000:])
                return 1
            jobs = out.stdout.count("Finished jobid") + out.stderr.count("Finished jobid")
            print(f"`snakemake {target}`: {n_cells} cells ({a.policies} x {a.quotas}), {jobs} jobs, "
                  f"--cores {a.cores}: {dt:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
