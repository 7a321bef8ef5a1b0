"""k8s backend: API-contract tests, not cluster tests.

The stage code talks through the official ``kubernetes`` client to an HTTP-level stand-in
(pytest-httpserver) that answers like the API server for the calls faro makes: server-side
apply, get/list/create/replace/delete, pod and service proxies, pod logs.  The tests check
the requests faro sends (paths, verbs, content types, field manager, bodies) and how the
stages react to the answers: readiness with a timeout, quota exhaustion (stuck pods
reported, not waited on forever), Lease contention, teardown (namespace delete, then 404).
Nothing here proves that a real cluster behaves the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pytest
from werkzeug import Request, Response

from faro.backends.k8s import manifests as mf
from faro.backends.k8s import session as st
from faro.backends.k8s.client import ApiError, ApiUnavailable, KubeClient
from faro.backends.k8s.config import Cell, K8sSettings, default_jobs
from faro.backends.k8s.lease import LeaseLock, LockLost, LockTimeout

NS = "faro-16cpus-aiad"


@dataclass
class Fault:
    """A failure the stand-in injects, like a cluster's control plane or a proxy on the way:
    ``status`` (an HTTP error answer, e.g. 500/502/503/429), ``timeout`` (no answer for
    ``delay_s``: the client times out) or ``drop`` (the connection is closed without an answer).
    Active for requests whose method and path match, ``times`` requests (None: unlimited)
    within [start, end) on the monotonic clock."""

    kind: str = "status"
    status: int = 503
    path: str = ""
    method: str = ""
    times: int | None = None
    start: float = 0.0
    end: float = float("inf")
    delay_s: float = 1.0
    hits: int = 0

    def active(self, method: str, path: str, now: float) -> bool:
        return (self.start <= now < self.end and (self.times is None or self.hits < self.times)
                and (not self.method or self.method == method) and re.search(self.path, path) is not None)


def outage(start: float, duration: float, delay_s: float) -> list[Fault]:
    """An API outage as an operator's machine sees one: 503s, 502s from the proxy, 429s,
    timeouts and dropped connections, in turn, for every request in [start, start + duration)."""
    kinds = [Fault("status", 503), Fault("status", 502), Fault("drop"), Fault("status", 429),
             Fault("timeout", delay_s=delay_s), Fault("status", 500)]
    return [RotatingFault(kinds, start=start, end=start + duration)]


class RotatingFault(Fault):
    """One fault window whose requests get the faults of ``kinds`` in turn."""

    def __init__(self, kinds: list[Fault], start: float, end: float) -> None:
        super().__init__(kind="rotate", start=start, end=end)
        self.kinds = kinds

    def pick(self) -> Fault:
        assert self.kinds
        return self.kinds[(self.hits - 1) % len(self.kinds)]


class StandIn:
    """A minimal, stateful API server: objects by path, plus hooks for proxies and pod life."""

    def __init__(self) -> None:
        self.objs: dict[str, dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []
        self.rv = 0
        self.lock = threading.Lock()
        self.proxy: dict[tuple[str, str], Callable[[Request], Any]] = {}
        self.on_request: list[Callable[[StandIn], None]] = []
        self.ns_delete_polls = 2  # GETs of a terminating namespace before it is gone
        self.pod_logs: dict[str, str] = {}
        self.faults: list[Fault] = []
        self.ns = NS  # the namespace add_pod / add_event write into
        self.injected: list[dict[str, Any]] = []

    # -- helpers --------------------------------------------------------------------
    def put(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{abs(hash(path)) % 10**8}")
        meta["resourceVersion"] = str(self.rv)
        self.objs[path] = obj
        return obj

    def add_pod(self, name: str, labels: dict[str, str], *, ready: bool = False, phase: str = "Pending",
                scheduled: tuple[str, str] | None = None, containers: tuple[str, ...] = ("main",)) -> None:
        conds = [{"type": "Ready", "status": "True" if ready else "False"}]
        if scheduled:
            conds.append({"type": "PodScheduled", "status": "False", "reason": scheduled[0],
                          "message": scheduled[1]})
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": self.ns, "labels": labels},
               "spec": {"containers": [{"name": c} for c in containers]},
               "status": {"phase": "Running" if ready else phase, "conditions": conds}}
        self.put(f"/api/v1/namespaces/{self.ns}/pods/{name}", pod)

    def add_event(self, name: str, kind: str, obj: str, reason: str, message: str,
                  last: dt.datetime | None = None) -> None:
        """A Warning event (re-adding it = the controller failed again: count and lastTimestamp move)."""
        last = last or dt.datetime.now(dt.UTC)
        path = f"/api/v1/namespaces/{self.ns}/events/{name}"
        old = self.objs.get(path)
        ev = {"apiVersion": "v1", "kind": "Event", "type": "Warning",
              "metadata": {"name": name, "namespace": self.ns,
                           "creationTimestamp": (old or {}).get("metadata", {}).get("creationTimestamp")
                           or last.strftime("%Y-%m-%dT%H:%M:%SZ")},
              "reason": reason, "message": message,
              "involvedObject": {"kind": kind, "name": obj, "namespace": self.ns},
              "count": int((old or {}).get("count", 0)) + 1,
              "firstTimestamp": (old or {}).get("firstTimestamp") or last.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "lastTimestamp": last.strftime("%Y-%m-%dT%H:%M:%SZ")}
        self.put(path, ev)

    def requests(self, method: str | None = None, pattern: str = "") -> list[dict[str, Any]]:
        return [r for r in self.log
                if (method is None or r["method"] == method) and re.search(pattern, r["path"])]

    @staticmethod
    def status(code: int, reason: str, message: str) -> Response:
        body = {"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": reason,
                "message": message, "code": code}
        return Response(json.dumps(body), code, content_type="application/json")

    @staticmethod
    def ok(obj: Any, code: int = 200) -> Response:
        return Response(json.dumps(obj), code, content_type="application/json")

    # -- dispatch -------------------------------------------------------------------
    def _fault(self, req: Request) -> Response | None:
        now = time.monotonic()
        path = unquote(req.path)
        for f in self.faults:
            if f.active(req.method, path, now):
                f.hits += 1
                g = f.pick() if isinstance(f, RotatingFault) else f
                self.injected.append({"kind": g.kind, "status": g.status, "method": req.method, "path": path,
                                      "at": now})
                if g.kind == "timeout":
                    time.sleep(g.delay_s)  # the client gave up meanwhile
                    return self.status(504, "Timeout", "injected: answered too late")
                if g.kind == "drop":  # close the connection without an answer
                    sock = req.environ.get("werkzeug.socket")
                    if sock is not None:
                        sock.shutdown(socket.SHUT_RDWR)
                    return Response("", 500)
                return self.status(g.status,
                                   {429: "TooManyRequests", 502: "BadGateway"}.get(g.status, "InternalError"),
                                   f"injected {g.status}")
        return None

    def __call__(self, req: Request) -> Response:
        fault = self._fault(req)
        if fault is not None:
            return fault
        with self.lock:
            path = unquote(req.path)
            raw = req.get_data()
            body = json.loads(raw) if raw else None
            self.log.append({"method": req.method, "path": path, "query": dict(req.args),
                             "content_type": req.headers.get("Content-Type"),
                             "body": json.loads(raw) if raw else None,  # as sent (the store mutates its copy)
                             "auth": req.headers.get("Authorization")})
            for hook in self.on_request:
                hook(self)
            if "/proxy/" in path:
                return self._proxy(req, path)
            if path.endswith("/log"):
                return Response(self.pod_logs.get(path, "log line\n"), 200, content_type="text/plain")
            return self._crud(req, path, body)

    def _proxy(self, req: Request, path: str) -> Response:
        prefix, _, rest = path.partition("/proxy/")
        target = prefix.rsplit("/", 1)[1]
        fn = self.proxy.get((req.method, f"{target}/{rest}"))
        if fn is None:
            return self.status(503, "ServiceUnavailable", f"no endpoints for {target}")
        out = fn(req)
        if isinstance(out, Response):
            return out
        if isinstance(out, bytes):
            return Response(out, 200, content_type="application/octet-stream")
        return self.ok(out)

    def _crud(self, req: Request, path: str, body: Any) -> Response:
        m = req.method
        obj = self.objs.get(path)
        if m == "GET":
            if obj is not None:
                if obj["kind"] == "Namespace" and obj.get("status", {}).get("phase") == "Terminating":
                    obj["_polls"] = obj.get("_polls", 0) + 1
                    if obj["_polls"] > self.ns_delete_polls:
                        self._drop_namespace(path)
                        return self.status(404, "NotFound", f"namespaces {path.rsplit('/', 1)[1]} not found")
                return self.ok({k: v for k, v in obj.items() if k != "_polls"})
            items = self._list(path, req.args)
            if items is not None:
                return self.ok({"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items})
            return self.status(404, "NotFound", f"{path} not found")
        if m == "PATCH":
            assert req.headers["Content-Type"] == "application/apply-patch+yaml", req.headers["Content-Type"]
            new = obj is None
            merged = dict(body)
            if obj is not None:
                merged["metadata"] = {**obj["metadata"], **body["metadata"]}
                merged["status"] = obj.get("status", {})
            elif body["kind"] == "Namespace":
                merged["status"] = {"phase": "Active"}
            elif body["kind"] in {"Deployment"}:
                merged["metadata"]["generation"] = 1
            return self.ok(self.put(path, merged), 201 if new else 200)
        if m == "POST":
            full = f"{path}/{body['metadata']['name']}"
            if full in self.objs:
                return self.status(409, "AlreadyExists", f"{full} already exists")
            return self.ok(self.put(full, body), 201)
        if m == "PUT":
            if obj is None:
                return self.status(404, "NotFound", f"{path} not found")
            if body["metadata"].get("resourceVersion") != obj["metadata"]["resourceVersion"]:
                return self.status(409, "Conflict", "the object has been modified")
            return self.ok(self.put(path, body))
        if m == "DELETE":
            if obj is None:
                return self.status(404, "NotFound", f"{path} not found")
            pre = (body or {}).get("preconditions") or {}
            if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
                return self.status(409, "Conflict", "precondition failed")
            if obj["kind"] == "Namespace":
                obj.setdefault("status", {})["phase"] = "Terminating"
                return self.ok(obj)
            del self.objs[path]
            return self.ok({"kind": "Status", "status": "Success"})
        return self.status(405, "MethodNotAllowed", m)

    def _drop_namespace(self, path: str) -> None:
        name = path.rsplit("/", 1)[1]
        for p in [p for p in self.objs if p == path or f"/namespaces/{name}/" in p]:
            del self.objs[p]

    def _list(self, path: str, args: Any) -> list[dict[str, Any]] | None:
        items = [o for p, o in self.objs.items() if p.rsplit("/", 1)[0] == path]
        if not items and not re.search(r"/(pods|events|rayclusters)$", path):
            return None
        sel = args.get("labelSelector")
        if sel:
            want = dict(kv.split("=", 1) for kv in sel.split(","))
            items = [o for o in items
                     if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in want.items())]
        fsel = args.get("fieldSelector")
        if fsel == "type=Warning":
            items = [o for o in items if o.get("type") == "Warning"]
        return [{k: v for k, v in o.items() if k != "_polls"} for o in items]


@pytest.fixture
def api(httpserver):
    standin = StandIn()
    httpserver.expect_request(re.compile(".*")).respond_with_handler(standin)
    return standin


@pytest.fixture
def kc(httpserver) -> KubeClient:
    return KubeClient.for_host(httpserver.url_for("").rstrip("/"), token="t0ken", timeout_s=2.0,
                               retry_grace_s=0.3, retry_max_backoff_s=0.02)


def settings(**kw: Any) -> K8sSettings:
    base = dict(poll_s=0.005, ready_timeout_s=1.0, pending_grace_s=0.05, unschedulable_grace_s=0.05,
                teardown_timeout_s=1.0,
                replay_timeout_s=2.0, lock_timeout_s=0.2, lease_duration_s=30)
    base.update(kw)
    return K8sSettings(**base)


def make_session(kc: KubeClient, tmp_path=None, n_jobs: int = 2, **kw: Any) -> st.Session:
    cell = Cell(quota=16, policy="aiad", seed=7, jobs=default_jobs(n_jobs))
    return st.Session(kc, settings(**kw), cell, raw_dir=tmp_path)


# -- apply ----------------------------------------------------------------------------
def test_setup_quota_server_side_applies_namespace_quota_and_config(api, kc):
    """API-contract test, not a cluster test: apply is PATCH apply-patch+yaml with fieldManager=faro."""
    sess = make_session(kc)
    rec = st.setup_quota(sess, trace_text='{"ts": 0, "counts": {}}\n')
    patches = api.requests("PATCH")
    assert [p["path"] for p in patches] == [
        f"/api/v1/namespaces/{NS}",
        f"/api/v1/namespaces/{NS}/resourcequotas/faro-quota",
        f"/api/v1/namespaces/{NS}/configmaps/faro-config",
    ]
    for p in patches:
        assert p["query"] == {"fieldManager": "faro", "force": "true"}
        assert p["content_type"] == "application/apply-patch+yaml"
        assert p["auth"] == "Bearer t0ken"
    # 16 workers + 2 heads x (1 + 0.25 sidecar) + autoscaler 4 + replayer 2 = 24.5 CPUs
    assert patches[1]["body"]["spec"]["hard"]["requests.cpu"] == "24500m"
    # the lease was created first, in the lock namespace, by this session's holder identity
    first_write = next(r for r in api.log if r["method"] != "GET")
    assert first_write["method"] == "POST"
    assert first_write["path"] == "/apis/coordination.k8s.io/v1/namespaces/default/leases"
    assert first_write["body"]["spec"]["holderIdentity"] == f"{NS}/seed-7"
    assert rec["stage"] == "setup_quota" and rec["lock"]["action"] == "created"
    assert [o["kind"] for o in rec["objects"]] == ["Namespace", "ResourceQuota", "ConfigMap"]
    assert all(o["uid"] for o in rec["objects"])
    json.dumps(rec)  # JSON-able


def test_setup_quota_is_idempotent(api, kc):
    """API-contract test, not a cluster test: a second run re-applies and renews its own lease."""
    sess = make_session(kc)
    st.setup_quota(sess)
    rec = st.setup_quota(make_session(kc))
    assert rec["lock"]["action"] == "renewed" and rec["reused_namespace"] is True
    assert len(api.requests("PATCH", "resourcequotas")) == 2
    assert len([o for p, o in api.objs.items() if o["kind"] == "ResourceQuota"]) == 1


def _head_labels(i: int) -> dict[str, str]:
    return {"ray.io/cluster": f"serve-cluster{i}", "ray.io/node-type": "head"}


# -- wait until ready -------------------------------------------------------------------
def _heads_become_ready_after(polls: int) -> Callable[[StandIn], None]:
    count = {"n": 0}

    def hook(s: StandIn) -> None:
        clusters = [o for o in s.objs.values() if o["kind"] == "RayCluster"]
        if not clusters:
            return
        count["n"] += 1
        for c in clusters:
            name = c["metadata"]["name"]
            s.add_pod(f"{name}-head-abcde", {"ray.io/cluster": name, "ray.io/node-type": "head"},
                      ready=count["n"] > polls, containers=("ray-head", "autoscaler"))
    return hook


def test_deploy_clusters_waits_for_ready_heads(api, kc):
    """API-contract test, not a cluster test: RayClusters applied, head pods polled until Ready."""
    sess = make_session(kc)
    st.setup_quota(sess)
    api.on_request.append(_heads_become_ready_after(polls=5))
    rec = st.deploy_clusters(sess)
    assert [p["path"] for p in api.requests("PATCH", "rayclusters")] == [
        f"/apis/ray.io/v1/namespaces/{NS}/rayclusters/serve-cluster0",
        f"/apis/ray.io/v1/namespaces/{NS}/rayclusters/serve-cluster1"]
    pod_lists = api.requests("GET", r"/pods$")
    assert len(pod_lists) >= 2 and pod_lists[0]["query"]["labelSelector"] == "ray.io/node-type=head"
    assert rec["head_pods"] == {"serve-cluster0": "serve-cluster0-head-abcde",
                                "serve-cluster1": "serve-cluster1-head-abcde"}
    # the lease was renewed at the start of the stage
    assert api.requests("PUT", "leases/faro-session")


def test_deploy_clusters_times_out_when_heads_never_become_ready(api, kc):
    """API-contract test, not a cluster test: a bounded wait, with the state in the error."""
    sess = make_session(kc, ready_timeout_s=0.2)
    st.setup_quota(sess)
    api.on_request.append(_heads_become_ready_after(polls=10**9))
    with pytest.raises(st.WaitTimeout, match=r"not done after 0 s.*not_ready.*serve-cluster0"):
        st.deploy_clusters(sess)


# -- quota exhaustion ---------------------------------------------------------------------
def test_pending_pods_are_reported_not_waited_on(api, kc):
    """API-contract test, not a cluster test: an Unschedulable head pod is reported with its reason."""
    sess = make_session(kc, ready_timeout_s=30.0)
    st.setup_quota(sess)

    def hook(s: StandIn) -> None:
        if any(o["kind"] == "RayCluster" for o in s.objs.values()):
            for i in range(2):
                s.add_pod(f"serve-cluster{i}-head-x", _head_labels(i),
                          ready=(i == 0), scheduled=None if i == 0 else
                          ("Unschedulable", "0/3 nodes are available: 3 Insufficient cpu."))
    api.on_request.append(hook)
    with pytest.raises(st.PodsStuck) as ei:
        st.deploy_clusters(sess)
    assert ei.value.problems == [("Pod/serve-cluster1-head-x", "Unschedulable",
                                  "0/3 nodes are available: 3 Insufficient cpu.")]
    assert "serve-cluster1-head-x" in str(ei.value) and NS in str(ei.value)


def test_quota_exceeded_pod_creation_is_reported(api, kc):
    """API-contract test, not a cluster test: KubeRay's FailedToCreateHeadPod 'exceeded quota' event."""
    sess = make_session(kc, ready_timeout_s=30.0)
    st.setup_quota(sess)
    msg = ('pods "serve-cluster1-head-q" is forbidden: exceeded quota: faro-quota, '
           'requested: requests.cpu=1250m, used: requests.cpu=16, limited: requests.cpu=16')

    def hook(s: StandIn) -> None:  # KubeRay keeps failing: the event recurs (count, lastTimestamp move)
        if any(o["kind"] == "RayCluster" for o in s.objs.values()):
            s.add_pod("serve-cluster0-head-x",
                      {"ray.io/cluster": "serve-cluster0", "ray.io/node-type": "head"}, ready=True)
            s.add_event("ev1", "RayCluster", "serve-cluster1", "FailedToCreateHeadPod", msg)
    api.on_request.append(hook)
    with pytest.raises(st.PodsStuck, match="exceeded quota") as ei:
        st.deploy_clusters(sess)
    assert ei.value.problems == [("RayCluster/serve-cluster1", "FailedToCreateHeadPod", msg)]
    ev_lists = api.requests("GET", r"/events$")
    assert ev_lists and ev_lists[0]["query"] == {"fieldSelector": "type=Warning"}


