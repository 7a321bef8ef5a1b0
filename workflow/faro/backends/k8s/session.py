"""The ``k8s`` backend's stages: one function per Snakemake stage of a live run.

Every stage takes a :class:`Session` (API client, settings, cell, raw folder), does its
work with server-side apply / plain API calls, checks the live state it relies on, and
returns a JSON-able record (names, uids, timings) for the run's stage-record file.

Waiting is bounded everywhere: pods that cannot start (quota exceeded, image pull errors,
crash loops) for longer than ``pending_grace_s`` (Unschedulable: ``unschedulable_grace_s``, room
for a node autoscaler) raise :class:`PodsStuck` naming the pods and reasons instead of waiting
out the timeout; Warning events count only when their last occurrence is recent and not older
than the stage; every wait renews the session Lease.

Transient API and proxy errors are retried by the client for ``api_retry_grace_s``
(:mod:`.client`); when even that runs out the stage raises
:class:`~faro.backends.k8s.client.ApiUnavailable` and the cell is left running.  Every stage
after ``setup_quota`` starts by re-taking the session's own Lease (:meth:`Session.hold`), so a
stage run again after a crash of the operator's machine reattaches to the namespace it left;
the replay stage picks up a replayer Job that is already running instead of starting another.
A stage that fails for real (or is interrupted) is torn down by the workflow's stage runner
(:func:`faro.workflow.stage_runner.teardown_on_failure`), never for ApiUnavailable.
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
from faro.backends.k8s.client import ApiError, KubeClient, summary, transient
from faro.backends.k8s.config import Cell, K8sSettings, cluster_name, head_service
from faro.backends.k8s.lease import LeaseLock, parse_time

Record = dict[str, Any]
Problem = tuple[str, str, str]  # (object, reason, message)

#: container waiting reasons that do not resolve by themselves
FATAL_WAITING = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CrashLoopBackOff",
                 "CreateContainerConfigError", "CreateContainerError"}
#: event reasons of controllers that could not create a pod (quota, admission)
FAILED_CREATE = {"FailedCreate", "FailedToCreateHeadPod", "FailedToCreateWorkerPod"}
#: event reasons of kubelets that cannot start a pod's containers (a missing ConfigMap volume, ...)
FAILED_START = {"FailedMount", "FailedAttachVolume"}
#: shortest time a Warning event stays current after its last occurrence (core/v1 event times
#: have whole seconds)
EVENT_MIN_RECENT_S = 2.0
#: host vs. API server clock skew tolerated when comparing event times with the stage's start
CLOCK_SKEW_S = 5.0


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


def session_holder(cell: Cell, s: K8sSettings) -> str:
    """The Lease holder identity of a cell's session (stable across its stage processes)."""
    return f"{mf.cell_namespace(cell, s)}/seed-{cell.seed}"


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds")


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
            self.holder = session_holder(self.cell, self.s)
        self.lock = LeaseLock(self.kc, self.s, self.holder, sleep=self.sleep, monotonic=self.monotonic)
        self._last_renew = -1e18

    @property
    def ns(self) -> str:
        return mf.cell_namespace(self.cell, self.s)

    def hold(self) -> dict[str, Any]:
        """Re-take this session's Lease at the start of a stage: renew it, or take it back if it
        lapsed or vanished while nobody watched (e.g. the operator's machine was down); fails at
        once (LockTimeout) if another session holds it. Returns the lease record."""
        rec = self.lock.acquire(timeout_s=0.0)
        self.mark_renewed()
        return rec

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
            raise StageError(f"namespace {self.ns} is gone or terminating: "
                             f"run the session from quota setup again")


def _stage(name: str, sess: Session, t0: float, wall0: float, **extra: Any) -> Record:
    t1 = time.time()
    return {"stage": name, "backend": "k8s", "namespace": sess.ns, "quota": sess.cell.quota,
            "policy": sess.cell.policy, "seed": sess.cell.seed, "api_server": sess.kc.host,
            "started": _iso(wall0), "finished": _iso(t1), "duration_s": round(sess.monotonic() - t0, 3),
            **extra}


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


def event_time(ev: Mapping[str, Any]) -> float | None:
    """Last occurrence of an event (epoch seconds): series.lastObservedTime, lastTimestamp,
    eventTime, then the object's creation time; None if it carries no time at all."""
    for t in ((ev.get("series") or {}).get("lastObservedTime"), ev.get("lastTimestamp"), ev.get("eventTime"),
              (ev.get("metadata") or {}).get("creationTimestamp")):
        if t:
            return parse_time(t).timestamp()
    return None


