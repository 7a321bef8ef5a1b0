"""The ``ray`` backend behind the shared stage rules: run spec -> this backend's stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from faro.backends.ray import cluster
from faro.backends.ray import session as ray_stages
from faro.workflow.config import load_policy_file
from faro.model.experiment import load_experiment
from faro.policies.context import policy_context

_STAGE_FN = {
    "quota": ray_stages.setup_quota,
    "clusters": ray_stages.deploy_clusters,
    "jobs": ray_stages.deploy_jobs,
    "autoscaler": ray_stages.launch_autoscaler,
    "replay": ray_stages.replay,
    "fetch": ray_stages.fetch_logs,
}


def ray_config(run: dict[str, Any]) -> dict[str, Any]:
    """The ray stages' run config, resolved from the workflow's run spec."""
    exp = load_experiment(run["experiment_file"])
    spec = load_policy_file(run["policy"], Path(run["policy_file"]).parent)
    opts = dict(run.get("backend_options") or {})
    ctl = exp.controller
    return {
        "seed": int(run["seed"]),
        "quota": int(run["quota"]),
        "overhead_cpus": exp.cluster.overhead_cpus,
        "policy": spec["class"],
        "policy_params": spec["params"],
        "jobs": [{"name": j, "slo_ms": m.slo_ms, "processing_ms": m.processing_ms}
                 for j, m in zip(exp.jobs, exp.job_models, strict=True)],  # fmt: skip
        "trace_path": run["trace_file"],
        "unit_time": float(run["unit_time"]),
        "tick_s": ctl.tick_s,
        "latency_window_s": ctl.latency_window_s,
        "model": opts.get("model", "emulated"),
        "service": exp.job_models[0].service_time.__dict__,
        "services": {j: m.service_time.__dict__ for j, m in zip(exp.jobs, exp.job_models, strict=True)},
        "controller": {"downscale_busy_s": ctl.downscale_busy_s, "upscale_order": ctl.upscale_order,
                       "batch_upscale_order": ctl.batch_upscale_order,
                       "min_replicas": exp.cluster.min_replicas, "max_replicas": exp.cluster.max_replicas},  # fmt: skip
        "ray": {"deploy_timeout_s": float(opts.get("startup_timeout_s", 180))},
        "policy_context": policy_context(run, exp),
    }


class RayBackend:
    decisions_file = "raw/decisions.parquet"
    name = "ray"

    def run_stage(self, stage: str, run: dict[str, Any], run_dir: Path, records: dict[str, dict]) -> dict:
        return _STAGE_FN[stage](run_dir, ray_config(run))

    def alive(self, stage: str, run_dir: Path, record: dict) -> bool:
        if stage == "replay":
            return (run_dir / "raw" / "requests.csv").is_file()
        head = cluster.load_record(run_dir)
        if head is None:
            return False
        try:
            cluster.health(head, driver_check=False)
        except RuntimeError:
            return False
        if stage == "autoscaler":
            return ray_stages._autoscaler_alive(ray_stages._read_live(run_dir, "autoscaler.json"))
        if stage == "jobs":
            return ray_stages._read_live(run_dir, "jobs.json") is not None
        return True

    def teardown(self, run_dir: Path, records: dict[str, dict]) -> dict:
        return ray_stages.teardown(run_dir)

    def cleanup_leftovers(self) -> list[dict]:
        """Stop Ray heads recorded in the state directory whose runs never tore down."""
        return cluster.teardown_all(cluster.DEFAULT_STATE_DIR)

    def parse(self, run: dict[str, Any], run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
        from faro.serving.parse import replicas_frame, requests_frame

        raw = run_dir / "raw"
        exp = load_experiment(run["experiment_file"])
        return requests_frame(raw / "requests.csv", int(run["seed"])), replicas_frame(raw / "autoscaler.jsonl", list(exp.jobs))
