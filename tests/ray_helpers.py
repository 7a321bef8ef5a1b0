"""Shared helpers of the ray backend tests (not a test module)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from faro.runspec import PolicySpec, RunSpec

TESTS = str(Path(__file__).resolve().parent)
PROJECT = Path(__file__).resolve().parents[1]


def write_trace(path: Path, minutes: list[dict[str, int]]) -> str:
    path.write_text("".join(json.dumps({"ts": k, "counts": {j: {"classifier": n} for j, n in m.items()}})
                            + "\n" for k, m in enumerate(minutes)))
    return str(path)


def run_config(tmp: Path, minutes: list[dict[str, int]], *, unit_time: float = 5.0, quota: int = 4,
               state_dir: Path | None = None, backend: str = "ray") -> RunSpec:
    """A short live run of the jobs in ``minutes`` (the local_small experiment's models, jobs
    served in job order), the test policy :mod:`ray_tiny_policy`, this machine's Ray options."""
    jobs = sorted({j for m in minutes for j in m})
    exp = yaml.safe_load((PROJECT / "experiments/local_small/experiment.yaml").read_text())
    exp.update(name="ray_test", trace={"file": "trace.json"}, jobs={"names": jobs, "model": "resnet34"})
    exp["controller"].update(upscale_order="job", tick_s=10.0, latency_window_s=30.0)
    return RunSpec(experiment=exp, backend=backend, quota=quota, seed=42,
                   policy=PolicySpec("tiny", "ray_tiny_policy:TinyReactive"), unit_time=unit_time,
                   trace_file=write_trace(tmp / "trace.json", minutes), results=str(tmp),
                   data_dir=str(tmp / "data"), project_root=str(PROJECT),
                   backend_options={"state_dir": str(state_dir or (tmp / "state")),
                                    "extra_pythonpath": [TESTS], "startup_timeout_s": 120})


def parse_to_parquet(run_dir: Path, run: RunSpec) -> dict:
    """The workflow's parse step of a live run: the backend's parser, the schema's writers."""
    from faro.backends.base import get_backend
    from faro.model.schema import write_replicas, write_requests

    req, rep = get_backend(run.backend).parse(run, Path(run_dir))
    prov = {"backend": run.backend, "seed": run.seed}
    write_requests(req, Path(run_dir) / "requests.parquet", prov)
    write_replicas(rep, Path(run_dir) / "replicas.parquet", prov)
    return {"requests": len(req), "failed": int((~req["succeeded"]).sum()), "replica_rows": len(rep)}


def leftover(head: dict) -> list[int]:
    from faro.backends.ray import cluster

    return cluster.run_pids(head["token"], head["temp_dir"])
