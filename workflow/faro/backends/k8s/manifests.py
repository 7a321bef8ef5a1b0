"""Every Kubernetes object of a ``k8s`` session, rendered as plain dicts by pure functions.

One namespace per cell holds: a ResourceQuota (worker quota + declared overhead), a
ConfigMap with the cell's inputs (trace, the in-pod autoscaler's config, the replayer's
per-job URLs; a second one with the policy's data files), one KubeRay ``RayCluster`` per job
(head + one worker group of 1-CPU workers, in-tree autoscaling so Serve replicas become worker
pods that the quota caps), the faro autoscaler (ServiceAccount without token, Deployment: it
talks to the heads' dashboards and Ray Client servers by in-cluster DNS, never to the
Kubernetes API) and the replayer (ServiceAccount without token, Job, and a Service through
which the autoscaler reads the replay's start/end signals).  A ``coordination.k8s.io/v1``
Lease in the lock namespace serialises sessions on one cluster.

The stage code applies exactly what these functions return, and the tests validate every
object offline against the Kubernetes OpenAPI schemas and KubeRay's CRDs
(:mod:`faro.backends.k8s.validate`).

CLI: ``python -m faro.workflow.k8s_cli manifests --run-spec RUN/manifests/run_spec.json --out DIR``
writes a run's objects as YAML for inspection: the run spec the workflow's stage rules use
(``rules/common.smk:get_run_spec``, written by the ``k8s_manifests`` rule), turned into the same
cell by the same function (:func:`faro.backends.k8s.backend.cell_objects`), so the YAML is what the
stages apply.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from faro.backends.k8s.config import (
    Cell,
    K8sSettings,
    cluster_name,
    cpu_quantity,
    head_service,
    mem_bytes,
    mem_quantity,
    millis,
    namespace_name,
    overhead_bytes,
    overhead_millicpu,
)

Obj = dict[str, Any]

CONFIG_MAP = "faro-config"
DATA_CONFIG_MAP = "faro-data"
CONFIG_DIR = "/etc/faro"
DATA_DIR = "/data"
RECORDS_DIR = "/records"
RECORDS_PORT = 8080
AUTOSCALER = "faro-autoscaler"
REPLAYER = "faro-replayer"
DASHBOARD_PORT = 8265
SERVE_PORT = 8000
METRICS_PORT = 8080  # Ray's metrics export port on the head (Serve's Prometheus gauges)
CLIENT_PORT = 10001  # Ray Client server on the head (the autoscaler's metrics-actor connection)
CONFIG_MAP_LIMIT = 1_000_000  # bytes; the API server refuses ConfigMaps over 1 MiB


def _labels(cell: Cell, s: K8sSettings, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/part-of": "faro",
        "app.kubernetes.io/managed-by": s.field_manager,
        "app.kubernetes.io/component": component,
        "faro.io/quota": str(cell.quota),
        "faro.io/policy": cell.policy,
        "faro.io/seed": str(cell.seed),
    }


def _meta(name: str, ns: str | None, labels: Mapping[str, str], **extra: Any) -> Obj:
    m: Obj = {"name": name, "labels": dict(labels)}
    if ns is not None:
        m["namespace"] = ns
    m.update(extra)
    return m


def cell_namespace(cell: Cell, s: K8sSettings) -> str:
    return namespace_name(s.namespace_prefix, cell.quota, cell.policy)


def namespace(cell: Cell, s: K8sSettings) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": _meta(cell_namespace(cell, s), None, _labels(cell, s, "session"))}


def quota_totals(cell: Cell, s: K8sSettings) -> tuple[int, int]:
    """(millicores, bytes) the namespace may request: ``quota`` workers + declared overhead."""
    n = len(cell.jobs)
    cpu = cell.quota * millis(s.worker.cpu) + overhead_millicpu(s, n)
    mem = cell.quota * mem_bytes(s.worker.memory) + overhead_bytes(s, n)
    return cpu, mem


def resource_quota(cell: Cell, s: K8sSettings) -> Obj:
    """Caps requests and limits of CPU and memory; with a 1-CPU worker per Serve replica the
    quota is the number of replicas the cell can run (docs/model.md section 1)."""
    cpu, mem = quota_totals(cell, s)
    c, m = cpu_quantity(cpu), mem_quantity(mem)
    ann = {"faro.io/worker-quota-cpus": str(cell.quota),
           "faro.io/overhead-cpu": cpu_quantity(overhead_millicpu(s, len(cell.jobs)))}
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": _meta("faro-quota", cell_namespace(cell, s), _labels(cell, s, "quota"),
                              annotations=ann),
            "spec": {"hard": {"requests.cpu": c, "requests.memory": m, "limits.cpu": c, "limits.memory": m}}}


def serve_config(cell: Cell, s: K8sSettings, job: str) -> Obj:
    """Body of ``PUT /api/serve/applications/`` for one job's Ray cluster (the ray backend's app)."""
    args = json.loads(json.dumps(dict(s.serve_app_args)))
    args.update({"job": job, "seed": cell.seed})
    if job in cell.services:
        args["service"] = dict(cell.services[job])
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "0.0.0.0", "port": SERVE_PORT},
        "applications": [{
            "name": job,
            "route_prefix": f"/{job}",
            "import_path": s.serve_import_path,
            "args": args,
            "deployments": [{
                "name": s.serve_deployment,
                "num_replicas": int(cell.initial.get(job, 1)),
                "max_ongoing_requests": s.max_ongoing_requests,
                "max_queued_requests": s.max_queued_requests,
                "ray_actor_options": {"num_cpus": 1},
                "user_config": {"admission_rate": 1.0},
            }],
        }],
    }


def cluster_config(cell: Cell, s: K8sSettings) -> Obj:
    """What the in-cluster autoscaler and replayer need to find every job (in-cluster DNS)."""
    ns = cell_namespace(cell, s)
    return {
        "namespace": ns, "quota": cell.quota, "policy": cell.policy, "seed": cell.seed, "slo_ms": cell.slo_ms,
        "resource_quota": "faro-quota",
        "jobs": [{
            "name": job, "index": i, "ray_cluster": cluster_name(job),
            "dashboard_url": f"http://{head_service(job)}.{ns}.svc:{DASHBOARD_PORT}",
            "serve_url": f"http://{head_service(job)}.{ns}.svc:{SERVE_PORT}/{job}",
            "serve_app": job,
        } for i, job in enumerate(cell.jobs)],
    }


def head_url(cell: Cell, s: K8sSettings, job: str, port: int, scheme: str = "http") -> str:
    """In-cluster URL of a port of a job's head Service."""
    return f"{scheme}://{head_service(job)}.{cell_namespace(cell, s)}.svc:{port}"


