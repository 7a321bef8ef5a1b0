"""k8s backend through the workflow's stage runner: an API-contract test, not a cluster test.

``faro.workflow.stage_runner.run_stage`` runs every stage of one small run (2 jobs, a synthetic
3-minute trace, ``backend: k8s``, ``k8s.server`` pointing at the HTTP stand-in of the API server
from ``test_k8s_api_contract.py``), then ``K8sBackend.parse`` -> ``requests.parquet`` ->
``faro.model.stats.latency_stats``.  What is simulated: the API server and its proxies, KubeRay
(head pods turn Ready), the Ray dashboards (Serve applications RUNNING), the autoscaler pod (a record
server with a made-up decision log; no Ray, no policy loop).  What is real: every stage function,
the rendered objects, and the replayer pod's process: the Job's own container command (podrun
around ``python -m faro.serving.replayer``) runs here, with the ConfigMap's files, against a
local HTTP server standing in for the jobs' Serve proxies.  Nothing here shows that a real cluster
behaves the same way.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_k8s_api_contract import NS, StandIn, _heads_become_ready_after
from werkzeug import Request, Response

from faro.backends.base import STAGES, get_backend
from faro.backends.k8s.config import K8sSettings, settings_from_config
from faro.model.schema import read_requests, write_requests
from faro.model.stats import latency_stats
from faro.runspec import RunSpec
from faro.workflow.config import ConfigError, check_k8s_section, make_run_spec, project_root
from faro.workflow.stage_runner import run_stage

ROOT = project_root()
JOBS = ("serve-cluster0", "serve-cluster1")
#: counts[minute][job]: 7 requests for serve-cluster0, 5 for serve-cluster1
COUNTS = [{"serve-cluster0": 4, "serve-cluster1": 2}, {"serve-cluster0": 3, "serve-cluster1": 1},
          {"serve-cluster0": 0, "serve-cluster1": 2}]
UNIT_TIME = 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeServe:
    """The jobs' Serve proxies: answers 200 after 5 ms, counts requests per route."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802
                time.sleep(0.005)
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Cluster(StandIn):
    """The stand-in plus what a cluster would do for one run: heads become Ready, dashboards answer,
    the autoscaler pod serves a decision log, and the replayer Job's container really runs (here)."""

    def __init__(self, tmp: Path, serve: FakeServe, ns: str = NS, jobs: tuple[str, ...] = JOBS,
                 trace_scale: float = 1.0) -> None:
        super().__init__()
        self.tmp, self.serve, self.ns, self.jobs = tmp, serve, ns, jobs
        self.trace_scale = trace_scale  # the replayer's load (< 1: fewer requests per minute)
        self.forward: dict[str, int] = {}  # "pod:8080" -> local port of its podrun
        self.replayer: subprocess.Popen | None = None
        self.records = tmp / "replayer-records"
        self.serve_puts: dict[str, list[dict]] = {}
        self.autoscaler_cfg: dict[str, Any] | None = None
        self.on_request.append(_heads_become_ready_after(polls=3))
        self.on_request.append(Cluster._life)
        for job in jobs:
            svc = f"{job}-head-svc:8265/api/serve/applications/"
            self.proxy[("PUT", svc)] = lambda req, job=job: self.serve_puts.setdefault(job, []).append(
                json.loads(req.get_data())) or {}
            self.proxy[("GET", svc)] = lambda req, job=job: {
                "applications": {job: {"status": "RUNNING" if job in self.serve_puts else "NOT_STARTED"}}}

    def _proxy(self, req: Request, path: str) -> Response:
        prefix, _, rest = path.partition("/proxy/")
        target = prefix.rsplit("/", 1)[1]
        if target not in self.forward:
            return super()._proxy(req, path)
        url = f"http://127.0.0.1:{self.forward[target]}/{rest}"
        r = urllib.request.Request(url, data=req.get_data() or None, method=req.method)
        try:
            with urllib.request.urlopen(r, timeout=10) as resp:
                return Response(resp.read(), resp.status, content_type=resp.headers.get("Content-Type"))
        except urllib.error.HTTPError as e:
            return Response(e.read(), e.code, content_type="application/json")
        except (urllib.error.URLError, ConnectionError, OSError) as e:  # the pod went away mid-answer
            return Response(str(e), 502)

    def _obj(self, suffix: str) -> dict[str, Any] | None:
        return next((o for p, o in self.objs.items() if p.endswith(suffix)), None)

    # -- what the cluster does ----------------------------------------------------------
    def _life(self) -> None:
        dep = self._obj(f"/namespaces/{self.ns}/deployments/faro-autoscaler")
        if dep is not None and not dep.get("status"):
            self._start_autoscaler(dep)
        job = self._obj(f"/namespaces/{self.ns}/jobs/faro-replayer")
        if job is not None and self.replayer is None:
            self._start_replayer(job)
        if job is not None and self.replayer is not None and self.replayer.poll() is not None:
            ok = self.replayer.returncode == 0
            job["status"] = {"conditions": [{"type": "Complete" if ok else "Failed", "status": "True"}]}
            pod = self._obj(f"/namespaces/{self.ns}/pods/faro-replayer-x1")
            if pod is not None:
                pod["status"]["phase"] = "Succeeded" if ok else "Failed"

    def _config_map(self) -> dict[str, str]:
        return self._obj(f"/namespaces/{self.ns}/configmaps/faro-config")["data"]

    def _start_autoscaler(self, dep: dict[str, Any]) -> None:
        """A simulated autoscaler: it reads its rendered config and logs what the real one would."""
        self.autoscaler_cfg = json.loads(self._config_map()["autoscaler.json"])
        dep["status"] = {"observedGeneration": 1, "conditions": [{"type": "Available", "status": "True"}]}
        pod = "faro-autoscaler-a1"
        self.add_pod(pod, dict(dep["spec"]["template"]["metadata"]["labels"]), ready=True,
                     containers=("autoscaler",))
        self.proxy[("GET", f"{pod}:8080/status")] = lambda req: {
            "state": "exited" if (self.records / "replay_end.json").exists() else "running",
            "returncode": 0 if (self.records / "replay_end.json").exists() else None}
        self.proxy[("GET", f"{pod}:8080/files")] = lambda req: {
            "files": [{"name": "autoscaler.jsonl", "size": len(self._decision_log())}]}
        self.proxy[("GET", f"{pod}:8080/files/autoscaler.jsonl")] = lambda req: self._decision_log()

    def _decision_log(self) -> bytes:
        cfg = self.autoscaler_cfg or {}
        lines = [{"kind": "start", "wall_s": None, "initial": cfg.get("initial")}]
        lines += [{"kind": "replicas", "job": j, "replicas": n, "wall_s": None}
                  for j, n in cfg["initial"].items()]
        start = self.records / "replay_start.json"
        if start.exists():
            lines.append({"kind": "replay_start", "t0": json.loads(start.read_text())["t0"], "wall_s": 0.0})
            lines += [{"kind": "replicas", "job": j, "replicas": n, "wall_s": 0.01, "at_start": True}
                      for j, n in cfg["initial"].items()]
            lines.append({"kind": "replicas", "job": "serve-cluster0",
                          "replicas": cfg["initial"]["serve-cluster0"] + 1, "wall_s": 0.5})
        if (self.records / "replay_end.json").exists():
            lines += [{"kind": "replay_end", "wall_s": 1.5}, {"kind": "stop", "wall_s": 1.5}]
        return "".join(json.dumps(x) + "\n" for x in lines).encode()

    def _start_replayer(self, job: dict[str, Any]) -> None:
        """Run the Job's container command here: ConfigMap files in a folder, in-cluster URLs -> FakeServe."""
        conf = self.tmp / "etc-faro"
        conf.mkdir()
        for name, text in self._config_map().items():
            (conf / name).write_text(text)
        urls = json.loads((conf / "job_urls.json").read_text())
        assert urls == {j: f"http://{j}-head-svc.{self.ns}.svc:8000/{j}" for j in self.jobs}
        if self.trace_scale != 1.0:  # a lighter load than the trace's (this machine is small)
            lines = [json.loads(x) for x in (conf / "input.json").read_text().splitlines() if x.strip()]
            for x in lines:
                x["counts"] = {j: {k: int(v * self.trace_scale) for k, v in c.items()} if isinstance(c, dict)
                               else int(c * self.trace_scale) for j, c in x["counts"].items()}
            (conf / "input.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
        (conf / "job_urls.json").write_text(json.dumps({j: f"{self.serve.url}/{j}" for j in urls}))
        port = _free_port()
        cmd = job["spec"]["template"]["spec"]["containers"][0]["command"]
        cmd = [sys.executable if c == "python" else c.replace("/etc/faro", str(conf)).replace("/records",
               str(self.records)) for c in cmd]
        cmd[cmd.index("--port") + 1] = str(port)
        self.replayer = subprocess.Popen(cmd, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "workflow"),
                                                            "PATH": "/usr/bin:/bin"})
        self.forward["faro-replayer-x1:8080"] = port
        self.add_pod("faro-replayer-x1", {"job-name": "faro-replayer"}, ready=False, phase="Pending")
        for _ in range(100):  # Ready once its record server answers (the readiness probe)
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        self.add_pod("faro-replayer-x1", {"job-name": "faro-replayer"}, ready=True, containers=("replayer",))


