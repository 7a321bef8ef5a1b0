"""The ``k8s`` backend's stages: one function per Snakemake stage of a live run.

Every stage takes a :class:`Session` (API client, settings, cell, raw folder), does its
work with server-side apply / plain API calls, checks the live state it relies on, and
returns a JSON-able record (names, uids, timings) for the run's stage-record file.

Waiting is bounded everywhere: pods that cannot start (unschedulable, quota exceeded,
image pull errors, crash loops) for longer than ``pending_grace_s`` raise
:class:`PodsStuck` naming the pods and reasons instead of waiting out the timeout, and
every wait renews the session Lease.  :func:`guarded` tears the session down when a
stage fails or is interrupted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faro.backends.k8s import manifests as mf
from faro.backends.k8s.client import ApiError, KubeClient, summary
from faro.backends.k8s.config import Cell, K8sSettings, cluster_name, head_service
from faro.backends.k8s.lease import LeaseLock

Record = dict[str, Any]
Problem = tuple[str, str, str]  # (object, reason, message)

#: container waiting reasons that do not resolve by themselves
FATAL_WAITING = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CrashLoopBackOff",
                 "CreateContainerConfigError", "CreateContainerError"}
#: event reasons of controllers that could not create a pod (quota, admission)
FAILED_CREATE = {"FailedCreate", "FailedToCreateHeadPod", "FailedToCreateWorkerPod"}


class StageError(RuntimeError):
    """A stage could not do its work; the message says what and where."""


class PodsStuck(StageError):
    """Pods that cannot start (or cannot be created) for longer than the grace period."""

    def __init__(self, namespace: str, what: str, problems: Sequence[Problem]):
        self.namespace, self.problems = namespace, list(problems)
        lines = "; ".join(f"{o}: {r}: {m}" for o, r, m in self.problems)
        super().__init__(f"{what} in namespace {namespace} cannot start: {lines}")


class WaitTimeout(StageError, TimeoutError):
    pass


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Session:
    """One live run on one cluster."""

    kc: KubeClient
    s: K8sSettings
    cell: Cell
    raw_dir: Path | None = None
    holder: str | None = None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    lock: LeaseLock = field(init=False)

    def __post_init__(self) -> None:
        if self.holder is None:
            self.holder = f"{self.ns}/seed-{self.cell.seed}"
        self.lock = LeaseLock(self.kc, self.s, self.holder, sleep=self.sleep, monotonic=self.monotonic)
        self._last_renew = -1e18

    @property
    def ns(self) -> str:
        return mf.cell_namespace(self.cell, self.s)

    def renew_if_due(self, force: bool = False) -> None:
        """Renew the session lease at most every third of its duration."""
        if force or self.monotonic() - self._last_renew >= self.s.lease_duration_s / 3:
            self.lock.renew()
            self.mark_renewed()

    def mark_renewed(self) -> None:
        self._last_renew = self.monotonic()

    def require_namespace(self) -> None:
        ns = self.kc.get("v1", "Namespace", self.ns)
        if ns is None or (ns.get("status") or {}).get("phase") == "Terminating":
            raise StageError(f"namespace {self.ns} is gone or terminating: run the session from quota setup again")


def _stage(name: str, sess: Session, t0: float, wall0: float, **extra: Any) -> Record:
    t1 = time.time()
    return {"stage": name, "backend": "k8s", "namespace": sess.ns, "quota": sess.cell.quota,
            "policy": sess.cell.policy, "seed": sess.cell.seed, "api_server": sess.kc.host,
            "started": _iso(wall0), "finished": _iso(t1), "duration_s": round(sess.monotonic() - t0, 3), **extra}


# -- pod health -------------------------------------------------------------------------
def pod_ready(pod: Mapping[str, Any]) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pod_problem(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) if the pod cannot make progress by itself, else None."""
    st = pod.get("status") or {}
    if st.get("phase") == "Pending":
        for c in st.get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False":
                return (c.get("reason") or "Unschedulable"), (c.get("message") or "")
    for cs in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []):
        w = (cs.get("state") or {}).get("waiting") or {}
        if w.get("reason") in FATAL_WAITING:
            return w["reason"], f"container {cs.get('name')}: {w.get('message', '')}"
    if st.get("phase") == "Failed":
        return "Failed", st.get("message") or st.get("reason") or ""
    return None


