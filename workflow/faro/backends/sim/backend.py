"""The ``sim`` backend: every stage of a run, against the built-in simulator.

The deploy stages resolve and record the specifications the simulator consumes
(the quota, each job's cluster and Serve deployment, the autoscaler's policy);
the replay stage runs the simulation and writes its logs to the run's ``live/``
folder (the simulated cluster's log directory); fetch moves them into ``raw/``;
teardown removes what is left.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from faro.atomic import atomic_path

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from faro.runspec import RunSpec

LIVE = "live"
RAW = "raw"
REQUESTS = "requests.npz"
REPLICAS = "replicas.npy"
DECISIONS = "decisions.jsonl"
#: the decision records (faro.control.records), one row per job and tick
RECORDS = "decisions.parquet"
SUMMARY = "summary.json"


class SimBackend:
    decisions_file = "raw/decisions.parquet"
    name = "sim"

    def run_stage(self, stage: str, run: RunSpec, run_dir: Path, records: dict[str, dict]) -> dict:
        exp = run.exp
        if stage == "quota":
            return {"namespace_quota_cpus": run.quota, "node_cpus": run.quota,
                    "overhead_cpus": exp.cluster.overhead_cpus}
        if stage == "clusters":
            c = exp.cluster
            return {
                "clusters": [
                    {"name": j, "worker_cpu": c.cpu_per_replica, "min_workers": c.min_replicas,
                     "max_workers": c.max_replicas, "idle_timeout_s": c.idle_timeout_s,
                     "monitor_interval_s": c.monitor_interval_s}
                    for j in exp.jobs
                ]
            }
        if stage == "jobs":
            c = exp.cluster
            return {
                "deployments": [
                    {"job": j, "route": f"/{j}", "model": m.name, "slo_ms": m.slo_ms,
                     "processing_ms": m.processing_ms, "service_time": m.service_time.__dict__,
                     "max_ongoing_requests": c.max_ongoing_requests,
                     "max_queued_requests": c.max_queued_requests}
                    for j, m in zip(exp.jobs, exp.job_models, strict=True)
                ],
                "router": exp.router.__dict__,
            }
        if stage == "autoscaler":
            return {
                "policy": run.policy.name,
                "class": run.policy.cls,
                "params": dict(run.policy.params),
                "initial_replicas": run.initial_replicas(),
                "controller": exp.controller.__dict__,
            }
        if stage == "replay":
            return self._replay(run, run_dir)
        if stage == "fetch":
            return self._fetch(run_dir)
        raise ValueError(f"sim backend: no stage {stage!r}")

    def _replay(self, run: RunSpec, run_dir: Path) -> dict:
        import numpy as np

        from faro.backends.sim.engine import simulate
        from faro.control.records import DecisionRecorder
        from faro.model.trace import parse_trace
        from faro.policies.explain import instrument

        exp = run.exp
        trace = parse_trace(run.trace_file, exp.jobs)
        policy = run.build_policy(trace.counts)
        recorder = DecisionRecorder(run.policy.name, instrument(policy))
        res = simulate(exp, trace, policy, run.quota, run.seed, unit_time=run.unit_time,
                       replica_overhead_s=float(run.option("replica_overhead_ms", 0.0)) / 1000.0,
                       recorder=recorder)
        live = run_dir / LIVE
        live.mkdir(parents=True, exist_ok=True)
        recorder.flush(live / RECORDS)
        _save_npz(live / REQUESTS, job=res.job, arrival=res.arrival, start=res.start, end=res.end,
                  status=res.status, jobs=np.array(res.jobs))
        _save_npy(live / REPLICAS, res.replica_log)
        with open(live / DECISIONS, "w") as fh:
            for d in res.decisions:
                fh.write(json.dumps(d, default=float) + "\n")
        summary = {"requests": int(len(res.job)), **res.info}
        (live / SUMMARY).write_text(json.dumps(summary, indent=1))
        return {"live_dir": LIVE, **summary}

    def _fetch(self, run_dir: Path) -> dict:
        live, raw = run_dir / LIVE, run_dir / RAW
        raw.mkdir(parents=True, exist_ok=True)
        files = {}
        for name in (REQUESTS, REPLICAS, DECISIONS, RECORDS, SUMMARY):
            src = live / name
            if src.is_file():
                os.replace(src, raw / name)
            elif not (raw / name).is_file():
                raise FileNotFoundError(f"{src}: the replay's log is missing; rerun the replay stage")
            files[name] = (raw / name).stat().st_size
        return {"raw_dir": RAW, "files": files}

    def alive(self, stage: str, run_dir: Path, record: dict) -> bool:
        if stage == "replay":
            return (run_dir / LIVE / REQUESTS).is_file() or (run_dir / RAW / REQUESTS).is_file()
        return True

    def teardown(self, run_dir: Path, records: dict[str, dict]) -> dict:
        live = run_dir / LIVE
        existed = live.exists()
        shutil.rmtree(live, ignore_errors=True)
        return {"removed": [str(live)] if existed else []}

    def parse(self, run: RunSpec, run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
        import numpy as np

        raw = run_dir / RAW
        with np.load(raw / REQUESTS) as z:
            jobs = [str(j) for j in z["jobs"]]
            job, arrival, start, end, status = z["job"], z["arrival"], z["start"], z["end"], z["status"]
        from faro.backends.sim.frames import replicas_frame, requests_frame

        requests = requests_frame(jobs, run.seed, job, arrival, start, end, status)
        return requests, replicas_frame(jobs, np.load(raw / REPLICAS))


def _save_npz(path: Path, **arrays) -> None:
    import numpy as np

    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    import numpy as np

    with atomic_path(path) as tmp:
        np.save(tmp, arr)
