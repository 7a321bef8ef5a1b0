"""The runbook's "First run", up to the cluster boundary: an API-contract test, not a cluster test.

The runbook's own commands: Snakemake renders the first run's manifests (real artifact data,
the 10-minute trace window, the trained forecaster in ``faro-data``), then the by-hand stage
loop runs the session against the HTTP stand-in of the API server (``test_k8s_workflow.Cluster``:
heads turn Ready, dashboards answer, a simulated autoscaler pod; the replayer Job's real
container command runs here against stand-ins of the jobs' Serve proxies).  Changed for the
test, and only these: the results and data folders and the data mirror (config overrides),
``unit_time=1`` (a 10 s replay), the API server (``--server``), the stand-in's poll interval,
and the replayer's load scaled to 1 % (this 2-core machine).  Nothing here shows that a real
cluster, KubeRay, Ray or the kubelet behave the same way.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_k8s_dag import runbook_command
from test_k8s_workflow import Cluster, FakeServe

from faro.backends.k8s.validate import validate_all
from faro.workflow import k8s_cli

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[1]
NS = "faro-32cpus-faro-sum"
JOBS = tuple(f"serve-cluster{i}" for i in range(10))


@pytest.fixture
def cluster(httpserver, tmp_path):
    c = Cluster(tmp_path, FakeServe(), ns=NS, jobs=JOBS, trace_scale=0.01)
    httpserver.expect_request(__import__("re").compile(".*")).respond_with_handler(c)
    yield c
    if c.replayer is not None and c.replayer.poll() is None:
        c.replayer.kill()
    c.serve.server.shutdown()


def test_the_first_run_by_the_runbooks_commands(cluster, httpserver, tmp_path, mirror):
    # 1. the manifests target, as the runbook writes it (our folders, mirror and unit_time added)
    cmd = runbook_command("seed_42/manifests")
    target = cmd[-1]
    root = yaml.safe_load((PROJECT / cmd[cmd.index("--configfile") + 1]).read_text())["results"]
    out_root = tmp_path / "results"
    args = [*cmd[1:-1], "--nolock", "--config", f"results={out_root}", f"data_dir={tmp_path / 'data'}",
            f"data_mirror={mirror}", "unit_time=1", "--", str(out_root / target[len(root) + 1:])]
    env = {**os.environ, "PYTHONPATH": str(PROJECT / "workflow")}
    got = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=PROJECT, capture_output=True,
                         text=True, timeout=600, env=env)
    assert got.returncode == 0, got.stderr[-3000:]
    run_dir = out_root / "32_cpus" / "faro_sum" / "seed_42"
    man = run_dir / "manifests"
    docs = list(yaml.safe_load_all((man / "all.yaml").read_text()))
    validate_all(docs)
    kinds = [d["kind"] for d in docs]
    assert kinds.count("RayCluster") == 10 and "Lease" in kinds
    data = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "faro-data")
    assert any(k.startswith("models--") for k in data["binaryData"])  # the trained forecaster ships
    cfg = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "faro-config")
    assert len(cfg["data"]["input.json"].splitlines()) == 10  # the 10-minute window
    assert yaml.safe_load(cfg["data"]["policy.yaml"])["name"] == "faro_sum"
    pod_run = json.loads(cfg["data"]["autoscaler.json"])["run"]  # the run spec, with the pod's paths
    assert pod_run["data_dir"] == "/data" and pod_run["policy"]["name"] == "faro_sum"

    # 2. the by-hand stage loop of the runbook, against the stand-in
    spec = json.loads((man / "run_spec.json").read_text())
    spec["backend_options"] = {**spec["backend_options"], "poll_s": 0.02, "ready_timeout_s": 60.0,
                               "autoscaler_stop_timeout_s": 20.0, "teardown_timeout_s": 10.0}
    fast = tmp_path / "run_spec.json"
    fast.write_text(json.dumps(spec))
    loop = next(ln for ln in (PROJECT / "docs/k8s-runbook.md").read_text().splitlines()
                if "python -m faro.workflow.k8s_cli stage $stage" in ln)
    stages_line = next(ln for ln in (PROJECT / "docs/k8s-runbook.md").read_text().splitlines()
                       if ln.strip().startswith("for stage in setup_quota"))
    stages = shlex.split(stages_line.strip().split(" in ", 1)[1].split(";")[0])
    assert stages == list(k8s_cli.CLI_STAGES) and "--run-spec $R/manifests/run_spec.json --run-dir $R" in loop
    server = httpserver.url_for("").rstrip("/")
    for stage in stages:
        assert k8s_cli.stage([stage, "--run-spec", str(fast), "--run-dir", str(run_dir), "--server",
                              server]) == 0
    rec = {s: json.loads((run_dir / "stages" / f"{k8s_cli.CLI_STAGES[s]}.json").read_text()) for s in stages}
    assert rec["setup_quota"]["state"]["namespace"] == NS
    assert rec["replay"]["state"]["returncode"] == 0 and rec["replay"]["state"]["job_outcome"] == "Complete"
    assert (run_dir / "raw" / "replayer" / "requests.csv").is_file()
    assert rec["teardown"]["state"]["deleted"] is True
    assert not [p for p in cluster.objs if f"namespaces/{NS}" in p]
    assert sum(cluster.serve.hits.values()) > 0
