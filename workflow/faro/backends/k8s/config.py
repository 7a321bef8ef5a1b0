"""Settings of the ``k8s`` backend and the naming rules it derives from them.

Everything that differs between clusters (kube context, image, namespace prefix,
resource sizes, timeouts, the commands the pods run) lives in :class:`K8sSettings`,
built from the ``k8s:`` section of the workflow config by :func:`settings_from_config`.
A :class:`Cell` is one (quota, policy, seed) run with its job names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

#: RFC 1123 label, the rule for namespace names and most object names
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

#: defaults of the serve application's model, docs/model.md section 3 (ResNet34 on one CPU)
SERVICE_TIME = {"shape": 0.42247119243841247, "loc": 0.07930158214998745, "scale": 0.06858078649769431}


def is_dns1123_label(name: str) -> bool:
    """True if ``name`` is a valid RFC 1123 label (<= 63 chars, [a-z0-9-], alnum at both ends)."""
    return len(name) <= 63 and bool(_DNS1123_LABEL.match(name))


def dns1123_label(text: str, max_len: int = 63) -> str:
    """Turn ``text`` into an RFC 1123 label: lowercase, ``_``/``.`` -> ``-``, other chars dropped.

    Raises ValueError when nothing valid is left or the result would exceed ``max_len``
    (silent truncation could make two cells share a namespace).
    """
    s = re.sub(r"[_.\s]+", "-", text.strip().lower())
    s = re.sub(r"[^a-z0-9-]", "", s)
    s = re.sub(r"-{2,}", "-", s).strip("-")
    if not s:
        raise ValueError(f"{text!r} has no character usable in a Kubernetes name")
    if len(s) > max_len:
        raise ValueError(f"{s!r} (from {text!r}) is longer than {max_len} characters")
    return s


def millis(quantity: str | int | float) -> int:
    """CPU quantity ("1", "250m", 0.5) -> millicores."""
    q = str(quantity).strip()
    if q.endswith("m"):
        return int(q[:-1])
    return round(float(q) * 1000)


_MEM_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9,
              "T": 10**12}


def mem_bytes(quantity: str | int) -> int:
    """Memory quantity ("512Mi", "2Gi", "1G", 1024) -> bytes."""
    q = str(quantity).strip()
    for unit in sorted(_MEM_UNITS, key=len, reverse=True):
        if q.endswith(unit):
            return int(float(q[: -len(unit)]) * _MEM_UNITS[unit])
    return int(q)


def cpu_quantity(m: int) -> str:
    """Millicores -> canonical quantity string ("18500m", or "4" when whole)."""
    return str(m // 1000) if m % 1000 == 0 else f"{m}m"


def mem_quantity(b: int) -> str:
    """Bytes -> quantity string in Mi (or Gi when whole)."""
    if b % 2**30 == 0:
        return f"{b // 2**30}Gi"
    if b % 2**20 == 0:
        return f"{b // 2**20}Mi"
    return str(b)


@dataclass(frozen=True)
class Resources:
    """Requests = limits of one container (Guaranteed QoS, and a quota on limits needs them)."""

    cpu: str
    memory: str

    def as_k8s(self) -> dict[str, dict[str, str]]:
        r = {"cpu": self.cpu, "memory": self.memory}
        return {"requests": dict(r), "limits": dict(r)}


@dataclass(frozen=True)
class K8sSettings:
    """The ``k8s:`` config section. Every field has a default that works on a stock cluster."""

    #: kubeconfig context (None: the current context) and file (None: $KUBECONFIG / ~/.kube/config)
    context: str | None = None
    kubeconfig: str | None = None
    #: API server URL used instead of the kubeconfig (e.g. ``kubectl proxy``'s http://127.0.0.1:8001;
    #: the API-contract tests point it at their stand-in)
    server: str | None = None
    namespace_prefix: str = "faro"
    #: image with the faro package and ray[serve] (built from the repo's Dockerfile)
    image: str = "faro:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: tuple[str, ...] = ()
    ray_version: str = "2.60.0"
    #: namespace that holds the Lease serialising sessions on this cluster (must exist)
    lock_namespace: str = "default"
    lock_name: str = "faro-session"
    lease_duration_s: int = 600
    field_manager: str = "faro"
    #: per-pod sizes; a worker is the unit of the quota (1 CPU = 1 Serve replica)
    worker: Resources = Resources("1", "1536Mi")
    #: a head runs GCS, dashboard, Serve controller, the HTTP proxy carrying all of its job's traffic,
    #: the Ray Client server and the metrics actor: sized in docs/k8s-runbook.md ("Head size")
    head: Resources = Resources("1", "5Gi")
    ray_autoscaler_sidecar: Resources = Resources("250m", "512Mi")
    autoscaler: Resources = Resources("4", "4Gi")
    replayer: Resources = Resources("2", "2Gi")
    #: bounds of each job's worker group (the namespace quota is the real cap)
    min_workers: int = 1
    max_workers: int = 100
    idle_timeout_s: int = 30
    #: Serve application (the ``ray`` backend's) and its arguments
    #: (an application per job, named after it, route ``/<job>``, as in faro.serving.serve_app.app_config)
    serve_import_path: str = "faro.serving.serve_app:build_app"
    serve_deployment: str = "classifier"
    serve_app_args: Mapping[str, Any] = field(
        default_factory=lambda: {"model": "emulated", "service": dict(SERVICE_TIME)})
    max_ongoing_requests: int = 4
    max_queued_requests: int = 50
    #: argv of the in-pod processes; {placeholders} are filled by manifests.pod_command
    #: (the ray backend's autoscaler and replayer CLIs; autoscaler.json and job_urls.json are in the
    #: ConfigMap)
    autoscaler_command: tuple[str, ...] = (
        "python", "-m", "faro.serving.autoscaler", "--config", "{config_dir}/autoscaler.json",
    )
    replayer_command: tuple[str, ...] = (
        "python", "-m", "faro.serving.replayer",
        "--trace", "{config_dir}/input.json",
        "--job-urls", "{config_dir}/job_urls.json",
        "--unit-time", "{unit_time}",
        "--seed", "{seed}",
        "--out", "{records_dir}",
    )
    #: waits (seconds)
    ready_timeout_s: float = 900.0
    #: seconds a pod may fail to be created (quota), to pull its image or keep crashing before the stage fails
    pending_grace_s: float = 120.0
    #: seconds a pod may stay Unschedulable before the stage fails: long enough for a node autoscaler
    #: (cluster-autoscaler, Karpenter, GKE/EKS node pools) to add a node; lower it on fixed-size clusters
    unschedulable_grace_s: float = 600.0
    replay_timeout_s: float = 8 * 3600.0
    teardown_timeout_s: float = 600.0
    #: how long the replay stage waits for the autoscaler to see the replay's end before releasing the
    #: replayer
    autoscaler_stop_timeout_s: float = 60.0
    lock_timeout_s: float = 3600.0
    poll_s: float = 5.0
    #: per-call timeout of an API request, and how long transient API / proxy errors (429, 5xx, timeouts,
    #: resets) are retried with backoff (capped at api_retry_max_backoff_s) before a stage gives up
    #: and leaves the cell running for a later reattach
    api_timeout_s: float = 60.0
    api_retry_grace_s: float = 600.0
    api_retry_max_backoff_s: float = 30.0
    #: seconds the replayer pod keeps serving its records after the replay ends
    replayer_hold_s: int = 3600
    #: times the autoscaler process is started again in its pod after a failure (it resumes from its records)
    autoscaler_restarts: int = 3

    def with_(self, **kw: Any) -> K8sSettings:
        return replace(self, **kw)


def settings_from_config(section: Mapping[str, Any] | None) -> K8sSettings:
    """Build settings from the config's ``k8s:`` mapping; unknown keys are an error."""
    section = dict(section or {})
    known = {f.name: f for f in fields(K8sSettings)}
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ValueError(f"unknown k8s settings: {unknown}; known: {sorted(known)}")
    kw: dict[str, Any] = {}
    for key, value in section.items():
        if key in {"worker", "head", "ray_autoscaler_sidecar", "autoscaler", "replayer"}:
            value = Resources(str(value["cpu"]), str(value["memory"]))
        elif key in {"image_pull_secrets", "autoscaler_command", "replayer_command"}:
            value = tuple(str(v) for v in value)
        kw[key] = value
    s = K8sSettings(**kw)
    dns1123_label(s.namespace_prefix, max_len=40)
    return s