def test_transient_pending_within_grace_is_waited_out(api, kc):
    """API-contract test, not a cluster test: Unschedulable for less than the grace period is fine."""
    sess = make_session(kc, pending_grace_s=10.0, unschedulable_grace_s=10.0)
    st.setup_quota(sess)
    polls = {"n": 0}

    def hook(s: StandIn) -> None:
        if any(o["kind"] == "RayCluster" for o in s.objs.values()):
            polls["n"] += 1
            for i in range(2):
                s.add_pod(f"serve-cluster{i}-head-x", _head_labels(i),
                          ready=polls["n"] > 6,
                          scheduled=None if polls["n"] > 6 else ("Unschedulable", "wait"))
    api.on_request.append(hook)
    rec = st.deploy_clusters(sess)
    assert set(rec["head_pods"]) == {"serve-cluster0", "serve-cluster1"}


# -- jobs through the dashboard (service proxy) --------------------------------------------
def test_deploy_jobs_puts_serve_config_through_the_service_proxy(api, kc):
    """API-contract test, not a cluster test: PUT /api/serve/applications/ via services/{svc}:8265/proxy."""
    sess = make_session(kc)
    st.setup_quota(sess)
    gets = {"n": 0}
    for i in range(2):
        svc = f"serve-cluster{i}-head-svc:8265"
        api.proxy[("PUT", f"{svc}/api/serve/applications/")] = lambda req: {}

        def status(req, i=i):
            gets["n"] += 1
            return {"applications": {
                f"serve-cluster{i}": {"status": "RUNNING" if gets["n"] > 2 else "DEPLOYING"}}}
        api.proxy[("GET", f"{svc}/api/serve/applications/")] = status
    rec = st.deploy_jobs(sess)
    puts = api.requests("PUT", "/proxy/")
    assert [p["path"] for p in puts] == [
        f"/api/v1/namespaces/{NS}/services/serve-cluster{i}-head-svc:8265/proxy/api/serve/applications/"
        for i in range(2)]
    assert puts[1]["body"] == mf.serve_config(sess.cell, sess.s, "serve-cluster1")
    assert rec["status"] == {"serve-cluster0": "RUNNING", "serve-cluster1": "RUNNING"}


