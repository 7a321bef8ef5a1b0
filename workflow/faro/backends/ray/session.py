"""The stages of one ``ray`` run (a live session on a local Ray head).

Each stage takes the run folder and the run's :class:`~faro.runspec.RunSpec`,
returns a JSON-able record of what it did and the live state it created, and checks the
live state it relies on (raising :class:`SessionGone` when the session is gone and must be
rebuilt).  A failed stage does not tear down itself: the workflow's stage runner
(:func:`faro.workflow.stage_runner.run_stage`) does, in one place for every backend.

Backend options read here (``RunSpec.backend_options``, the config's ``ray:`` section):
``model`` ("emulated" | "resnet"), ``startup_timeout_s`` (Ray head and Serve apps, default
180); for tests and by-hand runs also ``state_dir``, ``temp_root``, ``extra_pythonpath``,
``late_warn_ms``, ``max_conn_errors`` and ``base_url`` (an override of the Serve proxy).

A native policy (``RunSpec.native``: Ray Serve's own autoscaler) changes one thing here:
``deploy_jobs`` gives every deployment Serve's ``autoscaling_config`` (:func:`native_autoscaling`)
instead of a fixed replica count, and the autoscaler process it launches only observes.  The
quota still holds: the head has quota + overhead logical CPUs and a replica needs one, so
replicas Serve adds beyond the quota wait in PENDING_ALLOCATION (STARTING in the REST API).

Live state lives in ``RUN/live/`` (``ray_head.json``, ``autoscaler.json``,
``autoscaler_config.json``); the replayer's and autoscaler's outputs in ``RUN/raw/``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faro.backends.ray import cluster
from faro.model.trace import parse_trace
from faro.serving import serve_api
from faro.serving.attempts import archive_attempt
from faro.serving.logs import fetch_logs as _fetch_logs
from faro.serving.replayer import run_replay
from faro.serving.serve_app import app_config, serve_config

if TYPE_CHECKING:
    from faro.runspec import RunSpec

log = logging.getLogger("faro.ray.stages")
#: what one attempt of a run writes into ``raw/`` (kept aside when the run is redone)
ATTEMPT_FILES = ("requests.csv", "autoscaler.jsonl", "autoscaler.log", "replay_start.json", "replay_end.json",
                 "serve_logs")
PKG_ROOT = str(Path(__file__).resolve().parents[3])


class SessionGone(RuntimeError):
    """The live state a stage relies on is gone: rebuild the session from ``setup_quota``."""


def _state_dir(run: RunSpec) -> str:
    return str(run.option("state_dir") or cluster.DEFAULT_STATE_DIR)


def _write_live(run_dir: Path, name: str, rec: dict) -> None:
    p = run_dir / "live" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(rec, indent=1))


def _read_live(run_dir: Path, name: str) -> dict | None:
    p = run_dir / "live" / name
    return json.loads(p.read_text()) if p.exists() else None


def _env(run: RunSpec) -> dict:
    env = dict(os.environ)
    paths = [PKG_ROOT, *run.option("extra_pythonpath", [])]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def _timed(fn: Callable[[Path, RunSpec], dict]) -> Callable[[str | Path, RunSpec], dict]:
    """The stage's record says which stage it is and how long it took."""

    @functools.wraps(fn)
    def wrapper(run_dir, run):
        t = time.monotonic()
        rec = fn(Path(run_dir), run)
        return {"stage": fn.__name__, "elapsed_s": round(time.monotonic() - t, 3), **rec}

    return wrapper


def _head(run_dir: Path) -> dict:
    head = cluster.load_record(run_dir)
    if head is None or "session_dir" not in head:
        raise SessionGone(f"no Ray head recorded in {run_dir}/live: the session is gone and must be rebuilt")
    return head


def _check_head(run_dir: Path, driver: bool = False) -> dict:
    head = _head(run_dir)
    try:
        cluster.health(head, driver_check=driver)
    except RuntimeError as e:
        raise SessionGone(f"{e}; rebuild the session (rerun from setup_quota)") from e
    return head


def _autoscaler_alive(rec: dict | None) -> bool:
    if not rec:
        return False
    pid = int(rec["pid"])
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return stat not in ("Z", "X") and "faro.serving.autoscaler" in cmd and rec["config"] in cmd


def native_autoscaling(run: RunSpec, init: dict[str, int]) -> dict[str, dict[str, Any]]:
    """A native policy (``native: true``): each job's Serve ``autoscaling_config``, built from the
    policy's parameters on the run's time scale (:func:`~faro.policies.production.serve_autoscaling_config`);
    empty for every other policy (fixed ``num_replicas``, scaled by our autoscaler)."""
    if not run.native:
        return {}
    from faro.policies.production import serve_autoscaling_config

    policy = run.build_policy(bind=False)
    k = run.exp.cluster
    return {j: serve_autoscaling_config(policy, initial=init[j], unit_time=run.unit_time,
                                        min_replicas=k.min_replicas, max_replicas=k.max_replicas)
            for j in run.jobs}