@pytest.fixture
def cluster(httpserver, tmp_path):
    c = Cluster(tmp_path, FakeServe())
    httpserver.expect_request(__import__("re").compile(".*")).respond_with_handler(c)
    yield c
    if c.replayer is not None and c.replayer.poll() is None:
        c.replayer.kill()
    c.serve.server.shutdown()


def _experiment(tmp: Path, unit_time: float = UNIT_TIME) -> Path:
    exp = yaml.safe_load((ROOT / "experiments/local_small/experiment.yaml").read_text())
    exp.update(name="k8s_contract", trace={"file": "trace.json"}, unit_time=unit_time, quotas=[16])
    exp["jobs"] = {"names": list(JOBS), "model": "resnet34"}
    d = tmp / "exp"
    d.mkdir()
    (d / "trace.json").write_text("".join(
        json.dumps({"ts": k, "counts": {j: {"classifier": n} for j, n in m.items()}}) + "\n"
        for k, m in enumerate(COUNTS)))
    (d / "experiment.yaml").write_text(yaml.safe_dump(exp))
    return d


def _run_spec(httpserver, tmp: Path, unit_time: float = UNIT_TIME, **opts: Any) -> RunSpec:
    exp = _experiment(tmp, unit_time)
    fast = {"poll_s": 0.01, "ready_timeout_s": 20.0, "pending_grace_s": 5.0, "teardown_timeout_s": 5.0,
            "replay_timeout_s": 60.0, "lock_timeout_s": 1.0, "autoscaler_stop_timeout_s": 10.0,
            "image": "registry.example/faro:test"}
    fast.update(opts)
    return make_run_spec(experiment=exp / "experiment.yaml", backend="k8s", quota=16, policy="aiad", seed=7,
                         unit_time=unit_time, trace_file=str(exp / "trace.json"),
                         policy_dir=ROOT / "config/policies",
                         results=str(tmp / "results"), data_dir=str(tmp / "data"), config_hash="test",
                         backend_options={**fast, "server": httpserver.url_for("").rstrip("/")})