def test_deploy_jobs_reports_a_failed_serve_application(api, kc):
    """API-contract test, not a cluster test."""
    sess = make_session(kc, n_jobs=1)
    st.setup_quota(sess)
    svc = "serve-cluster0-head-svc:8265"
    api.proxy[("PUT", f"{svc}/api/serve/applications/")] = lambda req: {}
    api.proxy[("GET", f"{svc}/api/serve/applications/")] = lambda req: {
        "applications": {"serve-cluster0": {"status": "DEPLOY_FAILED",
                                            "message": "ImportError: faro.backends.ray"}}}
    with pytest.raises(st.StageError, match="DEPLOY_FAILED.*ImportError"):
        st.deploy_jobs(sess)


# -- autoscaler -------------------------------------------------------------------------------
AUTOSCALER_LABELS = {"app.kubernetes.io/part-of": "faro", "app.kubernetes.io/component": "faro-autoscaler"}


def _autoscaler_pod(api: StandIn, pod: str, state: dict[str, Any]) -> None:
    """A Ready autoscaler pod whose record server answers from ``state`` (state, returncode, log size)."""
    api.add_pod(pod, AUTOSCALER_LABELS, ready=True, containers=("autoscaler",))
    api.proxy[("GET", f"{pod}:8080/status")] = lambda req: {"state": state["state"],
                                                           "returncode": state.get("returncode")}
    api.proxy[("GET", f"{pod}:8080/files")] = lambda req: {"files": [
        {"name": "autoscaler.jsonl", "size": state.get("log_size", 0)}]}