def job_urls(cell: Cell, s: K8sSettings) -> dict[str, str]:
    """The replayer's ``--job-urls`` map: each job's route on its own cluster's Serve proxy."""
    return {job: f"{head_url(cell, s, job, SERVE_PORT)}/{job}" for job in cell.jobs}


def autoscaler_config(cell: Cell, s: K8sSettings) -> Obj:
    """The config file of ``python -m faro.serving.autoscaler`` inside the cluster: the run spec
    (``cell.run_spec``, with the pod's paths of the trace and the data folder) plus one cluster
    entry per job (its dashboard, Prometheus endpoint, Ray Client address and the Serve config
    ``deploy_jobs`` PUT) and the replay signals on the replayer's Service."""
    spec = json.loads(json.dumps(dict(cell.run_spec)))
    spec.update(trace_file=f"{CONFIG_DIR}/input.json", data_dir=DATA_DIR, project_root=".")
    return {
        "run": spec,
        "initial": {j: int(cell.initial.get(j, 1)) for j in cell.jobs},
        "run_dir": RECORDS_DIR, "raw_dir": RECORDS_DIR,
        "replay_signals_url": f"http://{REPLAYER}.{cell_namespace(cell, s)}.svc:{RECORDS_PORT}/files",
        "start_timeout_s": 2 * s.ready_timeout_s,
        "clusters": [{
            "jobs": [job],
            "dashboard_url": head_url(cell, s, job, DASHBOARD_PORT),
            "metrics_url": head_url(cell, s, job, METRICS_PORT) + "/metrics",
            "ray_address": head_url(cell, s, job, CLIENT_PORT, scheme="ray"),
            "serve_config": serve_config(cell, s, job),
        } for job in cell.jobs],
    }


