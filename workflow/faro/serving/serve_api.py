"""Small clients for Ray Serve's REST API (dashboard) and Ray's Prometheus endpoint."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from faro.serving.serve_app import DEPLOYMENT


def put_config(dashboard_url: str, config: dict[str, Any], timeout: float = 30.0) -> None:
    """``PUT /api/serve/applications/``: declarative deploy/update (num_replicas and user_config
    changes are applied in place, without restarting existing replicas)."""
    req = urllib.request.Request(
        dashboard_url.rstrip("/") + "/api/serve/applications/",
        data=json.dumps(config).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        if r.status != 200:
            raise RuntimeError(f"Serve REST PUT answered {r.status}")


def get_details(dashboard_url: str, timeout: float = 10.0) -> dict[str, Any]:
    with urllib.request.urlopen(dashboard_url.rstrip("/") + "/api/serve/applications/", timeout=timeout) as r:
        return json.load(r)


def answers(dashboard_url: str, timeout: float = 2.0) -> bool:
    """Does the cluster's dashboard answer at all (``GET /api/version``)?"""
    try:
        with urllib.request.urlopen(dashboard_url.rstrip("/") + "/api/version", timeout=timeout) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001 - any failure means "not now"
        return False


def job_states(details: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per application: status, target replicas, ids (and pids) of RUNNING replicas, other states."""
    out = {}
    for name, app in (details.get("applications") or {}).items():
        dep = (app.get("deployments") or {}).get(DEPLOYMENT, {})
        reps = dep.get("replicas") or []
        running = [r for r in reps if r.get("state") == "RUNNING"]
        out[name] = {
            "status": app.get("status"),
            "target": int(dep.get("target_num_replicas") or 0),
            "running": sorted(r["replica_id"] for r in running),
            "pids": {r["replica_id"]: r.get("pid") for r in running},
            "starting": sum(1 for r in reps
                            if r.get("state") in ("STARTING", "PENDING_MIGRATION", "RECOVERING")),
        }
    return out


#: Serve's own autoscaler's gauges (a deployment with an autoscaling_config), per application:
#: the look-back total of ongoing requests it decided on, and its decision before the bounds
NATIVE_GAUGES = {"ray_serve_autoscaling_total_requests": "serve_total_requests",
                 "ray_serve_autoscaling_desired_replicas": "serve_desired_replicas"}

_LINE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str, names: set[str]) -> list[tuple[str, dict[str, str], float]]:
    """(metric, labels, value) of the samples of ``names`` in a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        m = _LINE.match(line)
        if not m or m.group("name") not in names:
            continue
        try:
            v = float(m.group("value"))
        except ValueError:
            continue
        out.append((m.group("name"), dict(_LABEL.findall(m.group("labels"))), v))
    return out


def serve_prometheus(metrics_port: int, timeout: float = 3.0) -> dict[str, dict[str, float]]:
    """Per application: head queue (``ray_serve_deployment_queued_queries``) and the cumulative
    count of HTTP 503 answers (``ray_serve_num_http_requests_total``); with native autoscaling
    also Serve's own gauges (:data:`NATIVE_GAUGES`).  Serve pushes these every
    few seconds, so they lag; empty dict if the endpoint does not answer."""
    return serve_prometheus_url(f"http://127.0.0.1:{metrics_port}/metrics", timeout)


def serve_prometheus_url(url: str, timeout: float = 3.0) -> dict[str, dict[str, float]]:
    """:func:`serve_prometheus` for a full metrics URL (a k8s head service's ``:8080/metrics``)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            text = r.read().decode(errors="replace")
    except Exception:
        return {}
    out: dict[str, dict[str, float]] = {}
    for name, labels, v in parse_prometheus(
        text, {"ray_serve_deployment_queued_queries", "ray_serve_num_http_requests_total", *NATIVE_GAUGES}
    ):
        app = labels.get("application", "")
        if not app:
            continue
        d = out.setdefault(app, {"head_queue": 0.0, "rejected_total": 0.0})
        if name == "ray_serve_deployment_queued_queries":
            d["head_queue"] += v
        elif name in NATIVE_GAUGES:
            d[NATIVE_GAUGES[name]] = v
        elif labels.get("status_code") == "503":
            d["rejected_total"] += v
    return out