def creation_problems(kc: KubeClient, ns: str, involved: Callable[[Mapping[str, Any]], bool],
                      since: float | None = None, recent_s: float | None = None) -> list[Problem]:
    """Current Warning events of controllers that failed to create or start pods ('exceeded quota',
    FailedMount): last occurred after ``since`` (the stage's start, epoch s) and at most
    ``recent_s`` ago. Older events are history (events live about an hour): an "exceeded quota"
    of an earlier stage, or a rejection that a retry has since overcome. A controller that keeps
    failing re-emits its event (count and last timestamp move on every retry), so it stays current."""
    out = []
    now = time.time()
    for ev in kc.list("v1", "Event", ns, field_selector="type=Warning"):
        obj = ev.get("involvedObject") or {}
        msg = ev.get("message") or ""
        if not ((ev.get("reason") in FAILED_CREATE | FAILED_START or "exceeded quota" in msg)
                and involved(obj)):
            continue
        t = event_time(ev)
        if t is not None and ((since is not None and t < since - CLOCK_SKEW_S)
                              or (recent_s is not None and now - t > recent_s)):
            continue
        out.append((f"{obj.get('kind')}/{obj.get('name')}", ev.get("reason") or "", msg))
    return out


def current_events(sess: Session, involved: Callable[[Mapping[str, Any]], bool],
                   since: float) -> list[Problem]:
    """:func:`creation_problems` of this stage (since its start), current for half the grace (at
    least :data:`EVENT_MIN_RECENT_S`: event times have whole seconds): a failure the controller
    keeps retrying stays current until it becomes stuck at the grace; a single rejection that a
    retry overcame stops counting."""
    return creation_problems(sess.kc, sess.ns, involved, since=since,
                             recent_s=max(sess.s.pending_grace_s / 2, EVENT_MIN_RECENT_S))


def grace_for(s: K8sSettings, reason: str) -> float:
    """How long a problem may last: Unschedulable waits for a node autoscaler, the rest does not."""
    return s.unschedulable_grace_s if reason == "Unschedulable" else s.pending_grace_s