def test_launch_autoscaler_waits_for_available_and_started(api, kc):
    """API-contract test, not a cluster test: SA and Deployment applied; Available
    awaited, then the process's start record in its decision log (read through the pod proxy)."""
    sess = make_session(kc)
    st.setup_quota(sess)
    n = {"polls": 0}
    dpath = f"/apis/apps/v1/namespaces/{NS}/deployments/faro-autoscaler"
    state = {"state": "running", "log_size": 0}

    def hook(s: StandIn) -> None:
        if dpath in s.objs:
            n["polls"] += 1
            if n["polls"] == 4:
                _autoscaler_pod(s, "faro-autoscaler-abc", state)
                s.objs[dpath]["status"] = {"observedGeneration": 1,
                                           "conditions": [{"type": "Available", "status": "True"}]}
            if n["polls"] == 12:
                state["log_size"] = 120
    api.on_request.append(hook)
    rec = st.launch_autoscaler(sess)
    assert ([p["path"].split("/")[-2] for p in api.requests("PATCH")][-2:]
            == ["serviceaccounts", "deployments"])
    assert [o["kind"] for o in rec["objects"]] == ["ServiceAccount", "Deployment"]
    assert rec["pods"] == ["faro-autoscaler-abc"]
    assert api.requests("GET", "pods/faro-autoscaler-abc:8080/proxy/files")  # it waited for the log
    assert n["polls"] >= 12


