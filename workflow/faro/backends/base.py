"""What every backend implements: the stages of one run, plus parsing its logs.

A run is (experiment, backend, quota, policy, seed).  Its stages run in this
order, each writing a JSON record.  On a live backend each stage is its own Snakemake
job: it records the state it creates (addresses, pids, namespaces) so that later stages
can check it is still there, and :func:`faro.workflow.stage_runner.run_stage` rebuilds a
session whose state is gone instead of replaying against nothing.  A backend without live
state (the simulator) runs the whole chain in one job, the replay rule's
(:func:`faro.workflow.stage_runner.run_chain`): the same stages and records, one interpreter.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pandas is heavy; the light stages never need it
    import pandas as pd

    from faro.runspec import RunSpec

STAGES = ("quota", "clusters", "jobs", "autoscaler", "replay", "fetch", "teardown")
#: stages whose recorded state lives outside the run folder until teardown
SESSION_STAGES = ("quota", "clusters", "jobs", "autoscaler", "replay")


class Backend(Protocol):
    name: str

    def run_stage(self, stage: str, run: RunSpec, run_dir: Path, records: dict[str, dict]) -> dict[str, Any]:
        """Do ``stage`` for ``run``; ``records`` holds the earlier stages' records. Returns the state."""
        ...

    def alive(self, stage: str, run_dir: Path, record: dict[str, Any]) -> bool:
        """Is the live state that ``stage`` created (per its record) still there?"""
        ...

    def teardown(self, run_dir: Path, records: dict[str, dict]) -> dict[str, Any]:
        """Remove everything this run created; idempotent."""
        ...

    def parse(self, run: RunSpec, run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The run's raw logs -> (requests, replicas) frames in the schema's columns."""
        ...

    #: the decision records (faro.control.records) in the run's raw folder, relative to the run
    decisions_file: str


#: the backends by name: "module:class", imported only when asked for (a registry, not imports,
#: so that this module depends on no backend and the backends may import it)
BACKENDS = {
    "sim": "faro.backends.sim.backend:SimBackend",
    "ray": "faro.backends.ray.backend:RayBackend",
    "k8s": "faro.backends.k8s.backend:K8sBackend",
}
#: backends whose sessions hold live resources (processes, a cluster's namespace): their runs
#: go one after another (each run's first stage waits for the previous run's teardown), and
#: each stage is a job of its own; the others run every stage of a run in its replay job
LIVE_BACKENDS = {"sim": False, "ray": True, "k8s": True}


def get_backend(name: str) -> Backend:
    import importlib

    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r} ({', '.join(BACKENDS)})")
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()
