"""The ``k8s`` backend behind the shared stage rules: run spec -> :class:`Session` -> the k8s stages.

The run spec (``rules/common.smk:get_run_spec``) maps onto a :class:`~faro.backends.k8s.config.Cell`
through the ``ray`` backend's own run config (:func:`faro.backends.ray.backend.ray_config`: jobs,
policy class and parameters, controller, service times), so both live backends run the same
autoscaler config; the ``k8s:`` config section becomes :class:`K8sSettings`.

Each stage records the session it works on in ``RUN/live/k8s_session.json`` (settings section,
cell, namespace, lease holder), so that :meth:`K8sBackend.alive` and :meth:`K8sBackend.teardown`
(which get no run spec, e.g. from ``snakemake teardown``) can reach the same namespace.
Records: the replayer's into ``RUN/raw/replayer/``, the autoscaler's into ``RUN/raw/autoscaler/``;
:meth:`K8sBackend.parse` reads them with the ``ray`` backend's parser (same formats).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from faro.backends.k8s import manifests as mf
from faro.backends.k8s import stages as k8s
from faro.backends.k8s.config import Cell, K8sSettings, settings_from_config

_STAGE_FN = {
    "quota": k8s.setup_quota,
    "clusters": k8s.deploy_clusters,
    "jobs": k8s.deploy_jobs,
    "autoscaler": k8s.launch_autoscaler,
    "replay": k8s.replay,
    "fetch": k8s.fetch_logs,
}
LIVE = "k8s_session.json"
#: keys of the ray backend's run config that the in-pod autoscaler reads (its endpoints come from the cell)
RUN_CONFIG_KEYS = ("jobs", "policy", "policy_params", "tick_s", "latency_window_s", "controller", "policy_context")


def data_files(run: dict[str, Any]) -> dict[str, Path]:
    """The policy's data files (e.g. a trained forecaster), relative to the data folder -> path."""
    from faro.workflow_support import policy_data

    root = Path(run.get("data_dir", "results/data"))
    out: dict[str, Path] = {}
    for f in map(Path, policy_data(run["policy_file"], str(root))):
        # a ``.done`` marker stands for the model folder it closes (e.g. the N-HiTS checkpoint)
        for p in sorted(f.parent.rglob("*")) if f.suffix == ".done" else [f]:
            if p.is_file():
                out[p.relative_to(root).as_posix()] = p
    return out


def cell_for(run: dict[str, Any]) -> Cell:
    """The run's cell: jobs, initial replicas, service times and the autoscaler's run config."""
    from faro.backends.ray.backend import ray_config
    from faro.backends.ray.stages import initial_replicas

    cfg = ray_config(run)
    jobs = tuple(j["name"] for j in cfg["jobs"])
    return Cell(quota=int(run["quota"]), policy=str(run["policy"]), seed=int(run["seed"]), jobs=jobs,
                policy_config={"class": cfg["policy"], "params": cfg["policy_params"]},
                slo_ms=float(cfg["jobs"][0]["slo_ms"]), unit_time=float(run["unit_time"]),
                initial=initial_replicas(cfg), services=dict(cfg["services"]),
                run_config={k: cfg[k] for k in RUN_CONFIG_KEYS},
                data_files=tuple(sorted(data_files(run))))


def _write_live(run_dir: Path, sess: k8s.Session, options: dict[str, Any]) -> None:
    c = sess.cell
    live = {"k8s": options, "namespace": sess.ns, "holder": sess.holder,
            "cell": {"quota": c.quota, "policy": c.policy, "seed": c.seed, "jobs": list(c.jobs)}}
    p = run_dir / "live" / LIVE
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(live, indent=1, sort_keys=True, default=str))


def live_session(run_dir: Path) -> k8s.Session | None:
    """The session recorded in ``RUN/live`` (enough to check and delete its namespace), or None."""
    p = Path(run_dir) / "live" / LIVE
    if not p.is_file():
        return None
    live = json.loads(p.read_text())
    s = settings_from_config(live["k8s"])
    c = live["cell"]
    cell = Cell(quota=c["quota"], policy=c["policy"], seed=c["seed"], jobs=tuple(c["jobs"]))
    return k8s.Session(k8s.client_for(s), s, cell, Path(run_dir) / "raw", holder=live["holder"])


class K8sBackend:
    decisions_file = "raw/autoscaler/decisions.parquet"
    name = "k8s"

    def settings(self, run: dict[str, Any]) -> K8sSettings:
        return settings_from_config(run.get("backend_options"))

    def session(self, run: dict[str, Any], run_dir: Path) -> k8s.Session:
        s = self.settings(run)
        return k8s.Session(k8s.client_for(s), s, cell_for(run), Path(run_dir) / "raw")

    def run_stage(self, stage: str, run: dict[str, Any], run_dir: Path, records: dict[str, dict]) -> dict:
        run_dir = Path(run_dir)
        sess = self.session(run, run_dir)
        _write_live(run_dir, sess, dict(run.get("backend_options") or {}))
        kw: dict[str, Any] = {}
        if stage == "quota":
            kw["trace_text"] = Path(run["trace_file"]).read_text()
            kw["data"] = {rel: p.read_bytes() for rel, p in data_files(run).items()}
        return k8s.guarded(_STAGE_FN[stage], sess, **kw)

    def alive(self, stage: str, run_dir: Path, record: dict) -> bool:
        sess = live_session(run_dir)
        if sess is None:
            return False
        ns = sess.kc.get("v1", "Namespace", sess.ns)
        if ns is None or (ns.get("status") or {}).get("phase") == "Terminating":
            return False
        if stage == "clusters":
            return all(sess.kc.get("ray.io/v1", "RayCluster", o["metadata"]["name"], sess.ns) is not None
                       for o in mf.cluster_objects(sess.cell, sess.s))
        if stage == "autoscaler":
            return sess.kc.get("apps/v1", "Deployment", mf.AUTOSCALER, sess.ns) is not None
        if stage == "replay":
            return (Path(run_dir) / "raw" / "replayer" / "requests.csv").is_file()
        return True

    def teardown(self, run_dir: Path, records: dict[str, dict]) -> dict:
        """Delete the recorded session's namespace and release its lease; a no-op without one."""
        sess = live_session(run_dir)
        if sess is None:
            return {"stage": "teardown", "backend": "k8s", "deleted": False, "note": "no k8s session recorded"}
        rec = k8s.teardown(sess)
        (Path(run_dir) / "live" / LIVE).unlink(missing_ok=True)
        return rec

    def parse(self, run: dict[str, Any], run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
        from faro.backends.ray.parse import replicas_frame, requests_frame
        from faro.experiment import load_experiment

        raw = Path(run_dir) / "raw"
        exp = load_experiment(run["experiment_file"])
        return (requests_frame(raw / "replayer" / "requests.csv", int(run["seed"])),
                replicas_frame(raw / "autoscaler" / "autoscaler.jsonl", list(exp.jobs)))