def creation_problems(kc: KubeClient, ns: str, involved: Callable[[Mapping[str, Any]], bool]) -> list[Problem]:
    """Warning events of controllers that failed to create pods (e.g. 'exceeded quota')."""
    out = []
    for ev in kc.list("v1", "Event", ns, field_selector="type=Warning"):
        obj = ev.get("involvedObject") or {}
        msg = ev.get("message") or ""
        if (ev.get("reason") in FAILED_CREATE or "exceeded quota" in msg) and involved(obj):
            out.append((f"{obj.get('kind')}/{obj.get('name')}", ev.get("reason") or "", msg))
    return out


def wait_until(sess: Session, what: str, check: Callable[[], tuple[bool, list[Problem], Any]],
               timeout_s: float, renew: bool = True) -> tuple[Any, float]:
    """Poll ``check`` until done. Problems that persist for ``pending_grace_s`` raise PodsStuck,
    the timeout raises WaitTimeout; the session lease is renewed meanwhile. Returns (info, waited_s)."""
    t0 = sess.monotonic()
    first_seen: dict[tuple[str, str], float] = {}
    while True:
        done, problems, info = check()
        now = sess.monotonic()
        if done:
            return info, now - t0
        current = {(o, r) for o, r, _ in problems}
        first_seen = {k: v for k, v in first_seen.items() if k in current}
        for k in current:
            first_seen.setdefault(k, now)
        stuck = [p for p in problems if now - first_seen[(p[0], p[1])] >= sess.s.pending_grace_s]
        if stuck:
            raise PodsStuck(sess.ns, what, stuck)
        if now - t0 >= timeout_s:
            detail = "; ".join(f"{o}: {r}: {m}" for o, r, m in problems) or f"last state: {info}"
            raise WaitTimeout(f"{what} in namespace {sess.ns} not done after {timeout_s:.0f} s ({detail})")
        if renew:
            sess.renew_if_due()
        sess.sleep(sess.s.poll_s)


# -- stages -----------------------------------------------------------------------------
def setup_quota(sess: Session, trace_text: str | None = None, data: Mapping[str, bytes] | None = None) -> Record:
    """Take the session lease, then apply the namespace, its ResourceQuota and the ConfigMaps
    (``data``: contents of the policy's data files ``cell.data_files``)."""
    t0, w0 = sess.monotonic(), time.time()
    lock = sess.lock.acquire()
    sess.mark_renewed()
    existing = sess.kc.get("v1", "Namespace", sess.ns)
    if existing is not None and (existing.get("status") or {}).get("phase") == "Terminating":
        wait_until(sess, f"namespace {sess.ns} left over from an earlier run to go",
                   lambda: (sess.kc.get("v1", "Namespace", sess.ns) is None, [], "Terminating"),
                   sess.s.teardown_timeout_s)
    applied = [sess.kc.apply(o) for o in mf.quota_objects(sess.cell, sess.s, trace_text, data)]

    def active() -> tuple[bool, list[Problem], Any]:
        ns = sess.kc.get("v1", "Namespace", sess.ns) or {}
        phase = (ns.get("status") or {}).get("phase")
        return phase == "Active", [], phase

    wait_until(sess, f"namespace {sess.ns} to be Active", active, 60.0)
    rq = applied[1]
    return _stage("setup_quota", sess, t0, w0, lock=lock, objects=[summary(o) for o in applied],
                  resource_quota={"hard": (rq.get("spec") or {}).get("hard")},
                  reused_namespace=existing is not None and (existing.get("status") or {}).get("phase") == "Active")