def test_launch_autoscaler_reports_a_process_that_exits_at_start(api, kc):
    """API-contract test, not a cluster test: a held pod whose process died is an error, not Available."""
    sess = make_session(kc, ready_timeout_s=30.0)
    st.setup_quota(sess)
    dpath = f"/apis/apps/v1/namespaces/{NS}/deployments/faro-autoscaler"

    def hook(s: StandIn) -> None:
        if dpath in s.objs and not s.objs[dpath].get("status"):
            _autoscaler_pod(s, "faro-autoscaler-abc", {"state": "exited", "returncode": 1})
            s.objs[dpath]["status"] = {"observedGeneration": 1,
                                       "conditions": [{"type": "Available", "status": "True"}]}
    api.on_request.append(hook)
    with pytest.raises(st.StageError, match="faro-autoscaler-abc exited with 1 at start"):
        st.launch_autoscaler(sess)


# -- replay and logs -----------------------------------------------------------------------------
def test_replay_fetches_records_through_the_pod_proxy_then_releases(api, kc, tmp_path):
    """API-contract test, not a cluster test: Job applied, records fetched via pods/{pod}:8080/proxy."""
    sess = make_session(kc, tmp_path)
    st.setup_quota(sess)
    api.put(f"/apis/apps/v1/namespaces/{NS}/deployments/faro-autoscaler",
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "faro-autoscaler", "generation": 1},
             "status": {"observedGeneration": 1, "conditions": [{"type": "Available", "status": "True"}]}})
    pod = "faro-replayer-7x2k"
    state = {"polls": 0, "released": False}
    auto = {"state": "running"}
    _autoscaler_pod(api, "faro-autoscaler-abc", auto)
    records = b'{"job": "serve-cluster0", "arrival_s": 0.1}\n' * 1000
    jpath = f"/apis/batch/v1/namespaces/{NS}/jobs/faro-replayer"

    def hook(s: StandIn) -> None:
        if jpath in s.objs and f"/api/v1/namespaces/{NS}/pods/{pod}" not in s.objs:
            s.add_pod(pod, {"job-name": "faro-replayer"}, ready=True)
        if state["released"]:
            s.objs[jpath]["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}

    def status(req):
        state["polls"] += 1
        return {"state": "exited" if state["polls"] > 3 else "running",
                "returncode": 0 if state["polls"] > 3 else None}

    def files(req):
        auto["fetched_at"] = len(api.log)
        return {"files": [{"name": "requests.jsonl", "size": len(records)},
                          {"name": "stdout.log", "size": 3}]}

    def release(req):
        assert auto["state"] == "exited"  # the autoscaler saw the replay end before the replayer went
        state["released"] = True
        return {"released": True}
    api.on_request.append(hook)
    api.proxy[("GET", f"{pod}:8080/status")] = status
    api.proxy[("GET", f"{pod}:8080/files")] = files

    def autoscaler_ends(s: StandIn) -> None:  # a few requests after the records were fetched
        if "fetched_at" in auto and len(s.log) > auto["fetched_at"] + 6:
            auto["state"], auto["returncode"] = "exited", 0
    api.on_request.append(autoscaler_ends)
    api.proxy[("GET", f"{pod}:8080/files/requests.jsonl")] = lambda req: records
    api.proxy[("GET", f"{pod}:8080/files/stdout.log")] = lambda req: b"hi\n"
    api.proxy[("POST", f"{pod}:8080/release")] = release
    rec = st.replay(sess)
    assert (tmp_path / "replayer" / "requests.jsonl").read_bytes() == records
    assert rec["files"] == [{"name": "requests.jsonl", "bytes": len(records)},
                            {"name": "stdout.log", "bytes": 3}]
    assert rec["returncode"] == 0 and rec["job_outcome"] == "Complete"
    release_i = next(i for i, r in enumerate(api.log) if r["path"].endswith("/release"))
    fetch_i = max(i for i, r in enumerate(api.log) if "/files/" in r["path"])
    assert fetch_i < release_i  # records are saved before the pod may exit
    assert rec["autoscaler_stop"] == {"pod": "faro-autoscaler-abc",
                                      "status": {"state": "exited", "returncode": 0}}


def test_replay_fails_when_the_autoscaler_dies_during_it(api, kc, tmp_path):
    """API-contract test, not a cluster test: like the ray backend's watchdog."""
    sess = make_session(kc, tmp_path, replay_timeout_s=30.0)
    st.setup_quota(sess)
    api.put(f"/apis/apps/v1/namespaces/{NS}/deployments/faro-autoscaler",
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "faro-autoscaler", "generation": 1},
             "status": {"observedGeneration": 1, "conditions": [{"type": "Available", "status": "True"}]}})
    auto = {"state": "running"}
    _autoscaler_pod(api, "faro-autoscaler-abc", auto)
    api.add_pod("faro-replayer-1", {"job-name": "faro-replayer"}, ready=True)
    api.proxy[("GET", "faro-replayer-1:8080/status")] = lambda req: {"state": "running"}
    api.proxy[("GET", "faro-replayer-1:8080/files")] = lambda req: {
        "files": [{"name": "requests.csv", "size": 9}]}

    def dies(s: StandIn) -> None:
        if len(s.requests("GET", "faro-replayer-1:8080/proxy/status")) >= 3:
            auto.update(state="exited", returncode=-9)
    api.on_request.append(dies)
    with pytest.raises(st.StageError, match=r"autoscaler \(faro-autoscaler-abc\) stopped during the replay"):
        st.replay(sess)


