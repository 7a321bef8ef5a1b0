"""The ``k8s`` backend behind the shared stage rules: run spec -> :class:`Session` -> the k8s stages.

The run's :class:`~faro.runspec.RunSpec` maps onto a :class:`~faro.backends.k8s.config.Cell`
(:func:`cell_for`: jobs, initial replicas, service times, the policy's data files), and the
in-pod autoscaler reads the same spec as the ``ray`` backend's, with the pod's paths; the
``k8s:`` config section (``RunSpec.backend_options``) becomes :class:`K8sSettings`.

Each stage records the session it works on in ``RUN/live/k8s_session.json`` (settings section,
cell, namespace, lease holder), so that :meth:`K8sBackend.alive` and :meth:`K8sBackend.teardown`
(which get no run spec, e.g. from ``snakemake teardown``) can reach the same namespace.
Records: the replayer's into ``RUN/raw/replayer/``, the autoscaler's into ``RUN/raw/autoscaler/``;
:meth:`K8sBackend.parse` reads them with the ``ray`` backend's parser (same formats).

One source of manifests: :func:`cell_objects` (run spec -> cell -> objects) is what the stages
apply and what the ``k8s_manifests`` rule and ``python -m faro.workflow.k8s_cli manifests --run-spec``
write as YAML; the by-hand ``python -m faro.workflow.k8s_cli stage STAGE --run-spec ... --run-dir RUN``
runs the workflow's own stage runner on the same run spec.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faro.backends.k8s import manifests as mf
from faro.backends.k8s import session as k8s
from faro.backends.k8s.config import Cell, K8sSettings, settings_from_config
from faro.runspec import RunSpec

if TYPE_CHECKING:
    import pandas as pd

_STAGE_FN = {
    "quota": k8s.setup_quota,
    "clusters": k8s.deploy_clusters,
    "jobs": k8s.deploy_jobs,
    "autoscaler": k8s.launch_autoscaler,
    "replay": k8s.replay,
    "fetch": k8s.fetch_logs,
}
LIVE = "k8s_session.json"
#: written when a stage lost the API server for its whole retry grace: the session is kept for a
#: reattach, and only an explicit teardown (not Snakemake's onerror cleanup) may delete it
DETACHED = "k8s_detached.json"


def data_files(run: RunSpec) -> dict[str, Path]:
    """The policy's data files (e.g. a trained forecaster), relative to the data folder -> path."""
    root = Path(run.data_dir)
    out: dict[str, Path] = {}
    for f in map(Path, run.policy.data):
        # a ``.done`` marker stands for the model folder it closes (e.g. the N-HiTS checkpoint)
        for p in sorted(f.parent.rglob("*")) if f.suffix == ".done" else [f]:
            if p.is_file():
                out[p.relative_to(root).as_posix()] = p
    return out


def cell_for(run: RunSpec) -> Cell:
    """The run's cell: jobs, initial replicas, service times and the run spec the autoscaler reads."""
    return Cell(quota=run.quota, policy=run.policy.name, seed=run.seed, jobs=run.jobs,
                policy_config={"class": run.policy.cls, "params": dict(run.policy.params)},
                slo_ms=float(run.exp.job_models[0].slo_ms), unit_time=run.unit_time,
                initial=run.initial_replicas(), services=run.services(), run_spec=run.to_dict(),
                data_files=tuple(sorted(data_files(run))))


def stage_inputs(run: RunSpec) -> dict[str, Any]:
    """What setup_quota embeds in the session: the trace's text and the policy's data files."""
    trace = Path(run.trace_file)
    if not trace.is_file():
        raise FileNotFoundError(f"the run's trace {trace} does not exist yet: let Snakemake make it "
                                f"(its rule runs before setup_quota) or run the k8s_manifests rule first")
    return {"trace_text": trace.read_text(),
            "data": {rel: p.read_bytes() for rel, p in data_files(run).items()}}


def cell_objects(run: RunSpec, cell: Cell | None = None,
                 s: K8sSettings | None = None) -> list[dict[str, Any]]:
    """Every namespaced object the stages apply for this run, in apply order."""
    cell = cell or cell_for(run)
    s = s or settings_from_config(dict(run.backend_options))
    kw = stage_inputs(run)
    return mf.render_cell(cell, s, kw["trace_text"], kw["data"])