def deploy_clusters(sess: Session) -> Record:
    """Apply one RayCluster per job and wait until every head pod is Ready."""
    t0, w0 = sess.monotonic(), time.time()
    sess.renew_if_due(force=True)
    sess.require_namespace()
    applied = [sess.kc.apply(o) for o in mf.cluster_objects(sess.cell, sess.s)]
    names = {cluster_name(j) for j in sess.cell.jobs}
    ready_at: dict[str, float] = {}

    def heads() -> tuple[bool, list[Problem], Any]:
        pods = sess.kc.list("v1", "Pod", sess.ns, label_selector="ray.io/node-type=head")
        problems: list[Problem] = []
        by_cluster: dict[str, Mapping[str, Any]] = {}
        for p in pods:
            c = (p["metadata"].get("labels") or {}).get("ray.io/cluster")
            if c in names:
                by_cluster[c] = p
                if pod_ready(p):
                    ready_at.setdefault(c, sess.monotonic() - t0)
                elif (prob := pod_problem(p)) is not None:
                    problems.append((f"Pod/{p['metadata']['name']}", *prob))
        problems += creation_problems(sess.kc, sess.ns,
                                      lambda o: o.get("kind") == "RayCluster" and o.get("name") in names)
        missing = sorted(names - set(ready_at))
        return not missing, problems, {"not_ready": missing, "pods": {c: p["metadata"]["name"]
                                                                       for c, p in by_cluster.items()}}

    info, waited = wait_until(sess, f"head pods of {len(names)} RayClusters", heads, sess.s.ready_timeout_s)
    return _stage("deploy_clusters", sess, t0, w0, ray_clusters=[summary(o) for o in applied],
                  head_pods=info["pods"], head_ready_after_s={c: round(v, 3) for c, v in sorted(ready_at.items())},
                  waited_s=round(waited, 3))


def deploy_jobs(sess: Session) -> Record:
    """Deploy the Serve application on every cluster through its dashboard (service proxy), wait RUNNING."""
    t0, w0 = sess.monotonic(), time.time()
    sess.renew_if_due(force=True)
    sess.require_namespace()
    deployed = []
    for job in sess.cell.jobs:
        svc = head_service(job)
        sess.kc.proxy("PUT", sess.ns, "Service", svc, mf.DASHBOARD_PORT, "api/serve/applications/",
                      body=mf.serve_config(sess.cell, sess.s, job))
        deployed.append({"job": job, "service": svc,
                         "path": sess.kc.proxy_path(sess.ns, "Service", svc, mf.DASHBOARD_PORT,
                                                    "api/serve/applications/")})
    status: dict[str, str] = {}
    clusters = {cluster_name(j) for j in sess.cell.jobs}

    def running() -> tuple[bool, list[Problem], Any]:
        problems: list[Problem] = []
        for job in sess.cell.jobs:
            if status.get(job) == "RUNNING":
                continue
            got = sess.kc.proxy("GET", sess.ns, "Service", head_service(job), mf.DASHBOARD_PORT,
                                "api/serve/applications/")
            a = ((got or {}).get("applications") or {}).get(job) or {}
            status[job] = a.get("status", "NOT_STARTED")
            if status[job] in {"DEPLOY_FAILED", "UNHEALTHY"}:
                raise StageError(f"Serve application {job!r} is {status[job]}: {a.get('message', '')}")
        for p in sess.kc.list("v1", "Pod", sess.ns, label_selector="ray.io/node-type=worker"):
            if (prob := pod_problem(p)) is not None:
                problems.append((f"Pod/{p['metadata']['name']}", *prob))
        problems += creation_problems(sess.kc, sess.ns,
                                      lambda o: o.get("kind") == "RayCluster" and o.get("name") in clusters)
        return all(v == "RUNNING" for v in status.values()), problems, dict(status)

    info, waited = wait_until(sess, f"Serve applications on {len(deployed)} clusters", running,
                              sess.s.ready_timeout_s)
    return _stage("deploy_jobs", sess, t0, w0, applications=deployed, status=info, waited_s=round(waited, 3))


def _deployment_available(d: Mapping[str, Any] | None) -> bool:
    if not d:
        return False
    st = d.get("status") or {}
    if st.get("observedGeneration", 0) < (d.get("metadata") or {}).get("generation", 1):
        return False
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in st.get("conditions") or [])