# -- stages --------------------------------------------------------------------------
@_timed
def setup_quota(run_dir: Path, run: RunSpec) -> dict:
    """Logical CPUs of the head = quota + declared overhead; a leftover session is torn down first."""
    quota, overhead = run.quota, int(run.exp.cluster.overhead_cpus)
    if quota < len(run.jobs):
        raise ValueError(f"quota {quota} is below one replica per job ({len(run.jobs)} jobs)")
    leftover = None
    if cluster.load_record(run_dir) is not None or _read_live(run_dir, "autoscaler.json"):
        leftover = teardown(run_dir)
    rec = {"quota": quota, "overhead_cpus": overhead, "num_cpus": quota + overhead, "rebuilt_from": leftover}
    _write_live(run_dir, "quota.json", rec)
    return rec


@_timed
def deploy_clusters(run_dir: Path, run: RunSpec) -> dict:
    q = _read_live(run_dir, "quota.json")
    if q is None:
        raise SessionGone("setup_quota has not run for this session")
    head = cluster.start_head(run_dir, q["num_cpus"], state_dir=_state_dir(run),
                              temp_root=run.option("temp_root", "/tmp"),
                              extra_pythonpath=run.option("extra_pythonpath"))
    h = cluster.health(head, driver_check=True)
    return {"head": head, "health": h}


@_timed
def deploy_jobs(run_dir: Path, run: RunSpec) -> dict:
    """Metrics actor + one Serve application per job; waits until every app is RUNNING."""
    head = _check_head(run_dir)
    code = (
        "import ray, sys; from faro.serving.metrics import get_or_create_metrics_actor as g;"
        f"ray.init(address={head['gcs_address']!r}, logging_level='ERROR', log_to_driver=False);"
        "a = g(); ray.get(a.ping.remote(), timeout=60); ray.shutdown()"
    )
    p = subprocess.run([sys.executable, "-c", code], env=_env(run), capture_output=True, text=True,
                       timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"could not create the metrics actor: {p.stderr[-2000:]}")
    init = run.initial_replicas()
    services = run.services()
    app = {"model": run.option("model", "emulated"), "service": services[run.jobs[0]], "seed": run.seed}
    autoscaling = native_autoscaling(run, init)
    apps = [app_config(j, init[j], **{**app, "service": services[j]}, autoscaling=autoscaling.get(j))
            for j in run.jobs]
    conf = serve_config(apps, head["http_port"])
    t = time.monotonic()
    serve_api.put_config(head["dashboard_url"], conf)
    timeout = float(run.option("startup_timeout_s", 180))
    while True:
        try:
            st = serve_api.job_states(serve_api.get_details(head["dashboard_url"], timeout=30))
        except OSError as e:  # a busy dashboard: keep waiting until the deploy timeout
            if time.monotonic() - t > timeout:
                raise TimeoutError(f"Serve applications not RUNNING after {timeout:.0f} s: {e}") from e
            time.sleep(1.0)
            continue
        ready = all(
            st.get(j, {}).get("status") == "RUNNING" and len(st[j]["running"]) == init[j] for j in init
        )
        if ready:
            break
        failed = {j: s["status"] for j, s in st.items() if s.get("status") in ("DEPLOY_FAILED", "UNHEALTHY")}
        if failed:
            raise RuntimeError(f"Serve applications failed to deploy: {failed}")
        if time.monotonic() - t > timeout:
            raise TimeoutError(f"Serve applications not RUNNING after {timeout:.0f} s: {st}")
        time.sleep(0.5)
    rec = {"initial": init, "app": app, "warmup_s": round(time.monotonic() - t, 3), "native": autoscaling,
           "base_url": f"http://127.0.0.1:{head['http_port']}", "states": st}
    _write_live(run_dir, "jobs.json", rec)
    return rec


