"""k8s backend: rendered manifests are valid offline (Kubernetes OpenAPI + KubeRay CRD schemas)
and say what the cell needs (names, quota arithmetic, autoscaling, least-privilege RBAC)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import yaml

from faro.backends.k8s import manifests as mf
from faro.backends.k8s import validate as v
from faro.backends.k8s.config import (
    Cell,
    K8sSettings,
    Resources,
    default_jobs,
    dns1123_label,
    is_dns1123_label,
    jobs_from_trace,
    namespace_name,
    settings_from_config,
)

TRACE = Path(os.environ.get("FARO_DATA_MIRROR")
             or Path(__file__).resolve().parents[2] / "shared/data/faro-artifact") / "input.json"
if not TRACE.exists():  # CI clones main next to a copy of shared/
    TRACE = Path(__file__).resolve().parents[2] / "shared" / "data" / "faro-artifact" / "input.json"

POLICIES = ["fairshare", "oneshot", "aiad", "mark", "faro_fair", "faro_sum", "faro_fair_sum",
            "faro_penalty_sum", "faro_penalty_fair_sum"]


@pytest.fixture(scope="module")
def s() -> K8sSettings:
    return K8sSettings(image="registry.example/faro:test")


@pytest.fixture(scope="module")
def cell() -> Cell:
    return Cell(quota=32, policy="faro_sum", seed=42, jobs=default_jobs(10))


def test_namespace_names_are_dns1123_for_every_policy_and_quota():
    names = {namespace_name("faro", q, p) for q in (16, 32, 36, 40) for p in POLICIES}
    assert len(names) == 36
    assert all(is_dns1123_label(n) for n in names)
    assert namespace_name("faro", 32, "faro_sum") == "faro-32cpus-faro-sum"
    assert namespace_name("Lab_A", 16, "faro_penalty_fair_sum") == "lab-a-16cpus-faro-penalty-fair-sum"


def test_dns1123_rejects_what_cannot_be_a_name():
    with pytest.raises(ValueError):
        dns1123_label("___")
    with pytest.raises(ValueError):
        dns1123_label("x" * 64)
    assert not is_dns1123_label("-a")
    assert not is_dns1123_label("A")


def test_quota_is_workers_plus_declared_overhead(cell, s):
    rq = mf.resource_quota(cell, s)
    # 32 workers x 1 CPU + 10 heads x (1 + 0.25 sidecar) + autoscaler 4 + replayer 2 = 50.5 CPUs
    # memory: 32 x 1.5Gi + 10 x (5Gi + 0.5Gi) + 4Gi + 2Gi = 109Gi
    assert rq["spec"]["hard"] == {"requests.cpu": "50500m", "requests.memory": "109Gi",
                                  "limits.cpu": "50500m", "limits.memory": "109Gi"}
    assert rq["metadata"]["annotations"]["faro.io/overhead-cpu"] == "18500m"


def test_ray_cluster_autoscales_one_cpu_workers(cell, s):
    rc = mf.ray_cluster(cell, s, "serve-cluster3")
    spec = rc["spec"]
    assert rc["apiVersion"] == "ray.io/v1" and rc["metadata"]["name"] == "serve-cluster3"
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["idleTimeoutSeconds"] == 30
    (wg,) = spec["workerGroupSpecs"]
    assert (wg["minReplicas"], wg["maxReplicas"]) == (1, 32)
    assert wg["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "1"
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/faro:test"
    sc = mf.serve_config(cell, s, "serve-cluster3")
    dep = sc["applications"][0]["deployments"][0]
    assert dep["ray_actor_options"] == {"num_cpus": 1} and dep["max_ongoing_requests"] == 4
    app = sc["applications"][0]
    assert (app["name"], app["route_prefix"]) == ("serve-cluster3", "/serve-cluster3")
    assert app["import_path"] == "faro.serving.serve_app:build_app"
    assert app["args"]["job"] == "serve-cluster3" and app["args"]["seed"] == 42
    assert app["args"]["service"]["shape"] == 0.42247119243841247


def test_every_rendered_object_validates_offline(cell, s):
    objs = mf.render_cell(cell, s, TRACE.read_text())
    # a cell with an autoscaler run config and policy data files adds autoscaler.json, faro-data
    # and the data volume of the autoscaler pod
    full = Cell(quota=32, policy="faro_sum", seed=42, jobs=default_jobs(10), unit_time=10.0,
                run_spec={"policy": {"name": "faro_sum", "class": "faro", "params": {}}},
                data_files=("models/light.pkl",))
    objs += mf.quota_objects(full, s, TRACE.read_text(), {"models/light.pkl": b"\x00\x01"})[2:]
    objs.append(mf.autoscaler_deployment(full, s))
    objs += [mf.ray_service(cell, s, j) for j in cell.jobs]
    objs.append(mf.lease(s, "holder-1", dt.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=dt.UTC)))
    checked = v.validate_all(objs)
    kinds = {c.split("@")[0] for c in checked}
    assert kinds == {"Namespace", "ResourceQuota", "ConfigMap", "RayCluster", "RayService", "ServiceAccount",
                     "Deployment", "Job", "Lease", "Service"}
    assert all(c.endswith("@v1") for c in checked if c.startswith("Ray"))
    newest = v.k8s_schema_version()
    assert all(c.endswith("@" + ".".join(newest.split(".")[:2])) for c in checked if not c.startswith("Ray"))
    # every container of every pod template declares requests and limits (the quota demands it)
    for o in objs:
        for c in _containers(o):
            assert set(c["resources"]) == {"requests", "limits"}, (o["kind"], c["name"])


def _containers(o):
    spec = o.get("spec") or {}
    if o["kind"] == "RayCluster":
        yield from spec["headGroupSpec"]["template"]["spec"]["containers"]
        for wg in spec["workerGroupSpecs"]:
            yield from wg["template"]["spec"]["containers"]
    elif o["kind"] in {"Deployment", "Job"}:
        yield from spec["template"]["spec"]["containers"]


def test_validation_catches_typos_in_crd_and_core_objects(cell, s):
    rc = mf.ray_cluster(cell, s, "serve-cluster0")
    rc["spec"]["enableInTreeAutoscalin"] = True
    with pytest.raises(v.ManifestError, match="enableInTreeAutoscalin"):
        v.validate_object(rc)
    rc = mf.ray_cluster(cell, s, "serve-cluster0")
    del rc["spec"]["workerGroupSpecs"][0]["groupName"]
    with pytest.raises(v.ManifestError, match="groupName"):
        v.validate_object(rc)
    rc = mf.ray_cluster(cell, s, "serve-cluster0")
    rc["spec"]["autoscalerOptions"]["upscalingMode"] = "Fast"
    with pytest.raises(v.ManifestError, match="Fast"):
        v.validate_object(rc)
    dep = mf.autoscaler_deployment(cell, s)
    dep["spec"]["template"]["spec"]["containers"][0]["resourcez"] = {}
    with pytest.raises(v.ManifestError, match="resourcez"):
        v.validate_object(dep)
    job = mf.replayer_job(cell, s)
    job["spec"]["backoffLimit"] = "zero"
    with pytest.raises(v.ManifestError):
        v.validate_object(job)


def test_crd_schema_is_loaded_once(cell, s):
    v.crd_schema.cache_clear()
    v._crd_validator.cache_clear()
    for j in cell.jobs:
        v.validate_object(mf.ray_cluster(cell, s, j))
    assert v.crd_schema.cache_info().misses == 1
    assert v.crd_schema.cache_info().hits == 0 and v._crd_validator.cache_info().hits == 9


def test_faro_pods_get_no_api_access(cell, s):
    """Least privilege: neither faro pod calls the Kubernetes API (the autoscaler reaches the heads
    by in-cluster DNS), so no Role, no RoleBinding and no mounted token (issue 13, item 7)."""
    objs = mf.render_cell(cell, s)
    assert not [o for o in objs if o["kind"] in {"Role", "RoleBinding"} or o["kind"].startswith("Cluster")]
    for o in objs:
        if o["kind"] == "ServiceAccount":
            assert o["automountServiceAccountToken"] is False
        if o["kind"] in {"Deployment", "Job"}:
            assert o["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_pod_commands_wrap_the_ray_backend_processes(cell, s):
    job = mf.replayer_job(cell, s)
    cmd = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert cmd[:3] == ["python", "-m", "faro.backends.k8s.podrun"]
    inner = cmd[cmd.index("--", 3) + 1:]
    assert inner[:3] == ["python", "-m", "faro.serving.replayer"]
    assert "42" in inner and "/etc/faro/input.json" in inner
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_cluster_config_uses_in_cluster_dns(cell, s):
    cc = mf.cluster_config(cell, s)
    j = cc["jobs"][2]
    assert j["dashboard_url"] == "http://serve-cluster2-head-svc.faro-32cpus-faro-sum.svc:8265"
    assert j["serve_url"] == "http://serve-cluster2-head-svc.faro-32cpus-faro-sum.svc:8000/serve-cluster2"


def test_jobs_come_from_the_trace():
    assert jobs_from_trace(TRACE) == default_jobs(10)


def test_quota_below_one_worker_per_job_is_refused():
    with pytest.raises(ValueError, match="below one worker per job"):
        Cell(quota=5, policy="aiad", seed=1, jobs=default_jobs(10))


def test_settings_from_config_parses_and_rejects_unknown_keys():
    s = settings_from_config({"image": "r/faro:1", "worker": {"cpu": "1", "memory": "1Gi"},
                              "autoscaler_command": ["python", "-m", "x"]})
    assert s.worker == Resources("1", "1Gi") and s.autoscaler_command == ("python", "-m", "x")
    with pytest.raises(ValueError, match="imagee"):
        settings_from_config({"imagee": "x"})


def test_rendered_yaml_loads_back(tmp_path):
    """The YAML writer of the manifests CLI / k8s_manifests rule (their run-spec path:
    tests/test_k8s_workflow.py, test_manifests_and_stage_clis_are_what_the_workflow_applies)."""
    s = K8sSettings()
    cell = Cell(quota=32, policy="faro_sum", seed=42, jobs=jobs_from_trace(TRACE))
    objs = mf.render_cell(cell, s, TRACE.read_text()) + [mf.lease(s, "h", dt.datetime.now(dt.UTC))]
    mf.write_yaml(objs, tmp_path)
    docs = list(yaml.safe_load_all((tmp_path / "all.yaml").read_text()))
    # quota objs, clusters, autoscaler (SA, Deployment), replayer, lease
    assert len(docs) == 3 + 10 + 2 + 3 + 1
    assert docs[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": docs[0]["metadata"]}
    assert docs[0]["metadata"]["name"] == "faro-32cpus-faro-sum"
    assert len(list(tmp_path.glob("*-raycluster-*.yaml"))) == 10
    assert "&id" not in (tmp_path / "all.yaml").read_text()  # no YAML anchors/aliases
    v.validate_all(docs)