AUTOSCALER_SELECTOR = f"app.kubernetes.io/part-of=faro,app.kubernetes.io/component={mf.AUTOSCALER}"


def autoscaler_status(sess: Session) -> tuple[str | None, dict[str, Any] | None]:
    """(pod, podrun status) of the Ready autoscaler pod, or (None, None) when there is none."""
    for p in sess.kc.list("v1", "Pod", sess.ns, label_selector=AUTOSCALER_SELECTOR):
        if (p.get("status") or {}).get("phase") == "Running" and pod_ready(p):
            name = p["metadata"]["name"]
            return name, sess.kc.proxy("GET", sess.ns, "Pod", name, mf.RECORDS_PORT, "status") or {}
    return None, None


def launch_autoscaler(sess: Session) -> Record:
    """Apply the autoscaler's ServiceAccount, Role, RoleBinding and Deployment; wait until it is
    Available and its process has started (its decision log has the ``start`` record)."""
    t0, w0 = sess.monotonic(), time.time()
    sess.renew_if_due(force=True)
    sess.require_namespace()
    applied = [sess.kc.apply(o) for o in mf.autoscaler_objects(sess.cell, sess.s)]

    def started() -> tuple[bool, list[Problem], Any]:
        d = sess.kc.get("apps/v1", "Deployment", mf.AUTOSCALER, sess.ns)
        pods = sess.kc.list("v1", "Pod", sess.ns, label_selector=AUTOSCALER_SELECTOR)
        problems = [(f"Pod/{p['metadata']['name']}", *prob) for p in pods if (prob := pod_problem(p))]
        problems += creation_problems(sess.kc, sess.ns, lambda o: o.get("kind") == "ReplicaSet"
                                      and str(o.get("name", "")).startswith(mf.AUTOSCALER + "-"))
        names = [p["metadata"]["name"] for p in pods]
        if not _deployment_available(d):
            return False, problems, names
        pod, st = autoscaler_status(sess)
        if pod is None:
            return False, problems, names
        if (st or {}).get("state") == "exited":
            raise StageError(f"the autoscaler process in pod {pod} exited with {st.get('returncode')} at start "
                             f"(kubectl -n {sess.ns} logs {pod})")
        files = (sess.kc.proxy("GET", sess.ns, "Pod", pod, mf.RECORDS_PORT, "files") or {}).get("files", [])
        return any(f["name"] == "autoscaler.jsonl" and f.get("size") for f in files), problems, [pod]

    pods, waited = wait_until(sess, f"Deployment {mf.AUTOSCALER}", started, sess.s.ready_timeout_s)
    return _stage("launch_autoscaler", sess, t0, w0, objects=[summary(o) for o in applied], pods=pods,
                  waited_s=round(waited, 3))


def _raw(sess: Session, *parts: str) -> Path:
    if sess.raw_dir is None:
        raise StageError("this stage writes files: give the session a raw_dir")
    return sess.raw_dir.joinpath(*parts)


def fetch_pod_files(sess: Session, pod: str, dest: Path) -> list[dict[str, Any]]:
    """Copy every file a faro pod's record server lists into ``dest`` (via the pod proxy)."""
    listing = sess.kc.proxy("GET", sess.ns, "Pod", pod, mf.RECORDS_PORT, "files")
    got = []
    for f in (listing or {}).get("files", []):
        name = f["name"]
        if name.startswith("/") or ".." in Path(name).parts:
            raise StageError(f"pod {pod} listed an unsafe file name {name!r}")
        n = sess.kc.stream_to(sess.kc.proxy_path(sess.ns, "Pod", pod, mf.RECORDS_PORT, f"files/{name}"),
                              dest / name)
        if f.get("size") is not None and n < int(f["size"]):
            raise StageError(f"{name} from pod {pod}: got {n} bytes, listed {f['size']}")
        got.append({"name": name, "bytes": n})
    return got


def _replay_ended(sess: Session, pod: str | None) -> bool:
    """Has the replayer written its end signal? (The autoscaler stops on it, a moment before the
    replayer process itself exits.)"""
    if pod is None:
        return False
    listing = sess.kc.proxy("GET", sess.ns, "Pod", pod, mf.RECORDS_PORT, "files") or {}
    return any(f.get("name") == "replay_end.json" for f in listing.get("files", []))