def config_map(cell: Cell, s: K8sSettings, trace_text: str | None = None) -> Obj:
    data = {"cluster.json": json.dumps(cluster_config(cell, s), indent=1, sort_keys=True),
            "job_urls.json": json.dumps(job_urls(cell, s), indent=1, sort_keys=True),
            "policy.yaml": yaml.safe_dump({"name": cell.policy, **dict(cell.policy_config)}, sort_keys=True)}
    if cell.run_spec:
        data["autoscaler.json"] = json.dumps(autoscaler_config(cell, s), indent=1, sort_keys=True)
    if trace_text is not None:
        data["input.json"] = trace_text
    size = sum(len(v.encode()) for v in data.values())
    if size > CONFIG_MAP_LIMIT:
        raise ValueError(f"ConfigMap {CONFIG_MAP} would hold {size} bytes; the API limit is 1 MiB")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(CONFIG_MAP, cell_namespace(cell, s), _labels(cell, s, "config")), "data": data}


def data_key(rel: str) -> str:
    """ConfigMap key of a data file (keys may not hold ``/``): ``models/light.pkl`` ->
    ``models--light.pkl``."""
    return "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in rel.replace("/", "--"))


def data_config_map(cell: Cell, s: K8sSettings, contents: Mapping[str, bytes]) -> Obj:
    """The policy's data files (``cell.data_files``, relative to the data folder) as binaryData;
    mounted at ``/data`` in the autoscaler pod under their relative paths."""
    missing = sorted(set(cell.data_files) - set(contents))
    if missing:
        raise ValueError(f"no contents for the data files {missing}")
    size = sum(len(contents[r]) for r in cell.data_files)
    if size > CONFIG_MAP_LIMIT:
        raise ValueError(f"the policy's data files hold {size} bytes, over the 1 MiB ConfigMap limit: "
                         f"bake them into the image instead ({sorted(cell.data_files)})")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(DATA_CONFIG_MAP, cell_namespace(cell, s), _labels(cell, s, "data")),
            "binaryData": {data_key(r): base64.b64encode(contents[r]).decode() for r in cell.data_files}}


def _pull_secrets(s: K8sSettings) -> list[dict[str, str]]:
    return [{"name": n} for n in s.image_pull_secrets]