def test_every_stage_through_the_workflow_runner_to_latency_stats(cluster, httpserver, tmp_path):
    """API-contract test, not a cluster test: quota .. teardown via
    faro.workflow.stage_runner.run_stage, then parse and stats."""
    run = _run_spec(httpserver, tmp_path)
    run_dir = tmp_path / "results" / "16_cpus" / "aiad" / "seed_7"
    recs = {stage: run_stage(stage, run, run_dir) for stage in STAGES}

    # stage records: every stage recorded, none rebuilt, the namespace named after the cell
    for stage in STAGES:
        assert json.loads((run_dir / "stages" / f"{stage}.json").read_text())["stage"] == stage
        assert recs[stage]["rebuilt"] is False and recs[stage]["redone_before"] == []
    assert recs["quota"]["state"]["namespace"] == NS
    assert recs["clusters"]["state"]["head_pods"] == {j: f"{j}-head-abcde" for j in JOBS}

    # the Serve apps went to each job's own dashboard, with the policy's initial replicas
    init = cluster.autoscaler_cfg["initial"]
    for job in JOBS:
        (body,) = cluster.serve_puts[job]
        assert [a["name"] for a in body["applications"]] == [job]
        assert body["applications"][0]["deployments"][0]["num_replicas"] == init[job]
        assert body["http_options"] == {"host": "0.0.0.0", "port": 8000}
    # the in-pod autoscaler config: one cluster per job with the Serve config deploy_jobs PUT
    acfg = cluster.autoscaler_cfg
    assert [c["jobs"] for c in acfg["clusters"]] == [[j] for j in JOBS]
    assert acfg["clusters"][1]["dashboard_url"] == f"http://serve-cluster1-head-svc.{NS}.svc:8265"
    assert acfg["clusters"][1]["ray_address"] == f"ray://serve-cluster1-head-svc.{NS}.svc:10001"
    assert acfg["clusters"][0]["serve_config"] == cluster.serve_puts["serve-cluster0"][0]
    assert acfg["replay_signals_url"] == f"http://faro-replayer.{NS}.svc:8080/files"
    # the run spec itself, with the pod's paths of the trace and the data folder
    spec = RunSpec.from_dict(acfg["run"])
    assert spec.policy.name == "aiad" and spec.quota == 16 and spec.unit_time == UNIT_TIME
    assert spec.trace_file == "/etc/faro/input.json" and spec.data_dir == "/data"

    # the replay really ran: 7 + 5 requests reached the two routes; records fetched, pod released
    assert cluster.serve.hits == {"/serve-cluster0": 7, "/serve-cluster1": 5}
    assert recs["replay"]["state"]["returncode"] == 0 and recs["replay"]["state"]["job_outcome"] == "Complete"
    assert recs["replay"]["state"]["autoscaler_stop"]["status"]["state"] == "exited"
    assert cluster.replayer.returncode == 0  # released -> podrun ended with the replayer's code
    fetched = {f["name"] for f in recs["replay"]["state"]["files"]}
    assert {"requests.csv", "replay_start.json", "replay_end.json", "replay.json", "stdout.log"} <= fetched
    assert (run_dir / "raw" / "autoscaler" / "autoscaler.jsonl").is_file()
    assert (run_dir / "raw" / "pods" / "faro-replayer-x1" / "replayer.log").is_file()

    # teardown: namespace gone, lease released; the session is no longer alive
    assert (recs["teardown"]["state"]["deleted"] is True
            and recs["teardown"]["state"]["lease_released"] is True)
    assert not [p for p in cluster.objs if f"namespaces/{NS}" in p]
    backend = get_backend("k8s")
    assert backend.alive("quota", run_dir, recs["quota"]) is False
    assert backend.teardown(run_dir, {})["deleted"] is False  # idempotent

    # parse (the ray backend's parser) -> requests.parquet -> latency_stats
    requests, replicas = backend.parse(run, run_dir)
    write_requests(requests, run_dir / "requests.parquet", {"backend": "k8s"})
    requests = read_requests(run_dir / "requests.parquet")
    assert len(requests) == 12 and bool(requests["succeeded"].all())
    assert requests.groupby("job").size().to_dict() == {"serve-cluster0": 7, "serve-cluster1": 5}
    assert list(replicas.itertuples(index=False, name=None)) == [
        (0.0, "serve-cluster0", init["serve-cluster0"]), (0.0, "serve-cluster1", init["serve-cluster1"]),
        (0.5, "serve-cluster0", init["serve-cluster0"] + 1)]
    stats = latency_stats(requests, jobs=list(JOBS), slo_ms=720.0, unit_time=UNIT_TIME, n_minutes=len(COUNTS))
    # every request succeeded within ~5 ms + local overhead, far under the 720 ms SLO: 100 % met
    assert stats["slo_rate"] == pytest.approx(100.0)