def replay(sess: Session) -> Record:
    """Run the replayer Job, wait for the replay to end, fetch its records, let the pod exit."""
    t0, w0 = sess.monotonic(), time.time()
    sess.renew_if_due(force=True)
    sess.require_namespace()
    if not _deployment_available(sess.kc.get("apps/v1", "Deployment", mf.AUTOSCALER, sess.ns)):
        raise StageError(f"autoscaler Deployment in {sess.ns} is not available: launch it before the replay")
    applied = [sess.kc.apply(o) for o in mf.replayer_objects(sess.cell, sess.s)]
    sel = f"job-name={mf.REPLAYER}"

    def job_failed(job: Mapping[str, Any] | None) -> str | None:
        for c in ((job or {}).get("status") or {}).get("conditions") or []:
            if c.get("type") == "Failed" and c.get("status") == "True":
                return f"{c.get('reason')}: {c.get('message')}"
        return None

    def replay_over() -> tuple[bool, list[Problem], Any]:
        failed = job_failed(sess.kc.get("batch/v1", "Job", mf.REPLAYER, sess.ns))
        pods = sess.kc.list("v1", "Pod", sess.ns, label_selector=sel)
        problems = [(f"Pod/{p['metadata']['name']}", *prob) for p in pods
                    if (prob := pod_problem(p)) and prob[0] != "Failed"]
        problems += creation_problems(sess.kc, sess.ns, lambda o: o.get("kind") == "Job"
                                      and o.get("name") == mf.REPLAYER)
        for p in pods:
            phase = (p.get("status") or {}).get("phase")
            if phase in {"Succeeded", "Failed"}:
                raise StageError(f"replayer pod {p['metadata']['name']} ended ({phase}) before its records "
                                 f"were fetched (Job: {failed or 'running'})")
        ready = None
        for p in pods:
            if (p.get("status") or {}).get("phase") == "Running" and pod_ready(p):
                ready = p["metadata"]["name"]
                st = sess.kc.proxy("GET", sess.ns, "Pod", ready, mf.RECORDS_PORT, "status")
                if (st or {}).get("state") == "exited":
                    return True, problems, {"pod": ready, "returncode": st.get("returncode")}
        if failed:
            raise StageError(f"replayer Job {mf.REPLAYER} failed: {failed}")
        apod, ast = autoscaler_status(sess)  # a replay without its autoscaler is not the experiment
        if (ast is None or ast.get("state") == "exited") and not _replay_ended(sess, ready):
            raise StageError(f"the autoscaler ({apod or 'no Ready pod'}) stopped during the replay "
                             f"(returncode {(ast or {}).get('returncode')})")
        return False, problems, {"pods": [p["metadata"]["name"] for p in pods]}

    info, waited = wait_until(sess, "trace replay", replay_over, sess.s.replay_timeout_s)
    pod = info["pod"]
    files = fetch_pod_files(sess, pod, _raw(sess, "replayer"))

    def autoscaler_done() -> tuple[bool, list[Problem], Any]:
        apod, ast = autoscaler_status(sess)  # it ends on the replayer's replay_end.json
        return ast is None or ast.get("state") == "exited", [], {"pod": apod, "status": ast}

    try:  # keep the replayer serving its signals until the autoscaler has seen the end
        stopped, _ = wait_until(sess, "the autoscaler to see the replay end", autoscaler_done,
                                sess.s.autoscaler_stop_timeout_s)
    except WaitTimeout as e:
        stopped = {"timeout": str(e)}
    try:  # the pod may exit while answering: its records are already saved
        sess.kc.proxy("POST", sess.ns, "Pod", pod, mf.RECORDS_PORT, "release")
    except ApiError as e:
        print(f"faro k8s: releasing replayer pod {pod} answered {e}; going on", flush=True)

    def finished() -> tuple[bool, list[Problem], Any]:
        st = (sess.kc.get("batch/v1", "Job", mf.REPLAYER, sess.ns) or {}).get("status") or {}
        for c in st.get("conditions") or []:
            if c.get("type") in {"Complete", "Failed"} and c.get("status") == "True":
                return True, [], c["type"]
        return False, [], st

    outcome, _ = wait_until(sess, f"Job {mf.REPLAYER} to finish", finished, 300.0)
    rec = _stage("replay", sess, t0, w0, objects=[summary(o) for o in applied], pod=pod,
                 returncode=info["returncode"], job_outcome=outcome, files=files, replay_s=round(waited, 3),
                 autoscaler_stop=stopped)
    if info["returncode"] != 0 or outcome != "Complete":
        raise StageError(f"replayer exited with {info['returncode']} (Job {outcome}); its records were saved "
                         f"under {_raw(sess, 'replayer')}: {json.dumps(rec)[:300]}")
    return rec