def test_replay_refuses_to_start_without_the_autoscaler(api, kc, tmp_path):
    """API-contract test, not a cluster test: a stage checks the live state it relies on."""
    sess = make_session(kc, tmp_path)
    st.setup_quota(sess)
    with pytest.raises(st.StageError, match="autoscaler Deployment .* not available"):
        st.replay(sess)
    assert not api.requests("PATCH", "jobs")


def test_fetch_logs_streams_every_container_log(api, kc, tmp_path):
    """API-contract test, not a cluster test: GET pods/{pod}/log?container=... into the raw folder."""
    sess = make_session(kc, tmp_path)
    st.setup_quota(sess)
    api.add_pod("serve-cluster0-head-x", {"ray.io/cluster": "serve-cluster0"}, ready=True,
                containers=("ray-head", "autoscaler"))
    api.pod_logs[f"/api/v1/namespaces/{NS}/pods/serve-cluster0-head-x/log"] = "line 1\nline 2\n"
    rec = st.fetch_logs(sess)
    assert (tmp_path / "pods" / "serve-cluster0-head-x" / "ray-head.log").read_text() == "line 1\nline 2\n"
    logs = api.requests("GET", r"/log$")
    assert [r["query"]["container"] for r in logs] == ["ray-head", "autoscaler"]
    assert {x["container"] for x in rec["logs"]} == {"ray-head", "autoscaler"}
    assert json.loads((tmp_path / "cluster_state.json").read_text())["events"] == []


