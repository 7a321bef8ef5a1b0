"""Shared helpers of the ray backend tests (not a test module)."""

from __future__ import annotations

import json
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent)


def write_trace(path: Path, minutes: list[dict[str, int]]) -> str:
    path.write_text("".join(json.dumps({"ts": k, "counts": {j: {"classifier": n} for j, n in m.items()}}) + "\n"
                            for k, m in enumerate(minutes)))
    return str(path)


def run_config(tmp: Path, minutes: list[dict[str, int]], *, unit_time: float = 5.0, quota: int = 4,
               state_dir: Path | None = None) -> dict:
    jobs = sorted({j for m in minutes for j in m})
    return {
        "seed": 42,
        "quota": quota,
        "overhead_cpus": 0,
        "policy": "ray_tiny_policy:TinyReactive",
        "policy_params": {},
        "jobs": [{"name": j, "slo_ms": 720.0, "processing_ms": 180.0} for j in jobs],
        "trace_path": write_trace(tmp / "trace.json", minutes),
        "unit_time": unit_time,
        "tick_s": 10.0,
        "model": "emulated",
        "service": {},
        "controller": {"upscale_order": "job"},
        "ray": {"state_dir": str(state_dir or (tmp / "state")), "extra_pythonpath": [TESTS],
                "deploy_timeout_s": 120},
    }


def leftover(head: dict) -> list[int]:
    from faro.backends.ray import cluster

    return cluster.run_pids(head["token"], head["temp_dir"])