def fetch_logs(sess: Session) -> Record:
    """Pod logs of every container in the namespace, the autoscaler's record files, and the
    RayClusters and Warning events as JSON, into the run's raw folder."""
    t0, w0 = sess.monotonic(), time.time()
    sess.renew_if_due(force=True)
    sess.require_namespace()
    logs = []
    for p in sess.kc.list("v1", "Pod", sess.ns):
        name = p["metadata"]["name"]
        statuses = (p.get("status") or {}).get("containerStatuses") or []
        restarts = {cs.get("name"): cs.get("restartCount", 0) for cs in statuses}
        for c in (p.get("spec") or {}).get("containers") or []:
            cname = c["name"]
            try:
                n = sess.kc.pod_log(sess.ns, name, cname, _raw(sess, "pods", name, f"{cname}.log"))
                logs.append({"pod": name, "container": cname, "bytes": n})
                if restarts.get(cname):
                    n = sess.kc.pod_log(sess.ns, name, cname, _raw(sess, "pods", name, f"{cname}.previous.log"),
                                        previous=True)
                    logs.append({"pod": name, "container": cname, "previous": True, "bytes": n})
            except ApiError as e:  # e.g. a container that never started has no log
                logs.append({"pod": name, "container": cname, "error": f"HTTP {e.status}"})
    auto_files: list[dict[str, Any]] = []
    for p in sess.kc.list("v1", "Pod", sess.ns, label_selector=AUTOSCALER_SELECTOR):
        if (p.get("status") or {}).get("phase") == "Running" and pod_ready(p):
            auto_files += fetch_pod_files(sess, p["metadata"]["name"], _raw(sess, "autoscaler"))
    state = {"rayclusters": sess.kc.list("ray.io/v1", "RayCluster", sess.ns),
             "events": sess.kc.list("v1", "Event", sess.ns, field_selector="type=Warning")}
    sp = _raw(sess, "cluster_state.json")
    sp.parent.mkdir(parents=True, exist_ok=True)
    sp.write_text(json.dumps(state, indent=1, sort_keys=True, default=str))
    return _stage("fetch_logs", sess, t0, w0, raw_dir=str(sess.raw_dir), logs=logs, autoscaler_files=auto_files,
                  warning_events=len(state["events"]))


def teardown(sess: Session, release_lock: bool = True) -> Record:
    """Delete the namespace (and with it everything), wait until it is gone, release the lease.
    Idempotent: a namespace that does not exist is success."""
    t0, w0 = sess.monotonic(), time.time()
    existed = sess.kc.delete("v1", "Namespace", sess.ns)
    waited = 0.0
    if existed:  # teardown must work even when the lease is lost: no renewals here
        _, waited = wait_until(sess, f"namespace {sess.ns} to be deleted",
                               lambda: (sess.kc.get("v1", "Namespace", sess.ns) is None, [], "Terminating"),
                               sess.s.teardown_timeout_s, renew=False)
    released = sess.lock.release() if release_lock else False
    return _stage("teardown", sess, t0, w0, deleted=existed, waited_s=round(waited, 3), lease_released=released)