@_timed
def launch_autoscaler(run_dir: Path, run: RunSpec) -> dict:
    head = _check_head(run_dir)
    jobs = _read_live(run_dir, "jobs.json")
    if jobs is None:
        raise SessionGone("deploy_jobs has not run for this session")
    raw = run_dir / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    # a new attempt of this run: an earlier attempt's records are kept, not overwritten
    archived = archive_attempt(raw, ATTEMPT_FILES)
    if archived is not None:
        log.warning("kept the previous attempt's raw records in %s", archived)
    # the autoscaler process reads the run spec itself, plus where this session's endpoints are
    spec = run.replace(trace_file=str(Path(run.trace_file).resolve()))
    acfg = {
        "run": spec.to_dict(),
        "run_dir": str(run_dir.resolve()),
        "dashboard_url": head["dashboard_url"],
        "gcs_address": head["gcs_address"],
        "metrics_port": head["metrics_port"],
        "http_port": head["http_port"],
        "initial": jobs["initial"],
        "app": jobs["app"],
    }
    cpath = run_dir / "live" / "autoscaler_config.json"
    cpath.write_text(json.dumps(acfg, indent=1))
    logf = open(raw / "autoscaler.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "faro.serving.autoscaler", "--config",
                             str(cpath.resolve())],
                            env=_env(run), stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    logf.close()
    rec = {"pid": proc.pid, "config": str(cpath.resolve())}
    _write_live(run_dir, "autoscaler.json", rec)
    t = time.monotonic()
    decisions = raw / "autoscaler.jsonl"
    while not (decisions.exists() and '"kind": "start"' in decisions.read_text()):
        if proc.poll() is not None:
            raise RuntimeError(f"autoscaler exited with {proc.returncode} at start; "
                               f"see {raw / 'autoscaler.log'}")
        if time.monotonic() - t > 60:
            raise TimeoutError("autoscaler did not start within 60 s")
        time.sleep(0.2)
    return {"autoscaler": rec, "ready_s": round(time.monotonic() - t, 3),
            "archived_attempt": None if archived is None else str(archived)}


@_timed
def replay(run_dir: Path, run: RunSpec) -> dict:
    head = _check_head(run_dir)
    asr = _read_live(run_dir, "autoscaler.json")
    if not _autoscaler_alive(asr):
        raise SessionGone(
            f"the autoscaler (pid {asr and asr.get('pid')}) is not running: "
            f"the session is gone and must be rebuilt"
        )
    jobs = _read_live(run_dir, "jobs.json") or {}
    raw = run_dir / "raw"
    # the experiment's jobs in its order: a job's index keys its arrival stream, as in the simulator
    trace = parse_trace(run.trace_file, run.jobs)

    def on_start(t0: float) -> None:
        (raw / "replay_start.json").write_text(json.dumps({"t0": t0, "unit_time": run.unit_time}))

    def watchdog() -> str | None:
        if not _autoscaler_alive(asr):
            return f"the autoscaler (pid {asr['pid']}) died during the replay"
        if not cluster.run_pids(head["token"], head["temp_dir"]) or not cluster._http_ok(
            head["dashboard_url"] + "/api/version"
        ):
            return "the Ray head of this session died during the replay"
        return None

    try:
        res = run_replay(
            run.option("base_url") or jobs.get("base_url") or f"http://127.0.0.1:{head['http_port']}",
            trace, unit_time=run.unit_time, seed=run.seed,
            records=raw / "requests.csv", watchdog=watchdog,
            late_warn_ms=float(run.option("late_warn_ms", 50.0)),
            max_conn_errors=int(run.option("max_conn_errors", 200)),
            on_start=on_start,
        )
    finally:
        (raw / "replay_end.json").write_text(json.dumps({"epoch": time.time()}))
    return {"replay": res.__dict__}


@_timed
def fetch_logs(run_dir: Path, run: RunSpec) -> dict:
    head = _head(run_dir)
    asr = _read_live(run_dir, "autoscaler.json")
    t = time.monotonic()
    while _autoscaler_alive(asr) and time.monotonic() - t < 15:  # it exits on replay_end.json
        time.sleep(0.2)
    rec = _fetch_logs(run_dir, head)
    (run_dir / "live" / "logs_fetched").write_text("1")
    return rec


def teardown(run_dir: str | Path) -> dict:
    """Stop this run's autoscaler and Ray head (by pid); idempotent, never raises for 'already gone'."""
    run_dir = Path(run_dir)
    out: dict[str, Any] = {"stage": "teardown"}
    asr = _read_live(run_dir, "autoscaler.json")
    if asr:
        if _autoscaler_alive(asr):
            pid = int(asr["pid"])
            os.kill(pid, signal.SIGTERM)
            t = time.monotonic()
            while _autoscaler_alive(asr) and time.monotonic() - t < 10:
                time.sleep(0.1)
            if _autoscaler_alive(asr):
                os.kill(pid, signal.SIGKILL)
            out["autoscaler_stopped"] = pid
        try:  # reap it if it is our child
            os.waitpid(int(asr["pid"]), os.WNOHANG)
        except ChildProcessError:
            pass
        (run_dir / "live" / "autoscaler.json").unlink()
    head = cluster.load_record(run_dir)
    if head:
        fetched = (run_dir / "live" / "logs_fetched").exists()
        if not fetched and head.get("session_dir") and Path(head["session_dir"]).is_dir():
            try:  # keep the logs of a failed session for debugging
                _fetch_logs(run_dir, head)
            except Exception as e:
                out["log_copy_error"] = str(e)
        out["ray"] = cluster.stop_head(head)
    for name in ("quota.json", "jobs.json", "logs_fetched"):
        (run_dir / "live" / name).unlink(missing_ok=True)
    return out


STAGES = {f.__name__: f for f in (setup_quota, deploy_clusters, deploy_jobs, launch_autoscaler, replay,
                                  fetch_logs)}