def test_a_gone_session_is_rebuilt_before_a_later_stage(cluster, httpserver, tmp_path):
    """API-contract test, not a cluster test: after a teardown, the runner redoes quota and clusters."""
    run = _run_spec(httpserver, tmp_path)
    run_dir = tmp_path / "run"
    run_stage("quota", run, run_dir)
    run_stage("clusters", run, run_dir)
    run_stage("teardown", run, run_dir)
    rec = run_stage("jobs", run, run_dir)
    assert rec["redone_before"] == ["quota", "clusters"]
    assert json.loads((run_dir / "stages" / "quota.json").read_text())["rebuilt"] is True
    assert rec["state"]["status"] == {j: "RUNNING" for j in JOBS}
    run_stage("teardown", run, run_dir)


def test_schema_defaults_are_the_settings_defaults():
    """The config schema's k8s section lists exactly K8sSettings' fields, with the same defaults."""
    from snakemake.utils import validate

    cfg = {"experiment": "local_small", "backend": "k8s", "quotas": [6], "policies": ["aiad"], "seeds": [1]}
    validate(cfg, str(ROOT / "config/schema/config.schema.yaml"))
    assert settings_from_config(cfg["k8s"]) == K8sSettings()
    cfg2 = {**cfg, "k8s": {"image": "r/faro:1", "worker": {"cpu": "2", "memory": "3Gi"}}}
    validate(cfg2, str(ROOT / "config/schema/config.schema.yaml"))
    s = settings_from_config(cfg2["k8s"])
    assert s.image == "r/faro:1" and s.worker.cpu == "2" and s.head == K8sSettings().head