# -- lease contention ------------------------------------------------------------------------------
def _other_holder(api: StandIn, renew: dt.datetime, duration: int = 600) -> None:
    api.put("/apis/coordination.k8s.io/v1/namespaces/default/leases/faro-session",
            mf.lease(K8sSettings(lease_duration_s=duration), "faro-32cpus-mark/seed-42", renew))


def test_lease_held_by_another_session_times_out_with_a_clear_error(api, kc):
    """API-contract test, not a cluster test: an unexpired foreign lease -> wait, then LockTimeout."""
    _other_holder(api, dt.datetime.now(dt.UTC))
    sess = make_session(kc, lock_timeout_s=0.1)
    with pytest.raises(LockTimeout, match=r"held by 'faro-32cpus-mark/seed-42'.*delete lease faro-session"):
        st.setup_quota(sess)
    assert len(api.requests("GET", "leases/faro-session")) >= 3  # it polled while waiting
    assert not api.requests("PATCH")  # nothing applied without the lock


def test_lease_is_taken_over_once_released_during_the_wait(api, kc):
    """API-contract test, not a cluster test: the waiter proceeds when the holder releases."""
    _other_holder(api, dt.datetime.now(dt.UTC))
    gets = {"n": 0}
    path = "/apis/coordination.k8s.io/v1/namespaces/default/leases/faro-session"

    def hook(s: StandIn) -> None:
        if s.log[-1]["method"] == "GET" and s.log[-1]["path"] == path:
            gets["n"] += 1
            if gets["n"] == 3 and path in s.objs:
                del s.objs[path]  # the other session's teardown released it
    api.on_request.append(hook)
    lock = LeaseLock(kc, settings(lock_timeout_s=5.0), "me")
    rec = lock.acquire()
    assert rec["action"] == "created" and rec["waited_for"] == "faro-32cpus-mark/seed-42"