def wait_until(sess: Session, what: str, check: Callable[[], tuple[bool, list[Problem], Any]],
               timeout_s: float, renew: bool = True) -> tuple[Any, float]:
    """Poll ``check`` until done. Problems that persist for their grace (:func:`grace_for`) raise PodsStuck,
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
        stuck = [p for p in problems if now - first_seen[(p[0], p[1])] >= grace_for(sess.s, p[1])]
        if stuck:
            raise PodsStuck(sess.ns, what, stuck)
        if now - t0 >= timeout_s:
            detail = "; ".join(f"{o}: {r}: {m}" for o, r, m in problems) or f"last state: {info}"
            raise WaitTimeout(f"{what} in namespace {sess.ns} not done after {timeout_s:.0f} s ({detail})")
        if renew:
            sess.renew_if_due()
        sess.sleep(sess.s.poll_s)


# -- stages -----------------------------------------------------------------------------
def setup_quota(sess: Session, trace_text: str | None = None,
                data: Mapping[str, bytes] | None = None) -> Record:
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
                  reused_namespace=(existing is not None
                                    and (existing.get("status") or {}).get("phase") == "Active"))


def deploy_clusters(sess: Session) -> Record:
    """Apply one RayCluster per job and wait until every head pod is Ready."""
    t0, w0 = sess.monotonic(), time.time()
    lock = sess.hold()
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
        problems += current_events(sess,
                                   lambda o: o.get("kind") == "RayCluster" and o.get("name") in names, w0)
        missing = sorted(names - set(ready_at))
        return not missing, problems, {"not_ready": missing, "pods": {c: p["metadata"]["name"]
                                                                       for c, p in by_cluster.items()}}

    info, waited = wait_until(sess, f"head pods of {len(names)} RayClusters", heads, sess.s.ready_timeout_s)
    return _stage("deploy_clusters", sess, t0, w0, lock=lock, ray_clusters=[summary(o) for o in applied],
                  head_pods=info["pods"],
                  head_ready_after_s={c: round(v, 3) for c, v in sorted(ready_at.items())},
                  waited_s=round(waited, 3))


def deploy_jobs(sess: Session) -> Record:
    """Deploy the Serve application on every cluster through its dashboard (service proxy), wait RUNNING."""
    t0, w0 = sess.monotonic(), time.time()
    lock = sess.hold()
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
        problems += current_events(sess,
                                   lambda o: o.get("kind") == "RayCluster" and o.get("name") in clusters, w0)
        return all(v == "RUNNING" for v in status.values()), problems, dict(status)

    info, waited = wait_until(sess, f"Serve applications on {len(deployed)} clusters", running,
                              sess.s.ready_timeout_s)
    return _stage("deploy_jobs", sess, t0, w0, lock=lock, applications=deployed, status=info,
                  waited_s=round(waited, 3))


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
    """Apply the autoscaler's ServiceAccount and Deployment; wait until it is
    Available and its process has started (its decision log has the ``start`` record)."""
    t0, w0 = sess.monotonic(), time.time()
    lock = sess.hold()
    sess.require_namespace()
    applied = [sess.kc.apply(o) for o in mf.autoscaler_objects(sess.cell, sess.s)]

    def started() -> tuple[bool, list[Problem], Any]:
        d = sess.kc.get("apps/v1", "Deployment", mf.AUTOSCALER, sess.ns)
        pods = sess.kc.list("v1", "Pod", sess.ns, label_selector=AUTOSCALER_SELECTOR)
        problems = [(f"Pod/{p['metadata']['name']}", *prob) for p in pods if (prob := pod_problem(p))]
        problems += current_events(sess, lambda o: o.get("kind") in {"ReplicaSet", "Pod"}
                                   and str(o.get("name", "")).startswith(mf.AUTOSCALER + "-"), w0)
        names = [p["metadata"]["name"] for p in pods]
        if not _deployment_available(d):
            return False, problems, names
        pod, st = autoscaler_status(sess)
        if pod is None:
            return False, problems, names
        if (st or {}).get("state") == "exited":
            raise StageError(f"the autoscaler process in pod {pod} exited with {st.get('returncode')} "
                             f"at start (kubectl -n {sess.ns} logs {pod})")
        files = (sess.kc.proxy("GET", sess.ns, "Pod", pod, mf.RECORDS_PORT, "files") or {}).get("files", [])
        return any(f["name"] == "autoscaler.jsonl" and f.get("size") for f in files), problems, [pod]

    pods, waited = wait_until(sess, f"Deployment {mf.AUTOSCALER}", started, sess.s.ready_timeout_s)
    return _stage("launch_autoscaler", sess, t0, w0, lock=lock, objects=[summary(o) for o in applied],
                  pods=pods, waited_s=round(waited, 3))


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


def _job_condition(job: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(type, "reason: message") of a finished Job (Complete / Failed), else None."""
    for c in ((job or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") in {"Complete", "Failed"} and c.get("status") == "True":
            return c["type"], f"{c.get('reason')}: {c.get('message')}"
    return None


def _pod_restarts(sess: Session, selector: str) -> dict[str, int]:
    """Pod name -> its containers' restarts, for the pods of ``selector``."""
    out = {}
    for p in sess.kc.list("v1", "Pod", sess.ns, label_selector=selector):
        cs = (p.get("status") or {}).get("containerStatuses") or []
        out[p["metadata"]["name"]] = sum(int(c.get("restartCount") or 0) for c in cs)
    return out


def _autoscaler_pods(sess: Session) -> dict[str, int]:
    """Autoscaler pod name -> its containers' restarts (a restarted process resumes from its records)."""
    return _pod_restarts(sess, AUTOSCALER_SELECTOR)


HEAD_SELECTOR = "ray.io/node-type=head"


def _release(sess: Session, pod: str) -> str:
    """Let the replayer pod exit (its records are saved). The pod may exit while answering, and its
    proxy then answers 502/503 for good: not retried blindly, but checked against the Job and the
    pod, and tried again only while both still run (for up to ``api_retry_grace_s``)."""
    t0 = sess.monotonic()
    while True:
        try:
            sess.kc.proxy("POST", sess.ns, "Pod", pod, mf.RECORDS_PORT, "release", retry=False)
            return "released"
        except Exception as e:  # noqa: BLE001 - an answer or a transport failure: look at the pod
            if not (isinstance(e, ApiError) or transient(e)):
                raise
            done = _job_condition(sess.kc.get("batch/v1", "Job", mf.REPLAYER, sess.ns))
            if done is not None:
                return f"exited ({done[0]})"
            phase = ((sess.kc.get("v1", "Pod", pod, sess.ns) or {}).get("status") or {}).get("phase")
            if phase in {None, "Succeeded", "Failed"}:
                return f"exited (pod {phase or 'gone'})"
            if sess.monotonic() - t0 >= sess.s.api_retry_grace_s:
                raise
            print(f"faro k8s: releasing replayer pod {pod}: {e}; trying again", flush=True)
            sess.sleep(sess.s.poll_s)


def replay(sess: Session) -> Record:
    """Run the replayer Job, wait for the replay to end, fetch its records, let the pod exit.

    Reattach: if the namespace already has the replayer Job (this stage ran before and the
    operator's machine died), the stage does not re-apply it but watches the running replay;
    a Job that already finished is accepted only if its records were fetched before."""
    t0, w0 = sess.monotonic(), time.time()
    lock = sess.hold()
    sess.require_namespace()
    if not _deployment_available(sess.kc.get("apps/v1", "Deployment", mf.AUTOSCALER, sess.ns)):
        raise StageError(f"autoscaler Deployment in {sess.ns} is not available: launch it before the replay")
    existing = sess.kc.get("batch/v1", "Job", mf.REPLAYER, sess.ns)
    reattached: dict[str, Any] | None = None
    if existing is not None:
        meta = existing.get("metadata") or {}
        reattached = {"job_uid": meta.get("uid"), "job_created": meta.get("creationTimestamp"),
                      "job_state": (_job_condition(existing) or ("Running", ""))[0],
                      "lease": lock.get("action")}
        print(f"faro k8s: reattaching to the replay running in {sess.ns} (Job {mf.REPLAYER}, "
              f"created {meta.get('creationTimestamp')})", flush=True)
        applied = [existing]
        done = _job_condition(existing)
        if done is not None:
            local = _raw(sess, "replayer")
            if done[0] == "Complete" and local.is_dir() and any(local.iterdir()):
                return _stage("replay", sess, t0, w0, lock=lock, objects=[summary(existing)],
                              reattached=reattached, job_outcome="Complete",
                              files=[{"name": p.name, "bytes": p.stat().st_size}
                                     for p in sorted(local.iterdir()) if p.is_file()],
                              note="the replay had finished and its records were fetched before")
            raise StageError(f"replayer Job {mf.REPLAYER} in {sess.ns} already ended ({done[0]}: {done[1]}) "
                             f"and its records were not fetched: run the session again from setup_quota")
    else:
        applied = [sess.kc.apply(o) for o in mf.replayer_objects(sess.cell, sess.s)]
    sel = f"job-name={mf.REPLAYER}"
    autoscalers: dict[str, int] = _autoscaler_pods(sess)
    restarts: list[dict[str, Any]] = []
    heads: dict[str, int] = _pod_restarts(sess, HEAD_SELECTOR)
    head_restarts: list[dict[str, Any]] = []
    seen = {"process_restarts": int((autoscaler_status(sess)[1] or {}).get("restarts") or 0)}

    def replay_over() -> tuple[bool, list[Problem], Any]:
        cond = _job_condition(sess.kc.get("batch/v1", "Job", mf.REPLAYER, sess.ns))
        failed = cond[1] if cond is not None and cond[0] == "Failed" else None
        pods = sess.kc.list("v1", "Pod", sess.ns, label_selector=sel)
        problems = [(f"Pod/{p['metadata']['name']}", *prob) for p in pods
                    if (prob := pod_problem(p)) and prob[0] != "Failed"]
        problems += current_events(sess, lambda o: o.get("kind") in {"Job", "Pod"}
                                   and str(o.get("name", "")).startswith(mf.REPLAYER), w0)
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
        # a replay without its autoscaler is not the experiment; a restarted one resumes from its records
        now_pods = _autoscaler_pods(sess)
        for name, n in now_pods.items():
            if n > autoscalers.get(name, 0) or name not in autoscalers:
                restarts.append({"pod": name, "restarts": n, "new_pod": name not in autoscalers,
                                 "at": _iso(time.time())})
                print(f"faro k8s: the autoscaler restarted (pod {name}, restarts {n}); it resumes from its "
                      f"records", flush=True)
        autoscalers.update(now_pods)
        # a Ray head that restarts (or is replaced) mid-replay: the autoscaler keeps its last replica
        # count meanwhile and re-deploys the job's Serve config when the head answers again
        now_heads = _pod_restarts(sess, HEAD_SELECTOR)
        for name, n in now_heads.items():
            if n > heads.get(name, 0) or name not in heads:
                head_restarts.append({"pod": name, "restarts": n, "new_pod": name not in heads,
                                      "at": _iso(time.time())})
                print(f"faro k8s: Ray head pod {name} restarted or replaced during the replay", flush=True)
        heads.update(now_heads)
        apod, ast = autoscaler_status(sess)
        if ast is not None and int(ast.get("restarts") or 0) > seen["process_restarts"]:
            seen["process_restarts"] = int(ast["restarts"])
            restarts.append({"pod": apod, "process_restarts": seen["process_restarts"],
                             "last_failure": ast.get("last_failure"), "at": _iso(time.time())})
            print(f"faro k8s: the autoscaler process in {apod} failed ({ast.get('last_failure')}) and was "
                  f"started again ({seen['process_restarts']}); it resumes from its records", flush=True)
        if ast is not None and ast.get("state") == "exited" and not _replay_ended(sess, ready):
            raise StageError(f"the autoscaler ({apod}) stopped during the replay "
                             f"(returncode {ast.get('returncode')})")
        if apod is None and not _replay_ended(sess, ready):  # restarting, rescheduled, or gone: grace
            problems.append((f"Deployment/{mf.AUTOSCALER}", "AutoscalerNotRunning",
                             "no Ready autoscaler pod during the replay"))
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
    released = _release(sess, pod)

    def finished() -> tuple[bool, list[Problem], Any]:
        done = _job_condition(sess.kc.get("batch/v1", "Job", mf.REPLAYER, sess.ns))
        return done is not None, [], done[0] if done else None

    outcome, _ = wait_until(sess, f"Job {mf.REPLAYER} to finish", finished, 300.0)
    rec = _stage("replay", sess, t0, w0, lock=lock, objects=[summary(o) for o in applied], pod=pod,
                 returncode=info["returncode"], job_outcome=outcome, files=files, replay_s=round(waited, 3),
                 autoscaler_stop=stopped, released=released, reattached=reattached,
                 autoscaler_restarts=restarts, head_restarts=head_restarts,
                 api_retries=len(sess.kc.retried))
    if info["returncode"] != 0 or outcome != "Complete":
        raise StageError(f"replayer exited with {info['returncode']} (Job {outcome}); its records were saved "
                         f"under {_raw(sess, 'replayer')}: {json.dumps(rec)[:300]}")
    return rec


def fetch_logs(sess: Session) -> Record:
    """Pod logs of every container in the namespace, the autoscaler's record files, and the
    RayClusters and Warning events as JSON, into the run's raw folder."""
    t0, w0 = sess.monotonic(), time.time()
    sess.hold()
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
                    n = sess.kc.pod_log(sess.ns, name, cname,
                                        _raw(sess, "pods", name, f"{cname}.previous.log"), previous=True)
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
    return _stage("fetch_logs", sess, t0, w0, raw_dir=str(sess.raw_dir), logs=logs,
                  autoscaler_files=auto_files, warning_events=len(state["events"]))


def teardown(sess: Session, release_lock: bool = True) -> Record:
    """Delete the namespace (and with it everything), wait until it is gone, release the lease.
    Idempotent: a namespace that does not exist is success."""
    t0, w0 = sess.monotonic(), time.time()
    existed = sess.kc.delete("v1", "Namespace", sess.ns)
    waited = 0.0
    if existed or sess.kc.get("v1", "Namespace", sess.ns) is not None:
        # (a retried DELETE may answer 404 for its own earlier success); no lease renewals here:
        # teardown must work even when the lease is lost
        _, waited = wait_until(sess, f"namespace {sess.ns} to be deleted",
                               lambda: (sess.kc.get("v1", "Namespace", sess.ns) is None, [], "Terminating"),
                               sess.s.teardown_timeout_s, renew=False)
    released = sess.lock.release() if release_lock else False
    return _stage("teardown", sess, t0, w0, deleted=existed, waited_s=round(waited, 3),
                  lease_released=released)


STAGES: dict[str, Callable[..., Record]] = {
    "setup_quota": setup_quota, "deploy_clusters": deploy_clusters, "deploy_jobs": deploy_jobs,
    "launch_autoscaler": launch_autoscaler, "replay": replay, "fetch_logs": fetch_logs, "teardown": teardown,
}


def keeps_session(e: BaseException) -> bool:
    """Errors after which the session must stay (the cell may be fine; the operator lost it)."""
    return bool(getattr(e, "keep_session", False))


def write_record(record: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write a stage record as JSON, atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
    os.replace(tmp, p)


def client_for(s: K8sSettings) -> KubeClient:
    """The API client the settings name: ``server`` (a URL) or the kubeconfig (context, file)."""
    kw = {"timeout_s": s.api_timeout_s, "retry_grace_s": s.api_retry_grace_s,
          "retry_max_backoff_s": s.api_retry_max_backoff_s}
    if s.server:
        return KubeClient.for_host(s.server, s.field_manager, **kw)
    return KubeClient.from_kubeconfig(s.context, s.kubeconfig, s.field_manager, **kw)