def _ray_cluster_spec(cell: Cell, s: K8sSettings, job: str) -> Obj:
    labels = {**_labels(cell, s, "ray"), "faro.io/job": cluster_name(job)}
    head_pod: Obj = {"metadata": {"labels": dict(labels)}, "spec": {
        "containers": [{
            "name": "ray-head", "image": s.image, "imagePullPolicy": s.image_pull_policy,
            "resources": s.head.as_k8s(),
            "ports": [{"name": "gcs-server", "containerPort": 6379},
                      {"name": "dashboard", "containerPort": DASHBOARD_PORT},
                      {"name": "client", "containerPort": CLIENT_PORT},
                      {"name": "serve", "containerPort": SERVE_PORT},
                      {"name": "metrics", "containerPort": METRICS_PORT}],
        }]}}
    worker_pod: Obj = {"metadata": {"labels": dict(labels)}, "spec": {
        "containers": [{"name": "ray-worker", "image": s.image, "imagePullPolicy": s.image_pull_policy,
                        "resources": s.worker.as_k8s()}]}}
    if s.image_pull_secrets:
        head_pod["spec"]["imagePullSecrets"] = _pull_secrets(s)
        worker_pod["spec"]["imagePullSecrets"] = _pull_secrets(s)
    max_workers = min(s.max_workers, cell.quota)
    return {
        "rayVersion": s.ray_version,
        "enableInTreeAutoscaling": True,
        "autoscalerOptions": {
            "upscalingMode": "Default",
            "idleTimeoutSeconds": s.idle_timeout_s,
            "imagePullPolicy": s.image_pull_policy,
            "resources": s.ray_autoscaler_sidecar.as_k8s(),
        },
        "headGroupSpec": {
            "serviceType": "ClusterIP",
            # no Serve replica on the head: every replica is a 1-CPU worker pod under the quota
            "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
            "template": head_pod,
        },
        "workerGroupSpecs": [{
            "groupName": "workers",
            "replicas": s.min_workers,
            "minReplicas": s.min_workers,
            "maxReplicas": max_workers,
            "rayStartParams": {"num-cpus": str(max(1, millis(s.worker.cpu) // 1000))},
            "template": worker_pod,
        }],
    }


def ray_cluster(cell: Cell, s: K8sSettings, job: str) -> Obj:
    """One job's KubeRay RayCluster; its Serve config rides along as an annotation for the record."""
    ann = {"faro.io/serve-config": json.dumps(serve_config(cell, s, job), sort_keys=True)}
    return {"apiVersion": "ray.io/v1", "kind": "RayCluster",
            "metadata": _meta(cluster_name(job), cell_namespace(cell, s),
                              {**_labels(cell, s, "ray"), "faro.io/job": cluster_name(job)}, annotations=ann),
            "spec": _ray_cluster_spec(cell, s, job)}


def ray_service(cell: Cell, s: K8sSettings, job: str) -> Obj:
    """The same job as a KubeRay RayService (cluster + Serve config in one object).

    The stages use RayCluster + the dashboard REST API (so the controller owns replica
    counts); this form is rendered and validated for clusters that prefer RayService.
    """
    cfg = serve_config(cell, s, job)
    return {"apiVersion": "ray.io/v1", "kind": "RayService",
            "metadata": _meta(cluster_name(job), cell_namespace(cell, s),
                              {**_labels(cell, s, "ray"), "faro.io/job": cluster_name(job)}),
            "spec": {"serveConfigV2": yaml.safe_dump(cfg, sort_keys=False),
                     "rayClusterConfig": _ray_cluster_spec(cell, s, job)}}


def pod_command(template: Sequence[str], cell: Cell, *, hold_s: int = 0, restarts: int = 0) -> list[str]:
    """argv of a faro pod: :mod:`podrun` (serves the records dir on :8080) around ``template``."""
    fill = {"config_dir": CONFIG_DIR, "records_dir": RECORDS_DIR, "seed": cell.seed,
            "quota": cell.quota, "policy": cell.policy, "unit_time": cell.unit_time}
    inner = [part.format(**fill) for part in template]
    again = ["--restarts", str(restarts)] if restarts else []
    return ["python", "-m", "faro.backends.k8s.podrun", "--dir", RECORDS_DIR, "--port", str(RECORDS_PORT),
            "--hold-seconds", str(hold_s), *again, "--"] + inner


def _faro_pod_spec(s: K8sSettings, sa: str, container: Obj, restart: str, automount: bool) -> Obj:
    spec: Obj = {
        "serviceAccountName": sa,
        "automountServiceAccountToken": automount,
        "restartPolicy": restart,
        "containers": [container],
        "volumes": [{"name": "config", "configMap": {"name": CONFIG_MAP}},
                    {"name": "records", "emptyDir": {}}],
    }
    if s.image_pull_secrets:
        spec["imagePullSecrets"] = _pull_secrets(s)
    return spec


def _faro_container(name: str, s: K8sSettings, command: list[str], res: Obj) -> Obj:
    return {
        "name": name, "image": s.image, "imagePullPolicy": s.image_pull_policy,
        "command": command, "resources": res,
        "env": [{"name": "FARO_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "PYTHONUNBUFFERED", "value": "1"}],
        "ports": [{"name": "records", "containerPort": RECORDS_PORT}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": RECORDS_PORT}, "periodSeconds": 5},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                         {"name": "records", "mountPath": RECORDS_DIR}],
    }


def service_account(cell: Cell, s: K8sSettings, name: str, automount: bool) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": _meta(name, cell_namespace(cell, s), _labels(cell, s, name)),
            "automountServiceAccountToken": automount}


def autoscaler_deployment(cell: Cell, s: K8sSettings) -> Obj:
    labels = _labels(cell, s, AUTOSCALER)
    sel = {"app.kubernetes.io/part-of": "faro", "app.kubernetes.io/component": AUTOSCALER}
    # the pod keeps serving its records after the process ends (until the namespace goes):
    # fetch_logs reads them; a process that fails is started again in the same records folder
    # (it resumes from its decision log), up to autoscaler_restarts times
    hold = int(s.replay_timeout_s) + s.replayer_hold_s
    container = _faro_container("autoscaler", s, pod_command(s.autoscaler_command, cell, hold_s=hold,
                                                             restarts=s.autoscaler_restarts),
                                s.autoscaler.as_k8s())
    spec = _faro_pod_spec(s, AUTOSCALER, container, "Always", False)  # no API access: no token
    if cell.data_files:
        spec["volumes"].append({"name": "data", "configMap": {
            "name": DATA_CONFIG_MAP, "items": [{"key": data_key(r), "path": r} for r in cell.data_files]}})
        container["volumeMounts"].append({"name": "data", "mountPath": DATA_DIR, "readOnly": True})
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": _meta(AUTOSCALER, cell_namespace(cell, s), labels),
            "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": sel},
                     "template": {"metadata": {"labels": labels}, "spec": spec}}}


def replayer_job(cell: Cell, s: K8sSettings) -> Obj:
    labels = _labels(cell, s, REPLAYER)
    cmd = pod_command(s.replayer_command, cell, hold_s=s.replayer_hold_s)
    container = _faro_container("replayer", s, cmd, s.replayer.as_k8s())
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": _meta(REPLAYER, cell_namespace(cell, s), labels),
            "spec": {"backoffLimit": 0,
                     "activeDeadlineSeconds": int(s.replay_timeout_s) + s.replayer_hold_s,
                     "template": {"metadata": {"labels": labels},
                                  "spec": _faro_pod_spec(s, REPLAYER, container, "Never", False)}}}


def replayer_service(cell: Cell, s: K8sSettings) -> Obj:
    """The replayer pod's record server in the namespace: the autoscaler polls its
    ``replay_start.json`` / ``replay_end.json`` here (they live in another pod)."""
    sel = {"app.kubernetes.io/part-of": "faro", "app.kubernetes.io/component": REPLAYER}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _meta(REPLAYER, cell_namespace(cell, s), _labels(cell, s, REPLAYER)),
            "spec": {"type": "ClusterIP", "selector": sel,
                     "ports": [{"name": "records", "port": RECORDS_PORT, "targetPort": RECORDS_PORT}]}}