def test_check_config_validates_the_k8s_section_early():
    base = {"quotas": [16], "policies": ["aiad"]}
    check_k8s_section({**base, "k8s": {"image": "x"}})
    with pytest.raises(ConfigError, match="config key k8s: unknown k8s settings: \\['imagee'\\]"):
        check_k8s_section({**base, "k8s": {"imagee": "x"}})
    with pytest.raises(ConfigError, match="config key k8s: .*longer than 63"):
        check_k8s_section({"quotas": [16], "policies": ["p" * 60], "k8s": {}})


#: the outages of the test below, seconds (a real cluster's would be 60 s: the default
#: api_retry_grace_s of 600 s covers outages up to 10 minutes, each retried with backoff <= 30 s)
OUTAGE_S = 1.0


def test_a_replay_survives_api_outages_and_a_crashed_host_then_reattaches(cluster, httpserver, tmp_path):
    """API-contract test, not a cluster test (issue 13, must show): the replay stage's process is
    killed (SIGKILL: the operator's machine died) mid-replay; the same stage run again reattaches to
    the running replayer Job through the recorded session and the Lease, rides out 3 API outages
    (503/502/429/timeouts/dropped connections), and the run ends with the usual requests.parquet;
    the namespace is deleted only by the final teardown."""
    from test_k8s_api_contract import outage

    from faro.model.schema import REQUESTS_SCHEMA

    unit_time = 3.0  # 3 trace minutes -> a 9 s replay
    run = _run_spec(httpserver, tmp_path, unit_time, api_timeout_s=0.4, api_retry_grace_s=4 * OUTAGE_S,
                    api_retry_max_backoff_s=0.1, poll_s=0.05)
    run_dir = tmp_path / "results" / "16_cpus" / "aiad" / "seed_7"
    for stage in ("quota", "clusters", "jobs", "autoscaler"):
        run_stage(stage, run, run_dir)

    # the replay stage in its own process, killed while the replay runs
    spec = run.write_json(tmp_path / "run.json")
    code = ("import sys; from faro.runspec import RunSpec; "
            "from faro.workflow.stage_runner import run_stage; "
            "run_stage('replay', RunSpec.read_json(sys.argv[1]), sys.argv[2])")
    host = subprocess.Popen([sys.executable, "-c", code, str(spec), str(run_dir)], cwd=ROOT,
                            env={"PYTHONPATH": str(ROOT / "workflow"), "PATH": "/usr/bin:/bin"})
    try:
        deadline = time.monotonic() + 60
        while not (cluster.records / "replay_start.json").exists():
            assert host.poll() is None and time.monotonic() < deadline, "the replay did not start"
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        host.kill()  # SIGKILL: no teardown, no record
        host.wait()
    assert not (run_dir / "stages" / "replay.json").exists()
    assert not cluster.requests("DELETE")
    live = json.loads((run_dir / "live" / "k8s_session.json").read_text())
    assert live["namespace"] == NS

    # three outages while the reattached stage watches the rest of the replay
    t = time.monotonic() + 0.1
    cluster.faults += [f for k in range(3) for f in outage(t + k * 2.0 * OUTAGE_S, OUTAGE_S, delay_s=0.6)]
    rec = run_stage("replay", run, run_dir)
    state = rec["state"]
    assert state["reattached"]["job_state"] == "Running" and state["reattached"]["lease"] == "renewed"
    assert rec["redone_before"] == []  # reattached, not rebuilt
    assert len(cluster.requests("PATCH", "jobs")) == 1  # the Job was applied once, by the killed process
    assert state["returncode"] == 0 and state["job_outcome"] == "Complete"
    windows = [[f for f in cluster.injected
                if t + k * 2.0 * OUTAGE_S <= f["at"] < t + (k * 2.0 + 1) * OUTAGE_S]
               for k in range(3)]
    assert all(windows), "each outage hit the stage's requests"
    assert {f["status"] for f in cluster.injected} >= {503, 502, 429}
    assert {f["kind"] for f in cluster.injected} >= {"status", "drop", "timeout"}
    assert state["api_retries"] >= 3
    assert not cluster.requests("DELETE"), "nothing was torn down before the run's teardown"

    run_stage("fetch", run, run_dir)
    n_before_teardown = len(cluster.log)
    run_stage("teardown", run, run_dir)
    deletes = [i for i, r in enumerate(cluster.log)
               if r["method"] == "DELETE" and r["path"].endswith(f"/{NS}")]
    assert len(deletes) == 1 and deletes[0] >= n_before_teardown

    backend = get_backend("k8s")
    requests, _ = backend.parse(run, run_dir)
    write_requests(requests, run_dir / "requests.parquet", {"backend": "k8s"})
    import pyarrow.parquet as pq

    assert pq.read_schema(run_dir / "requests.parquet").remove_metadata().equals(
        REQUESTS_SCHEMA.remove_metadata())
    requests = read_requests(run_dir / "requests.parquet")
    assert len(requests) == 12 and bool(requests["succeeded"].all())
    assert cluster.serve.hits == {"/serve-cluster0": 7, "/serve-cluster1": 5}  # every request sent once


