"""The ``ray`` backend behind the shared stage rules: the run spec -> this backend's stages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from faro.backends.ray import cluster
from faro.backends.ray import session as ray_stages

if TYPE_CHECKING:
    import pandas as pd

    from faro.runspec import RunSpec

_STAGE_FN = {
    "quota": ray_stages.setup_quota,
    "clusters": ray_stages.deploy_clusters,
    "jobs": ray_stages.deploy_jobs,
    "autoscaler": ray_stages.launch_autoscaler,
    "replay": ray_stages.replay,
    "fetch": ray_stages.fetch_logs,
}


class RayBackend:
    decisions_file = "raw/decisions.parquet"
    name = "ray"

    def run_stage(self, stage: str, run: RunSpec, run_dir: Path, records: dict[str, dict]) -> dict:
        return _STAGE_FN[stage](run_dir, run)

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

    def parse(self, run: RunSpec, run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
        from faro.serving.parse import replicas_frame, requests_frame

        raw = run_dir / "raw"
        return (requests_frame(raw / "requests.csv", run.seed),
                replicas_frame(raw / "autoscaler.jsonl", list(run.jobs)))