def micro_time(t: dt.datetime) -> str:
    """Kubernetes MicroTime (RFC 3339, microseconds, UTC)."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease(s: K8sSettings, holder: str, now: dt.datetime, transitions: int = 0) -> Obj:
    """The session lock: held by ``holder`` for ``lease_duration_s`` from ``now``."""
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": s.lock_name, "namespace": s.lock_namespace,
                         "labels": {"app.kubernetes.io/part-of": "faro"}},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": int(s.lease_duration_s),
                     "acquireTime": micro_time(now), "renewTime": micro_time(now),
                     "leaseTransitions": transitions}}


def quota_objects(cell: Cell, s: K8sSettings, trace_text: str | None = None,
                  data: Mapping[str, bytes] | None = None) -> list[Obj]:
    objs = [namespace(cell, s), resource_quota(cell, s), config_map(cell, s, trace_text)]
    if cell.data_files:
        objs.append(data_config_map(cell, s, data or {}))
    return objs


def cluster_objects(cell: Cell, s: K8sSettings) -> list[Obj]:
    return [ray_cluster(cell, s, j) for j in cell.jobs]


def autoscaler_objects(cell: Cell, s: K8sSettings) -> list[Obj]:
    return [service_account(cell, s, AUTOSCALER, False), autoscaler_deployment(cell, s)]


def replayer_objects(cell: Cell, s: K8sSettings) -> list[Obj]:
    return [service_account(cell, s, REPLAYER, False), replayer_service(cell, s), replayer_job(cell, s)]


def render_cell(cell: Cell, s: K8sSettings, trace_text: str | None = None,
                data: Mapping[str, bytes] | None = None) -> list[Obj]:
    """Every namespaced object of the cell, in apply order (the stages apply these groups)."""
    return (quota_objects(cell, s, trace_text, data) + cluster_objects(cell, s)
            + autoscaler_objects(cell, s) + replayer_objects(cell, s))


class _NoAliasDumper(yaml.SafeDumper):
    """Plain YAML for kubectl and humans: no &anchors/*aliases for repeated dicts."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_yaml(objs: Sequence[Obj], out: Path) -> list[Path]:
    """One numbered YAML file per object plus ``all.yaml``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, o in enumerate(objs):
        p = out / f"{i:02d}-{o['kind'].lower()}-{o['metadata']['name']}.yaml"
        p.write_text(yaml.dump(o, Dumper=_NoAliasDumper, sort_keys=False))
        paths.append(p)
    allp = out / "all.yaml"
    allp.write_text(yaml.dump_all(objs, Dumper=_NoAliasDumper, sort_keys=False))
    return paths + [allp]
