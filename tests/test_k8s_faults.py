"""k8s backend under failures a real cluster produces: API-contract tests, not cluster tests.

The HTTP stand-in of the API server (``test_k8s_api_contract.StandIn``) injects what an
operator's machine meets over hours: 5xx/429/502 answers, timeouts, dropped connections,
stale Warning events, FailedMount, a quota rejection that a retry overcomes, a restarting
autoscaler, and a replay stage run again after the machine running it died.  Each test names
the defect of issue 13 it covers; each failed on the code before the fix.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from test_k8s_api_contract import (
    AUTOSCALER_LABELS,
    NS,
    Fault,
    StandIn,
    _autoscaler_pod,
    _head_labels,
    _heads_become_ready_after,
    api,  # noqa: F401 - fixture
    kc,  # noqa: F401 - fixture
    make_session,
    outage,
)

from faro.backends.k8s import manifests as mf
from faro.backends.k8s import session as st
from faro.backends.k8s.client import ApiUnavailable, KubeClient, object_path
from faro.backends.k8s.config import K8sSettings, mem_bytes
from faro.workflow.stage_runner import teardown_on_failure

NS_PATH = f"/api/v1/namespaces/{NS}"


@pytest.fixture
def kc_retry(httpserver) -> KubeClient:
    """A client with a short retry grace (the default, 600 s, covers 10-minute outages)."""
    return KubeClient.for_host(httpserver.url_for("").rstrip("/"), timeout_s=0.3, retry_grace_s=4.0,
                               retry_max_backoff_s=0.05)


# -- defect 2: one transient error must not destroy a cell ------------------------------------------
@pytest.mark.parametrize("fault", [Fault("status", 503), Fault("status", 502), Fault("status", 500),
                                   Fault("status", 429), Fault("drop"), Fault("timeout", delay_s=0.5)],
                         ids=["503", "502", "500", "429", "dropped", "timeout"])
def test_transient_api_errors_are_retried(api, kc_retry, fault):
    """Defect 2: the client retried connection errors only; 5xx, 429, a proxy's 502/503 and
    timeouts went straight up (and a stage tore its namespace down)."""
    api.put(NS_PATH, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    fault.path, fault.times = f"{NS}$", 3
    api.faults.append(fault)
    got = kc_retry.get("v1", "Namespace", NS)
    assert got["metadata"]["name"] == NS
    assert fault.hits == 3
    # urllib3's own retries (the kubernetes client's pool) may absorb a dropped connection first
    assert len(kc_retry.retried) >= {"drop": 0, "timeout": 1}.get(fault.kind, 3)


def test_non_transient_answers_are_not_retried(api, kc_retry):
    api.faults.append(Fault("status", 403, path="namespaces", times=1))
    with pytest.raises(Exception, match="HTTP 403"):
        kc_retry.get("v1", "Namespace", NS)
    assert len(api.log) == 0 and len(api.injected) == 1 and kc_retry.retried == []


def test_an_outage_during_a_stage_is_ridden_out_and_nothing_is_torn_down(api, kc_retry):
    """Defect 2: an API outage (503/502/429/drops/timeouts) in the middle of a wait."""
    sess = st.Session(kc_retry, make_session(kc_retry).s.with_(ready_timeout_s=30.0),
                      make_session(kc_retry).cell)
    st.setup_quota(sess)
    api.on_request.append(_heads_become_ready_after(polls=8))
    api.faults += outage(time.monotonic() + 0.02, 1.0, delay_s=0.5)
    with teardown_on_failure(lambda: st.teardown(sess), "deploy_clusters"):
        rec = st.deploy_clusters(sess)
    assert set(rec["head_pods"]) == {"serve-cluster0", "serve-cluster1"}
    kinds = {(f["kind"], f["status"]) for f in api.injected}
    assert {("status", 503), ("status", 502), ("drop", 503), ("status", 429)} <= kinds
    assert not api.requests("DELETE")


def test_an_outage_longer_than_the_grace_keeps_the_session_for_a_reattach(api, kc_retry):
    """Defect 2: when even the grace runs out, the stage fails without deleting the namespace,
    and running it again once the API is back carries on."""
    sess = st.Session(kc_retry, make_session(kc_retry).s.with_(ready_timeout_s=30.0),
                      make_session(kc_retry).cell)
    st.setup_quota(sess)
    api.faults.append(Fault("status", 503, start=time.monotonic(), end=time.monotonic() + 5.0))
    with pytest.raises(ApiUnavailable, match="run the same command again to reattach"):
        with teardown_on_failure(lambda: st.teardown(sess), "deploy_clusters"):
            st.deploy_clusters(sess)
    assert not api.requests("DELETE") and f"{NS_PATH}" in api.objs
    time.sleep(max(0.0, api.faults[0].end - time.monotonic()))
    api.on_request.append(_heads_become_ready_after(polls=2))
    with teardown_on_failure(lambda: st.teardown(sess), "deploy_clusters"):
        rec = st.deploy_clusters(sess)
    assert rec["lock"]["action"] == "renewed"


def test_a_stage_after_a_lapsed_lease_takes_it_back(api, kc):
    """Reattach after the operator's machine was down longer than the Lease: the session's own
    expired Lease is taken back (recorded), not a fatal LockLost."""
    sess = make_session(kc)
    st.setup_quota(sess)
    lease = api.objs["/apis/coordination.k8s.io/v1/namespaces/default/leases/faro-session"]
    lease["spec"]["renewTime"] = mf.micro_time(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    api.on_request.append(_heads_become_ready_after(polls=1))
    rec = st.deploy_clusters(sess)
    assert rec["lock"]["action"] == "renewed" and rec["lock"]["holder"] == f"{NS}/seed-7"


# -- defect 6: stale events, a rejection a retry overcame, node autoscaling ------------------------
def test_stale_quota_events_are_ignored(api, kc):
    """Defect 6: an 'exceeded quota' event from an hour ago counted as current forever."""
    sess = make_session(kc, ready_timeout_s=30.0)
    st.setup_quota(sess)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    api.add_event("ev-old", "RayCluster", "serve-cluster1", "FailedToCreateHeadPod",
                  'pods "serve-cluster1-head-q" is forbidden: exceeded quota: faro-quota', last=old)
    api.on_request.append(_heads_become_ready_after(polls=20))
    rec = st.deploy_clusters(sess)
    assert set(rec["head_pods"]) == {"serve-cluster0", "serve-cluster1"}


def test_a_quota_rejection_followed_by_a_successful_retry_is_not_fatal(api, kc):
    """Defect 6: KubeRay's pod creation was rejected once (quota), then the retry succeeded;
    the old check kept the event as a current problem until PodsStuck."""
    sess = make_session(kc, ready_timeout_s=30.0, pending_grace_s=3.0)
    st.setup_quota(sess)
    n = {"polls": 0}

    def hook(s: StandIn) -> None:
        if any(o["kind"] == "RayCluster" for o in s.objs.values()):
            n["polls"] += 1
            if n["polls"] == 1:
                s.add_event("ev-q", "RayCluster", "serve-cluster1", "FailedToCreateHeadPod",
                            'pods "serve-cluster1-head-q" is forbidden: exceeded quota: faro-quota')
            for i in range(2):
                s.add_pod(f"serve-cluster{i}-head-x", _head_labels(i), ready=time.monotonic() - t0 > 4.0)
    t0 = time.monotonic()
    api.on_request.append(hook)
    rec = st.deploy_clusters(sess)
    assert set(rec["head_pods"]) == {"serve-cluster0", "serve-cluster1"}
    assert rec["waited_s"] > sess.s.pending_grace_s  # the event outlived the grace, the pod came


def test_unschedulable_waits_for_a_node_autoscaler(api, kc):
    """Defect 6: a pod Unschedulable for 120 s was fatal on clusters that add nodes on demand;
    the Unschedulable grace is its own setting."""
    sess = make_session(kc, ready_timeout_s=30.0, pending_grace_s=0.05, unschedulable_grace_s=10.0)
    st.setup_quota(sess)
    t0 = time.monotonic()

    def hook(s: StandIn) -> None:
        if any(o["kind"] == "RayCluster" for o in s.objs.values()):
            up = time.monotonic() - t0 > 0.5  # the node autoscaler added a node
            for i in range(2):
                s.add_pod(f"serve-cluster{i}-head-x", _head_labels(i), ready=up,
                          scheduled=(None if up
                                     else ("Unschedulable", "0/3 nodes are available: 3 Insufficient cpu.")))
    api.on_request.append(hook)
    rec = st.deploy_clusters(sess)
    assert rec["waited_s"] > 0.4


def test_failed_mount_of_the_autoscaler_is_reported(api, kc):
    """Defect 1's symptom: the autoscaler pod in ContainerCreating (FailedMount of a ConfigMap)
    waited out the whole ready timeout; now it is reported by name after the grace."""
    sess = make_session(kc, ready_timeout_s=30.0)
    st.setup_quota(sess)
    dpath = f"/apis/apps/v1/namespaces/{NS}/deployments/faro-autoscaler"

    def hook(s: StandIn) -> None:
        if dpath in s.objs:
            s.add_pod("faro-autoscaler-abc", AUTOSCALER_LABELS, phase="Pending", containers=("autoscaler",))
            s.add_event("ev-mount", "Pod", "faro-autoscaler-abc", "FailedMount",
                        'MountVolume.SetUp failed for volume "data" : configmap "faro-data" not found')
    api.on_request.append(hook)
    t0 = time.monotonic()
    with pytest.raises(st.PodsStuck, match="FailedMount.*faro-data") as ei:
        st.launch_autoscaler(sess)
    assert ei.value.problems[0][0] == "Pod/faro-autoscaler-abc" and time.monotonic() - t0 < 10


# -- defect 5: head size ---------------------------------------------------------------------------
def test_heads_are_sized_for_their_load_and_configurable():
    """Defect 5: 2 GiB for GCS, dashboard, Serve controller, the job's HTTP proxy, Ray Client and
    the metrics actor; the artifact gave its heads 4 GiB, KubeRay's autoscaler sample 5 GiB."""
    cell = make_session(KubeClient.for_host("http://127.0.0.1:9")).cell
    s = K8sSettings()
    head = (mf.ray_cluster(cell, s, "serve-cluster0")
            ["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0])
    assert mem_bytes(head["resources"]["limits"]["memory"]) >= 4 * 2**30
    s2 = s.with_(head=type(s.head)("2", "6Gi"))
    head2 = (mf.ray_cluster(cell, s2, "serve-cluster0")
             ["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0])
    assert head2["resources"]["requests"] == {"cpu": "2", "memory": "6Gi"}
    _, mem = mf.quota_totals(cell, s2)
    assert mem - mf.quota_totals(cell, s)[1] == 2 * 2**30  # the quota grows with the heads


# -- reattach and restarts in the replay stage -----------------------------------------------------
def _available_autoscaler(api: StandIn) -> None:
    api.put(f"/apis/apps/v1/namespaces/{NS}/deployments/faro-autoscaler",
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "faro-autoscaler", "generation": 1},
             "status": {"observedGeneration": 1, "conditions": [{"type": "Available", "status": "True"}]}})


def _replayer(api: StandIn, state: dict[str, Any], records: bytes) -> None:
    pod = "faro-replayer-1"
    jpath = f"/apis/batch/v1/namespaces/{NS}/jobs/faro-replayer"
    api.add_pod(pod, {"job-name": "faro-replayer"}, ready=True)
    api.proxy[("GET", f"{pod}:8080/status")] = lambda req: {
        "state": "exited" if state["over"] else "running", "returncode": 0 if state["over"] else None}
    api.proxy[("GET", f"{pod}:8080/files")] = lambda req: {"files": [
        {"name": "requests.csv", "size": len(records)}] + ([{"name": "replay_end.json", "size": 2}]
                                                          if state["over"] else [])}
    api.proxy[("GET", f"{pod}:8080/files/requests.csv")] = lambda req: records
    api.proxy[("GET", f"{pod}:8080/files/replay_end.json")] = lambda req: b"{}"

    def release(req):
        api.objs[jpath]["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
        return {"released": True}
    api.proxy[("POST", f"{pod}:8080/release")] = release


def test_replay_reattaches_to_a_running_replayer_job(api, kc, tmp_path):
    """Reattach: the replay stage run again (its first run's machine died) watches the Job that is
    already running instead of applying it again, and records that it reattached."""
    sess = make_session(kc, tmp_path, replay_timeout_s=30.0)
    st.setup_quota(sess)
    _available_autoscaler(api)
    auto = {"state": "running"}
    _autoscaler_pod(api, "faro-autoscaler-abc", auto)
    for o in mf.replayer_objects(sess.cell, sess.s):  # what the first run applied
        api.put(object_path(o), o)
    job = api.objs[f"/apis/batch/v1/namespaces/{NS}/jobs/faro-replayer"]
    state = {"over": False}
    _replayer(api, state, b"a,b\n1,2\n")

    def ends(s: StandIn) -> None:
        if len(s.requests("GET", "faro-replayer-1:8080/proxy/status")) >= 3:
            state["over"] = True
            auto.update(state="exited", returncode=0)
    api.on_request.append(ends)
    rec = st.replay(sess)
    assert (rec["reattached"]["job_uid"] == job["metadata"]["uid"]
            and rec["reattached"]["job_state"] == "Running")
    assert not api.requests("PATCH", "jobs")  # the running Job was not applied again
    assert (tmp_path / "replayer" / "requests.csv").read_bytes() == b"a,b\n1,2\n"


def test_replay_does_not_reapply_a_finished_job(api, kc, tmp_path):
    """Item 7: re-running the replay in a live namespace re-applied a finished Job. Now a finished
    Job whose records were fetched is accepted as done; without its records it is an error."""
    sess = make_session(kc, tmp_path)
    st.setup_quota(sess)
    _available_autoscaler(api)
    job = mf.replayer_job(sess.cell, sess.s)
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    api.put(f"/apis/batch/v1/namespaces/{NS}/jobs/faro-replayer", job)
    with pytest.raises(st.StageError, match="already ended .*records were not fetched"):
        st.replay(sess)
    (tmp_path / "replayer").mkdir()
    (tmp_path / "replayer" / "requests.csv").write_text("a\n")
    rec = st.replay(sess)
    assert rec["job_outcome"] == "Complete" and rec["reattached"]["job_state"] == "Complete"
    assert not api.requests("PATCH", "jobs")


def test_a_restarting_autoscaler_is_waited_for_and_recorded(api, kc, tmp_path):
    """Item 3: the autoscaler container restarts mid-replay (not Ready for a moment, then Ready with
    restartCount 1): the old stage failed at once ('stopped during the replay'). A replaced Ray head
    is recorded too."""
    sess = make_session(kc, tmp_path, replay_timeout_s=30.0, pending_grace_s=5.0)
    st.setup_quota(sess)
    _available_autoscaler(api)
    auto = {"state": "running"}
    _autoscaler_pod(api, "faro-autoscaler-abc", auto)
    api.add_pod("serve-cluster0-head-x", _head_labels(0), ready=True)
    apath = f"/api/v1/namespaces/{NS}/pods/faro-autoscaler-abc"
    state = {"over": False, "started": False}
    n = {"status": 0}

    def life(s: StandIn) -> None:
        if f"/apis/batch/v1/namespaces/{NS}/jobs/faro-replayer" in s.objs and not state["started"]:
            state["started"] = True
            _replayer(s, state, b"x\n")
        n["status"] = len(s.requests("GET", "faro-replayer-1:8080/proxy/status"))
        pod = s.objs.get(apath)
        if pod is None:
            return
        if n["status"] == 3:  # the container died: not Ready
            pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
        if n["status"] == 6:  # restarted by the kubelet, resumed from its records
            pod["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
            pod["status"]["containerStatuses"] = [{"name": "autoscaler", "restartCount": 1}]
            s.add_pod("serve-cluster1-head-x", _head_labels(1), ready=True)  # and a head was replaced
        if n["status"] >= 9:
            state["over"] = True
            auto.update(state="exited", returncode=0)
    api.on_request.append(life)
    rec = st.replay(sess)
    assert [r["pod"] for r in rec["autoscaler_restarts"]] == ["faro-autoscaler-abc"]
    assert rec["autoscaler_restarts"][0]["restarts"] == 1 and rec["job_outcome"] == "Complete"
    assert [(h["pod"], h["new_pod"]) for h in rec["head_restarts"]] == [("serve-cluster1-head-x", True)]


def test_stage_records_are_json(api, kc, tmp_path):
    rec = st.teardown(make_session(kc, tmp_path))
    json.dumps(rec)