def test_manifests_and_stage_clis_are_what_the_workflow_applies(cluster, httpserver, tmp_path):
    """API-contract test, not a cluster test (issue 13, defect 4): the by-hand path. The manifests
    CLI renders, from the workflow's run spec, exactly the objects the stages then apply (compared
    with the bodies the stand-in received), and the stage CLI runs the whole session by hand,
    autoscaler config, initial replicas and all."""
    from faro.workflow import k8s_cli

    run = _run_spec(httpserver, tmp_path)
    spec = run.write_json(tmp_path / "run_spec.json")
    out = tmp_path / "manifests"
    assert k8s_cli.manifests(["--run-spec", str(spec), "--out", str(out)]) == 0
    rendered = [d for d in yaml.safe_load_all((out / "all.yaml").read_text()) if d["kind"] != "Lease"]
    assert RunSpec.read_json(out / "run_spec.json") == run

    run_dir = tmp_path / "byhand"
    for stage in k8s_cli.CLI_STAGES:
        assert k8s_cli.stage([stage, "--run-spec", str(spec), "--run-dir", str(run_dir)]) == 0
        assert (run_dir / "stages" / f"{k8s_cli.CLI_STAGES[stage]}.json").is_file()
    applied = [r["body"] for r in cluster.requests("PATCH") if r["body"]["kind"] != "Lease"]
    assert applied == rendered  # same objects, same order, byte for byte as JSON
    cm = next(o for o in applied if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "faro-config")
    acfg = json.loads(cm["data"]["autoscaler.json"])
    assert acfg["run"]["policy"]["name"] == "aiad" and acfg["initial"] == cluster.autoscaler_cfg["initial"]
    assert cm["data"]["input.json"] == Path(run.trace_file).read_text()
    assert cluster.serve.hits == {"/serve-cluster0": 7, "/serve-cluster1": 5}  # the replay ran, by hand
    assert not [p for p in cluster.objs if f"namespaces/{NS}" in p]  # and was torn down


