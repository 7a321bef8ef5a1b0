"""The Ray Serve application of one job (route ``/<job>``).

One deployment ``classifier`` per application.  Deployment options (set in the
declarative config built by :func:`app_config`): 1 logical CPU per replica,
``max_ongoing_requests=4`` (a replica holds at most 4 requests: 1 in service,
3 waiting inside it) and ``max_queued_requests=50`` (the proxy's queue for the
deployment; Serve answers HTTP 503 beyond it, Ray 2.60 ``BackpressureConfig``
default).

The model is, by default, an *emulation*: each request holds the replica's
single service slot (an ``asyncio.Lock``) for a service time drawn from
``loc + scale * lognormal(0, shape)`` seconds and then answers, so one replica
behaves like a 1-CPU model while burning no CPU, and a 2-core machine can host
dozens of replicas.  ``model: resnet`` runs a small ResNet-like torch module
with random weights instead (torch imported lazily; for machines with the
cores for it).

Admission control (Penalty policies): ``user_config.admission_rate`` (0..1),
changed at runtime through the declarative config without restarting replicas;
a request is dropped with probability ``1 - rate`` as soon as it enters the
replica, answered with HTTP 503 and body ``admission``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import zlib
from typing import Any

import numpy as np
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from faro.serving.metrics import ACTOR_NAME, NAMESPACE

DEPLOYMENT = "classifier"
MAX_ONGOING = 4
MAX_QUEUED = 50
SENT_HEADER = "x-faro-sent"


def _resnet_like():  # pragma: no cover - needs torch and cores
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.b1 = nn.BatchNorm2d(c)
            self.c2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.b2 = nn.BatchNorm2d(c)

        def forward(self, x):
            y = torch.relu(self.b1(self.c1(x)))
            return torch.relu(x + self.b2(self.c2(y)))

    torch.set_num_threads(1)
    net = nn.Sequential(
        nn.Conv2d(3, 32, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
        *[Block(32) for _ in range(4)],
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 1000),
    ).eval()
    x = torch.randn(1, 3, 224, 224)

    def run() -> None:
        with torch.no_grad():
            net(x)

    return run


@serve.deployment(
    name=DEPLOYMENT,
    ray_actor_options={"num_cpus": 1},
    max_ongoing_requests=MAX_ONGOING,
    max_queued_requests=MAX_QUEUED,
)
class Classifier:
    def __init__(self, job: str, model: str = "emulated", service: dict | None = None, seed: int = 0) -> None:
        self.job = job
        self.model = model
        svc = dict(service or {})
        self.shape = float(svc.get("shape", 0.42247119243841247))
        self.loc = float(svc.get("loc", 0.07930158214998745))
        self.scale = float(svc.get("scale", 0.06858078649769431))
        ctx = serve.get_replica_context()
        self.replica = ctx.replica_id.unique_id
        self.rng = np.random.default_rng([int(seed), zlib.crc32(f"{job}/{self.replica}".encode())])
        self.admission_rate = 1.0
        self.lock = asyncio.Lock()
        self.held = 0
        #: cumulative seconds this replica spent serving (its CPU-time counter, for the HPA)
        self.busy_s = 0.0
        self._pending: list[tuple] = []
        self._metrics = None
        self._flusher: asyncio.Task | None = None
        self._run_model = _resnet_like() if model == "resnet" else None

    def reconfigure(self, user_config: dict) -> None:
        self.admission_rate = float(user_config.get("admission_rate", 1.0))

    def _actor(self):
        if self._metrics is None:
            import ray

            try:
                self._metrics = ray.get_actor(ACTOR_NAME, namespace=NAMESPACE)
            except ValueError:
                return None
        return self._metrics

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self._flush()

    def _flush(self) -> None:
        actor = self._actor()
        if actor is None:
            return
        batch, self._pending = self._pending, []
        if batch:
            actor.record.remote(batch)
        actor.report_held.remote(self.job, self.replica, self.held, time.time(), self.busy_s)

    async def __call__(self, request: Request) -> Response:
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        t_in = time.time()
        try:
            sent = float(request.headers.get(SENT_HEADER, t_in))
        except ValueError:
            sent = t_in
        if self.admission_rate < 1.0 and self.rng.random() >= self.admission_rate:
            end = time.time()
            self._pending.append((self.job, self.replica, sent, end, 503))
            return Response("admission", status_code=503)
        self.held += 1
        try:
            async with self.lock:
                start = time.time()
                if self._run_model is not None:
                    await asyncio.to_thread(self._run_model)
                else:
                    svc = self.loc + self.scale * self.rng.lognormal(0.0, self.shape)
                    await asyncio.sleep(svc)
                self.busy_s += time.time() - start
        finally:
            self.held -= 1
        end = time.time()
        self._pending.append((self.job, self.replica, sent, end, 200))
        body = json.dumps({"replica": self.replica, "start": start, "end": end, "pid": os.getpid()})
        return Response(body, status_code=200, media_type="application/json")


def build_app(args: dict[str, Any]):
    """Serve application builder (``import_path: faro.serving.serve_app:build_app``)."""
    return Classifier.bind(
        str(args["job"]),
        str(args.get("model", "emulated")),
        dict(args.get("service") or {}),
        int(args.get("seed", 0)),
    )


def app_config(
    job: str,
    replicas: int,
    *,
    admission_rate: float = 1.0,
    model: str = "emulated",
    service: dict | None = None,
    seed: int = 0,
    autoscaling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One application entry of the Serve declarative config (REST ``PUT /api/serve/applications/``).

    ``autoscaling`` (a native policy: :func:`faro.policies.production.serve_autoscaling_config`)
    replaces the fixed ``num_replicas`` by Serve's ``autoscaling_config``: Serve scales the
    deployment itself, starting from its ``initial_replicas`` (``replicas`` is then unused)."""
    size: dict[str, Any] = ({"autoscaling_config": dict(autoscaling)} if autoscaling is not None
                            else {"num_replicas": int(replicas)})
    return {
        "name": job,
        "route_prefix": f"/{job}",
        "import_path": "faro.serving.serve_app:build_app",
        "args": {"job": job, "model": model, "service": dict(service or {}), "seed": int(seed)},
        "deployments": [
            {
                "name": DEPLOYMENT,
                **size,
                "max_ongoing_requests": MAX_ONGOING,
                "max_queued_requests": MAX_QUEUED,
                "ray_actor_options": {"num_cpus": 1},
                "user_config": {"admission_rate": float(admission_rate)},
            }
        ],
    }


def serve_config(apps: list[dict[str, Any]], http_port: int) -> dict[str, Any]:
    """The whole declarative config: every job's application, HTTP on 127.0.0.1:``http_port``."""
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": int(http_port)},
        "applications": apps,
    }
