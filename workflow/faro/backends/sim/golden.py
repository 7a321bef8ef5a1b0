r"""Golden checksums: short reference runs whose Parquet data must come out bit for bit the same.

One seed fixes a run completely, on every machine (see :mod:`faro.numerics`).  This module
runs a few short cells of the main experiment (the busiest half hour of the artifact's trace,
minutes 210-239, at 32 CPUs, seed 42), writes their ``requests.parquet`` and
``replicas.parquet`` with the workflow's own writer, and hashes the *data* of each file (not
its metadata, which records versions and the git commit).  ``tests/golden/checksums.json``
holds the expected hashes; ``tests/test_golden.py`` recomputes them, also in processes with
other numpy CPU features, BLAS kernels and numba target CPUs.

After a change that is meant to change results, rewrite the file and say why in the commit::

    python -m faro.backends.sim.golden --mirror ../shared/data/faro-artifact \
        --write tests/golden/checksums.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

#: the reference case: experiment, trace window, quota, seed and the policies checked
CASE: dict[str, Any] = {
    "experiment": "experiments/twitter_10jobs",
    "first_minute": 210,
    "minutes": 30,
    "quota": 32,
    "seed": 42,
    "policies": ["aiad", "mark", "faro_sum", "faro_fair_sum"],
}


def golden_checksums(project_root: str | Path, mirror: str | Path, *,
                     policies: list[str] | None = None) -> dict[str, dict[str, str]]:
    """``{policy: {"requests": sha256, "replicas": sha256}}`` of the reference case."""
    from faro.backends.sim.engine import simulate
    from faro.backends.sim.inprocess import load_policy_spec
    from faro.forecast.registry import make_forecaster
    from faro.forecast.training import training_data
    from faro.model.experiment import load_experiment
    from faro.model.schema import data_checksum, write_replicas, write_requests
    from faro.model.trace import Trace, parse_trace
    from faro.policies import make_policy

    root = Path(project_root)
    exp = load_experiment(root / CASE["experiment"])
    full = parse_trace(Path(mirror) / "input.json", exp.jobs)
    first, n = CASE["first_minute"], CASE["minutes"]
    trace = Trace(exp.jobs, full.counts[first : first + n])
    forecaster = make_forecaster("default", train=training_data(Path(mirror).parent))
    out: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="faro-golden-") as tmp:
        for name in policies or CASE["policies"]:
            spec = load_policy_spec(root / "config" / "policies", name)
            context = {"unit_time": 60.0, "data_dir": str(Path(mirror).parent), "trace_scale": 1.0,
                       "seed": CASE["seed"], "forecaster": forecaster}
            policy = make_policy(spec["class"], spec.get("params", {}), jobs=exp.jobs, quota=CASE["quota"],
                                 context=context)
            res = simulate(exp, trace, policy, CASE["quota"], CASE["seed"], unit_time=60.0)
            req, rep = Path(tmp) / f"{name}.requests.parquet", Path(tmp) / f"{name}.replicas.parquet"
            write_requests(res.requests_frame(), req, {"golden": name})
            write_replicas(res.replicas_frame(), rep, {"golden": name})
            out[name] = {"requests": data_checksum(req), "replicas": data_checksum(rep)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m faro.backends.sim.golden",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", required=True, help="folder with the artifact's input.json and history")
    ap.add_argument("--project", default=".", help="project root (default: .)")
    ap.add_argument("--write", metavar="JSON", help="write {case, checksums} to this file")
    args = ap.parse_args(argv)
    sums = golden_checksums(args.project, args.mirror)
    doc = {"case": CASE, "checksums": sums}
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    if args.write:
        Path(args.write).write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