def test_expired_lease_is_taken_over_with_a_transition(api, kc):
    """API-contract test, not a cluster test: renewTime + duration in the past -> take over (CAS PUT)."""
    _other_holder(api, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=700), duration=600)
    rec = LeaseLock(kc, settings(), "me").acquire()
    assert rec["action"] == "taken-over" and rec["transitions"] == 1
    put = api.requests("PUT", "leases/faro-session")[-1]
    assert put["body"]["spec"]["holderIdentity"] == "me" and put["body"]["metadata"]["resourceVersion"]


def test_lease_renew_and_release(api, kc):
    """API-contract test, not a cluster test: renew extends our lease; release deletes it with a
    precondition."""
    lock = LeaseLock(kc, settings(), "me")
    lock.acquire()
    lock.renew()
    assert api.requests("PUT", "leases")[-1]["body"]["spec"]["holderIdentity"] == "me"
    assert lock.release() is True
    d = api.requests("DELETE", "leases")[-1]
    assert d["body"]["preconditions"]["resourceVersion"]
    assert lock.release() is False  # idempotent
    _other_holder(api, dt.datetime.now(dt.UTC))
    with pytest.raises(LockLost, match="faro-32cpus-mark"):
        lock.renew()
    assert lock.release() is False  # never deletes another holder's lease


# -- teardown -------------------------------------------------------------------------------------
def test_teardown_deletes_the_namespace_and_waits_for_404(api, kc):
    """API-contract test, not a cluster test: DELETE namespace, poll until 404, release the lease."""
    sess = make_session(kc)
    st.setup_quota(sess)
    api.ns_delete_polls = 3
    rec = st.teardown(sess)
    assert rec["deleted"] is True and rec["lease_released"] is True
    d = api.requests("DELETE", f"namespaces/{NS}$")
    assert len(d) == 1 and d[0]["body"]["propagationPolicy"] == "Background"
    assert len(api.requests("GET", f"/api/v1/namespaces/{NS}$")) >= 4
    assert not [p for p in api.objs if NS in p]
    assert "/apis/coordination.k8s.io/v1/namespaces/default/leases/faro-session" not in api.objs


def test_teardown_of_a_missing_namespace_is_success(api, kc):
    """API-contract test, not a cluster test: idempotent teardown."""
    rec = st.teardown(make_session(kc))
    assert rec["deleted"] is False and rec["lease_released"] is False


def test_teardown_times_out_on_a_namespace_stuck_terminating(api, kc):
    """API-contract test, not a cluster test: e.g. a finalizer that never clears."""
    sess = make_session(kc, teardown_timeout_s=0.1)
    st.setup_quota(sess)
    api.ns_delete_polls = 10**9
    with pytest.raises(st.WaitTimeout, match="to be deleted"):
        st.teardown(sess)


def test_a_failing_stage_is_torn_down_by_the_stage_runner(api, kc):
    """API-contract test, not a cluster test: a failing stage leaves no namespace behind (the
    stage runner's teardown_on_failure, the one of every live backend)."""
    from faro.workflow.stage_runner import teardown_on_failure

    sess = make_session(kc, ready_timeout_s=0.05)
    st.setup_quota(sess)
    with pytest.raises(st.WaitTimeout), teardown_on_failure(lambda: st.teardown(sess), "deploy_clusters"):
        st.deploy_clusters(sess)
    assert api.requests("DELETE", f"namespaces/{NS}$")
    assert not [p for p in api.objs if f"namespaces/{NS}" in p]


def test_api_errors_carry_the_status_message(api, kc):
    """API-contract test, not a cluster test: a 503 is retried through the grace, then ApiUnavailable
    (carrying the last Status message); a 404 is an answer, not retried."""
    with pytest.raises(ApiUnavailable, match="HTTP 503.*no endpoints for x:1") as ei:
        kc.proxy("GET", NS, "Service", "x", 1, "api/serve/applications/")
    assert isinstance(ei.value.__cause__, ApiError) and ei.value.__cause__.status == 503
    assert len(api.requests("GET", "x:1/proxy")) >= 3
    n = len(api.log)
    assert kc.get("v1", "Namespace", "nope") is None
    assert len(api.log) == n + 1