@dataclass(frozen=True)
class Cell:
    """One live run: quota (worker CPUs), policy, seed, and the jobs (one Ray cluster each)."""

    quota: int
    policy: str
    seed: int
    jobs: tuple[str, ...]
    policy_config: Mapping[str, Any] = field(default_factory=dict)
    slo_ms: float = 720.0
    #: seconds per trace minute of the replay
    unit_time: float = 60.0
    #: Serve replicas per job at deployment (the policy's initial allocation; missing jobs: 1)
    initial: Mapping[str, int] = field(default_factory=dict)
    #: per-job service-time model of the Serve app (overrides ``serve_app_args["service"]``)
    services: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: the run's spec (faro.runspec.RunSpec.to_dict) that the in-pod autoscaler reads;
    #: manifests.autoscaler_config adds the per-job clusters (empty: no autoscaler.json)
    run_spec: Mapping[str, Any] = field(default_factory=dict)
    #: files under the data folder the policy reads (forecaster models), shipped in ConfigMap faro-data
    data_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.quota < len(self.jobs):
            raise ValueError(f"quota {self.quota} is below one worker per job ({len(self.jobs)} jobs)")
        if len(set(self.jobs)) != len(self.jobs) or not self.jobs:
            raise ValueError(f"job names must be unique and non-empty: {self.jobs}")