STAGES: dict[str, Callable[..., Record]] = {
    "setup_quota": setup_quota, "deploy_clusters": deploy_clusters, "deploy_jobs": deploy_jobs,
    "launch_autoscaler": launch_autoscaler, "replay": replay, "fetch_logs": fetch_logs, "teardown": teardown,
}


def guarded(stage: Callable[..., Record], sess: Session, *args: Any, **kw: Any) -> Record:
    """Run a stage; on any failure or Ctrl-C tear the session down, then re-raise."""
    try:
        return stage(sess, *args, **kw)
    except BaseException:
        try:
            teardown(sess)
        except Exception as e:  # report the original error; the teardown error is secondary
            print(f"faro k8s: teardown after failure also failed: {e}", flush=True)
        raise


def write_record(record: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write a stage record as JSON, atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
    os.replace(tmp, p)


def client_for(s: K8sSettings) -> KubeClient:
    """The API client the settings name: ``server`` (a URL) or the kubeconfig (context, file)."""
    if s.server:
        return KubeClient.for_host(s.server, s.field_manager)
    return KubeClient.from_kubeconfig(s.context, s.kubeconfig, s.field_manager)


def session_from_config(config: Mapping[str, Any], quota: int, policy: str, seed: int, jobs: Sequence[str],
                        raw_dir: str | os.PathLike | None = None,
                        policy_config: Mapping[str, Any] | None = None) -> Session:
    """A Session from the workflow config's ``k8s:`` section and the kubeconfig it names."""
    from faro.backends.k8s.config import settings_from_config

    s = settings_from_config(config.get("k8s"))
    kc = client_for(s)
    cell = Cell(quota=int(quota), policy=policy, seed=int(seed), jobs=tuple(jobs), policy_config=policy_config or {})
    return Session(kc, s, cell, Path(raw_dir) if raw_dir else None)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m faro.backends.k8s.stages STAGE --quota Q --policy P --seed S [...]``:
    run one stage and write its record (the Snakemake rules' entry point; also for by-hand runs)."""
    import argparse

    import yaml

    from faro.backends.k8s.config import default_jobs, jobs_from_trace, settings_from_config

    ap = argparse.ArgumentParser(prog="python -m faro.backends.k8s.stages")
    ap.add_argument("stage", choices=sorted(STAGES))
    ap.add_argument("--quota", type=int, required=True)
    ap.add_argument("--policy", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--config", type=Path, help="workflow config YAML with a k8s: section")
    ap.add_argument("--policy-config", type=Path, help="policy parameter YAML (goes into the ConfigMap)")
    ap.add_argument("--trace", type=Path, help="trace JSON Lines (job names; embedded by setup_quota)")
    ap.add_argument("--jobs", type=int, default=10, help="number of jobs when no trace is given")
    ap.add_argument("--raw-dir", type=Path, help="the run's raw folder (replay, fetch_logs)")
    ap.add_argument("--record", type=Path, help="write the stage record (JSON) here")
    ap.add_argument("--server", help="API server URL instead of the kubeconfig (e.g. `kubectl proxy`)")
    ap.add_argument("--no-teardown-on-error", action="store_true")
    a = ap.parse_args(argv)

    config = yaml.safe_load(a.config.read_text()) if a.config else {}
    s = settings_from_config((config or {}).get("k8s"))
    kc = client_for(s.with_(server=a.server) if a.server else s)
    jobs = jobs_from_trace(a.trace) if a.trace else default_jobs(a.jobs)
    pcfg = yaml.safe_load(a.policy_config.read_text()) if a.policy_config else {}
    cell = Cell(quota=a.quota, policy=a.policy, seed=a.seed, jobs=jobs, policy_config=pcfg or {})
    sess = Session(kc, s, cell, a.raw_dir)
    kw: dict[str, Any] = {}
    if a.stage == "setup_quota" and a.trace:
        kw["trace_text"] = a.trace.read_text()
    fn = STAGES[a.stage]
    rec = fn(sess, **kw) if (a.no_teardown_on_error or a.stage == "teardown") else guarded(fn, sess, **kw)
    if a.record:
        write_record(rec, a.record)
    print(json.dumps({k: rec[k] for k in ("stage", "namespace", "duration_s")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