def test_the_stage_runner_keeps_a_session_whose_api_server_is_gone(cluster, httpserver, tmp_path):
    """API-contract test, not a cluster test: faro.workflow.stage_runner.run_stage tears a session down on a
    failure, but not when the API server stayed unreachable for the whole retry grace; neither does
    Snakemake's onerror cleanup (teardown_sessions), only an explicit `snakemake teardown`."""
    from test_k8s_api_contract import Fault

    from faro.backends.k8s.backend import DETACHED, K8sBackend
    from faro.backends.k8s.client import ApiUnavailable
    from faro.workflow.support import teardown_sessions

    run = _run_spec(httpserver, tmp_path, api_timeout_s=0.3, api_retry_grace_s=0.5,
                    api_retry_max_backoff_s=0.05)
    root = tmp_path / "results"
    run_dir = root / "16_cpus" / "aiad" / "seed_7"

    def outage() -> None:
        cluster.faults.append(Fault("status", 503, start=time.monotonic(), end=time.monotonic() + 1.5))

    def after_outage() -> None:
        time.sleep(max(0.0, cluster.faults[-1].end - time.monotonic()))

    run_stage("quota", run, run_dir)
    outage()
    with pytest.raises(ApiUnavailable):
        run_stage("clusters", run, run_dir)
    assert not cluster.requests("DELETE") and (run_dir / "live" / DETACHED).is_file()
    after_outage()
    rec = run_stage("clusters", run, run_dir)  # the API is back: the same stage carries on
    assert rec["redone_before"] == [] and rec["state"]["lock"]["action"] == "renewed"
    assert not (run_dir / "live" / DETACHED).exists()

    outage()
    with pytest.raises(ApiUnavailable):
        run_stage("jobs", run, run_dir)
    after_outage()
    teardown_sessions(str(root), "k8s")  # what Snakemake's onerror handler does: the cell is kept
    assert not cluster.requests("DELETE")
    assert K8sBackend.release_detached(root) == [str(run_dir)]  # `snakemake teardown` (explicit)
    teardown_sessions(str(root), "k8s")
    assert cluster.requests("DELETE", f"namespaces/{NS}$")
    assert not [p for p in cluster.objs if f"namespaces/{NS}" in p]
