"""A small REST layer over the official ``kubernetes`` client's ApiClient.

The official client brings kubeconfig loading, auth (tokens, exec plugins, client certs),
TLS and urllib3's connection retries; this module adds what the stages need on top of it, all as plain dicts:
server-side apply (``application/apply-patch+yaml`` with a field manager), get/list/
create/replace/delete by ``apiVersion``/``kind``, streamed pod logs, and requests through
the API server's service and pod proxies (how the Ray dashboards and the faro pods' record
servers are reached from outside the cluster, with no cluster-IP assumptions).

No discovery round-trip: the handful of kinds faro uses are mapped to their REST paths here.

Transient failures are retried with exponential backoff and jitter (``tenacity``) for a grace
period (``K8sSettings.api_retry_grace_s``, default 10 minutes): HTTP 429, 500, 502, 503 and 504
(the API server, an overloaded control plane, or its service/pod proxy), timeouts, refused,
reset or dropped connections.  Only after the grace does a call raise :class:`ApiUnavailable`,
which the stages treat as "the operator's machine lost the cluster", not as a failed cell.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import kubernetes.client
import tenacity
import urllib3.exceptions
from kubernetes.client import ApiClient, Configuration

log = logging.getLogger("faro.k8s.client")

Obj = dict[str, Any]

#: kind -> (plural, namespaced)
KINDS: dict[str, tuple[str, bool]] = {
    "Namespace": ("namespaces", False),
    "ResourceQuota": ("resourcequotas", True),
    "ConfigMap": ("configmaps", True),
    "ServiceAccount": ("serviceaccounts", True),
    "Service": ("services", True),
    "Pod": ("pods", True),
    "Event": ("events", True),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "Deployment": ("deployments", True),
    "ReplicaSet": ("replicasets", True),
    "Job": ("jobs", True),
    "Lease": ("leases", True),
    "RayCluster": ("rayclusters", True),
    "RayService": ("rayservices", True),
}

APPLY_PATCH = "application/apply-patch+yaml"
#: answers worth retrying: rate limiting, server errors, the API server's proxies (bad gateway, no endpoints)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class ApiError(RuntimeError):
    """A non-2xx answer of the API server (status, reason and the Status message)."""

    def __init__(self, method: str, path: str, status: int, reason: str, body: str):
        self.method, self.path, self.status, self.reason, self.body = method, path, status, reason, body
        msg = body
        try:
            msg = json.loads(body).get("message", body)
        except (ValueError, AttributeError):
            pass
        super().__init__(f"{method} {path}: HTTP {status} {reason}: {str(msg)[:500]}")


class ApiUnavailable(RuntimeError):
    """The API server (or the proxy path through it) kept failing transiently for the whole grace
    period. The cell may still be running in the cluster: the session is kept (no teardown), and
    running the same stage again reattaches to it."""

    #: read by the stage runners: do not tear the session down for this error
    keep_session = True


def transient(e: BaseException) -> bool:
    """Is ``e`` a failure that may go away by itself (retry), rather than an answer (don't)?"""
    if isinstance(e, ApiError):
        return e.status in RETRY_STATUS
    return isinstance(e, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


def resource_path(api_version: str, kind: str, namespace: str | None = None, name: str | None = None) -> str:
    """REST path of a collection (``name`` None) or of one object."""
    try:
        plural, namespaced = KINDS[kind]
    except KeyError:
        raise ValueError(f"kind {kind!r} is not mapped; known: {sorted(KINDS)}") from None
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespaced:
        if not namespace:
            raise ValueError(f"{kind} is namespaced: give a namespace")
        base += f"/namespaces/{quote(namespace, safe='')}"
    base += f"/{plural}"
    return base if name is None else f"{base}/{quote(name, safe='')}"


def object_path(obj: Mapping[str, Any]) -> str:
    meta = obj["metadata"]
    return resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])


def summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a stage record keeps of an object the server returned."""
    meta = obj.get("metadata", {})
    out = {"kind": obj.get("kind"), "name": meta.get("name"), "uid": meta.get("uid"),
           "resourceVersion": meta.get("resourceVersion")}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    return out


class KubeClient:
    """Plain-dict access to the Kubernetes API through ``kubernetes.client.ApiClient``."""

    def __init__(self, api_client: ApiClient, field_manager: str = "faro", timeout_s: float = 60.0,
                 retry_grace_s: float = 600.0, retry_max_backoff_s: float = 30.0,
                 sleep: Any = time.sleep):
        self.api = api_client
        self.field_manager = field_manager
        self.timeout_s = timeout_s
        self.retry_grace_s = retry_grace_s
        self.retry_max_backoff_s = retry_max_backoff_s
        self.sleep = sleep
        #: transient failures retried so far (method, path, error), newest last; stages record them
        self.retried: list[dict[str, Any]] = []

    def _retrying(self, what: str, fn: Any) -> Any:
        """``fn()``, retried on transient failures for ``retry_grace_s`` with capped exponential
        backoff and jitter; ApiUnavailable once the grace is used up."""
        def note(rs: tenacity.RetryCallState) -> None:
            e = rs.outcome.exception() if rs.outcome else None
            self.retried.append({"call": what, "attempt": rs.attempt_number,
                                 "error": f"{type(e).__name__}: {e}"[:300], "at": time.time()})
            del self.retried[:-1000]
            log.warning("%s failed (attempt %d, retrying): %s", what, rs.attempt_number, e)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(transient),
            stop=tenacity.stop_after_delay(self.retry_grace_s),
            wait=tenacity.wait_exponential_jitter(multiplier=min(1.0, self.retry_max_backoff_s),
                                                  max=self.retry_max_backoff_s,
                                                  jitter=min(1.0, self.retry_max_backoff_s)),
            sleep=self.sleep, before_sleep=note, reraise=False)
        try:
            return retrying(fn)
        except tenacity.RetryError as e:
            last = e.last_attempt.exception()
            raise ApiUnavailable(f"{what}: the API server kept failing for {self.retry_grace_s:.0f} s "
                                 f"(last: {type(last).__name__}: {last}); the cell is left running in "
                                 f"the cluster: run the same command again to reattach, or tear it down"
                                 ) from last

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_kubeconfig(cls, context: str | None = None, kubeconfig: str | None = None,
                        field_manager: str = "faro", **kw: Any) -> KubeClient:
        """Client for a kubeconfig context (or the in-cluster service account when inside a pod
        and no kubeconfig exists)."""
        import kubernetes.config as kc

        cfg = Configuration()
        try:
            kc.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
        except kc.ConfigException:
            if kubeconfig or context:
                raise
            kc.load_incluster_config(client_configuration=cfg)
        return cls(ApiClient(cfg), field_manager, **kw)

    @classmethod
    def for_host(cls, host: str, field_manager: str = "faro", token: str | None = None,
                 **kw: Any) -> KubeClient:
        """Client for an API server URL (tests point this at an HTTP stand-in)."""
        cfg = Configuration(host=host)
        if token:
            cfg.api_key = {"authorization": token}
            cfg.api_key_prefix = {"authorization": "Bearer"}
        return cls(ApiClient(cfg), field_manager, **kw)

    @property
    def host(self) -> str:
        return self.api.configuration.host

    # -- transport ----------------------------------------------------------------------
    def _send(self, method: str, path: str, query: list[tuple[str, str]] | None, body: Any,
              content_type: str | None, accept: str, timeout: float | None):
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        elif body is not None:
            headers["Content-Type"] = "application/json"
        m, url, hdrs, b, post = self.api.param_serialize(
            method=method, resource_path=path, query_params=query or [], header_params=headers,
            body=body, auth_settings=["BearerToken"])
        resp = self.api.call_api(m, url, header_params=hdrs, body=b, post_params=post,
                                 _request_timeout=timeout or self.timeout_s)
        return resp

    def request(self, method: str, path: str, *, query: list[tuple[str, str]] | None = None,
                body: Any = None, content_type: str | None = None, accept: str = "application/json",
                timeout: float | None = None, retry: bool = True) -> Any:
        """One API call, transient failures retried (see the module doc; ``retry=False``: once);
        JSON answers are decoded, others returned as text. Raises ApiError (an answer) or
        ApiUnavailable (no answer in the grace)."""
        def once() -> Any:
            return self._request_once(method, path, query=query, body=body, content_type=content_type,
                                      accept=accept, timeout=timeout)
        return self._retrying(f"{method} {path}", once) if retry else once()

    def _request_once(self, method: str, path: str, *, query: list[tuple[str, str]] | None,
                      body: Any, content_type: str | None, accept: str, timeout: float | None) -> Any:
        resp = self._send(method, path, query, body, content_type, accept, timeout)
        data = resp.read()
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")
        if not 200 <= resp.status <= 299:
            raise ApiError(method, path, resp.status, resp.reason or "", text)
        ctype = resp.headers.get("content-type", "") or ""
        if "json" in ctype:
            return json.loads(text) if text else None
        return text

    def stream_to(self, path: str, dest: Path, *, query: list[tuple[str, str]] | None = None,
                  timeout: float | None = None) -> int:
        """GET ``path`` and stream the body into ``dest`` (atomically, retried whole); returns bytes
        written."""
        return self._retrying(f"GET {path}", lambda: self._stream_once(path, dest, query, timeout))

    def _stream_once(self, path: str, dest: Path, query: list[tuple[str, str]] | None,
                     timeout: float | None) -> int:
        resp = self._send("GET", path, query, None, None, "*/*", timeout)
        raw = resp.response
        if not 200 <= resp.status <= 299:
            body = resp.read()
            raise ApiError("GET", path, resp.status, resp.reason or "", body.decode("utf-8", "replace"))
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        with open(tmp, "wb") as fh:
            shutil.copyfileobj(raw, fh, 1 << 20)
        raw.release_conn()
        tmp.replace(dest)
        return dest.stat().st_size

    # -- objects ------------------------------------------------------------------------
    def apply(self, obj: Mapping[str, Any], force: bool = True) -> Obj:
        """Server-side apply (idempotent): PATCH with the field manager; creates if absent."""
        query = [("fieldManager", self.field_manager)]
        if force:
            query.append(("force", "true"))
        return self.request("PATCH", object_path(obj), query=query, body=dict(obj), content_type=APPLY_PATCH)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """The object, or None if it does not exist (404)."""
        try:
            return self.request("GET", resource_path(api_version, kind, namespace, name))
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None) -> list[Obj]:
        query = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        out = self.request("GET", resource_path(api_version, kind, namespace), query=query)
        return list(out.get("items") or [])

    def create(self, obj: Mapping[str, Any]) -> Obj:
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        return self.request("POST", path, query=[("fieldManager", self.field_manager)], body=dict(obj))

    def replace(self, obj: Mapping[str, Any]) -> Obj:
        """PUT; with ``metadata.resourceVersion`` set this is a compare-and-swap (409 on a race)."""
        return self.request("PUT", object_path(obj), query=[("fieldManager", self.field_manager)],
                            body=dict(obj))

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
               propagation: str = "Background", preconditions: Mapping[str, str] | None = None) -> bool:
        """Delete; False if it was already gone (404)."""
        body: Obj = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if preconditions:
            body["preconditions"] = dict(preconditions)
        try:
            self.request("DELETE", resource_path(api_version, kind, namespace, name), body=body)
            return True
        except ApiError as e:
            if e.status == 404:
                return False
            raise

    # -- pods and proxies ---------------------------------------------------------------
    def pod_log(self, namespace: str, pod: str, container: str, dest: Path, *,
                previous: bool = False, timestamps: bool = True) -> int:
        """Stream a container's log into ``dest``; returns bytes written."""
        query = [("container", container)]
        if previous:
            query.append(("previous", "true"))
        if timestamps:
            query.append(("timestamps", "true"))
        path = resource_path("v1", "Pod", namespace, pod) + "/log"
        return self.stream_to(path, dest, query=query, timeout=max(self.timeout_s, 600.0))

    @staticmethod
    def proxy_path(namespace: str, kind: str, name: str, port: int | str, path: str) -> str:
        """``/api/v1/namespaces/{ns}/{services|pods}/{name}:{port}/proxy/{path}``."""
        plural = {"Service": "services", "Pod": "pods"}[kind]
        return (f"/api/v1/namespaces/{quote(namespace, safe='')}/{plural}/{quote(name, safe='')}:{port}"
                f"/proxy/{path.lstrip('/')}")

    def proxy(self, method: str, namespace: str, kind: str, name: str, port: int | str, path: str, *,
              body: Any = None, timeout: float | None = None, retry: bool = True) -> Any:
        return self.request(method, self.proxy_path(namespace, kind, name, port, path), body=body,
                            timeout=timeout, accept="application/json, */*", retry=retry)


def api_client_version() -> str:
    return kubernetes.client.__version__ if hasattr(kubernetes.client, "__version__") else "unknown"