def load_run_spec(path: str | os.PathLike) -> RunSpec:
    run = RunSpec.read_json(path)
    if run.backend != "k8s":
        raise ValueError(f"{path}: a run spec of backend {run.backend!r}, not k8s")
    return run


def write_manifests(run: RunSpec, out: Path, ray_services: bool = False) -> list[Path]:
    """The run's objects as YAML (one file each, ``all.yaml``) plus the Lease, and ``run_spec.json``
    (input of the by-hand stage CLI) into ``out``."""
    cell, s = cell_for(run), settings_from_config(dict(run.backend_options))
    objs = cell_objects(run, cell, s)
    if ray_services:
        objs += [mf.ray_service(cell, s, j) for j in cell.jobs]
    objs.append(mf.lease(s, k8s.session_holder(cell, s), dt.datetime.now(dt.UTC)))
    paths = mf.write_yaml(objs, out)
    run.write_json(out / "run_spec.json")
    return paths


@contextlib.contextmanager
def _detaching(run_dir: Path, what: str) -> Iterator[None]:
    """Mark the run's session detached when the block loses the API server for its whole grace."""
    try:
        yield
    except BaseException as e:
        if k8s.keeps_session(e):
            p = Path(run_dir) / "live" / DETACHED
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps({"during": what, "error": str(e)[:1000]}, indent=1))
        raise


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

    def settings(self, run: RunSpec) -> K8sSettings:
        return settings_from_config(dict(run.backend_options))

    def session(self, run: RunSpec, run_dir: Path) -> k8s.Session:
        s = self.settings(run)
        return k8s.Session(k8s.client_for(s), s, cell_for(run), Path(run_dir) / "raw")

    def run_stage(self, stage: str, run: RunSpec, run_dir: Path, records: dict[str, dict]) -> dict:
        run_dir = Path(run_dir)
        sess = self.session(run, run_dir)
        _write_live(run_dir, sess, dict(run.backend_options))
        kw: dict[str, Any] = stage_inputs(run) if stage == "quota" else {}
        with _detaching(run_dir, stage):  # a failure is torn down by the stage runner, not here
            rec = _STAGE_FN[stage](sess, **kw)
        (run_dir / "live" / DETACHED).unlink(missing_ok=True)  # reattached
        return rec

    def alive(self, stage: str, run_dir: Path, record: dict) -> bool:
        sess = live_session(run_dir)
        if sess is None:
            return False
        with _detaching(Path(run_dir), f"check of {stage}"):
            return self._alive(sess, stage, run_dir)

    def _alive(self, sess: k8s.Session, stage: str, run_dir: Path) -> bool:
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
        """Delete the recorded session's namespace and release its lease; a no-op without one, and
        for a detached session (its API server was lost: kept for a reattach) unless released by an
        explicit teardown (:func:`release_detached`)."""
        sess = live_session(run_dir)
        if sess is None:
            return {"stage": "teardown", "backend": "k8s", "deleted": False,
                    "note": "no k8s session recorded"}
        detached = Path(run_dir) / "live" / DETACHED
        if detached.is_file():
            note = (f"session {sess.ns} is detached (its API server was unreachable; see {detached}): "
                    f"kept for a reattach; `snakemake teardown` deletes it")
            print(f"faro k8s: {note}", flush=True)
            return {"stage": "teardown", "backend": "k8s", "deleted": False, "namespace": sess.ns,
                    "note": note}
        rec = k8s.teardown(sess)
        (Path(run_dir) / "live" / LIVE).unlink(missing_ok=True)
        return rec

    @staticmethod
    def release_detached(root: str | os.PathLike) -> list[str]:
        """An explicit teardown of a results root: detached sessions may be deleted too."""
        out = []
        for p in sorted(Path(root).glob(f"*_cpus/*/seed_*/live/{DETACHED}")):
            p.unlink()
            out.append(str(p.parent.parent))
        return out

    def parse(self, run: RunSpec, run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
        from faro.serving.parse import replicas_frame, requests_frame

        raw = Path(run_dir) / "raw"
        return (requests_frame(raw / "replayer" / "requests.csv", run.seed),
                replicas_frame(raw / "autoscaler" / "autoscaler.jsonl", list(run.jobs)))