def namespace_name(prefix: str, quota: int, policy: str) -> str:
    """The cell's namespace, e.g. ``faro-32cpus-faro-sum``; a valid RFC 1123 label."""
    return dns1123_label(f"{prefix}-{int(quota)}cpus-{policy}")


def cluster_name(job: str) -> str:
    """The RayCluster name of a job (RFC 1123; KubeRay appends ``-head-svc`` etc., so <= 40)."""
    return dns1123_label(job, max_len=40)


def head_service(job: str) -> str:
    """KubeRay's head Service name for a RayCluster (``<name>-head-svc``)."""
    return f"{cluster_name(job)}-head-svc"


def jobs_from_trace(path: str | Path) -> tuple[str, ...]:
    """Job names of a trace in the artifact's JSON Lines format, in the file's order
    (:func:`faro.model.trace.parse_trace`, which checks the file)."""
    from faro.model.trace import parse_trace

    return parse_trace(path, file_order=True).jobs


def default_jobs(n: int) -> tuple[str, ...]:
    """The trace's job names ``serve-cluster0..n-1`` (used when no trace is given)."""
    return tuple(f"serve-cluster{i}" for i in range(n))


def overhead_millicpu(s: K8sSettings, n_jobs: int) -> int:
    """CPU the namespace needs besides the workers: heads (+ their Ray autoscaler sidecars),
    the faro autoscaler and the replayer (docs/model.md section 1: the artifact declared 17 CPUs
    for 10 jobs)."""
    per_head = millis(s.head.cpu) + millis(s.ray_autoscaler_sidecar.cpu)
    return n_jobs * per_head + millis(s.autoscaler.cpu) + millis(s.replayer.cpu)


def overhead_bytes(s: K8sSettings, n_jobs: int) -> int:
    per_head = mem_bytes(s.head.memory) + mem_bytes(s.ray_autoscaler_sidecar.memory)
    return n_jobs * per_head + mem_bytes(s.autoscaler.memory) + mem_bytes(s.replayer.memory)

