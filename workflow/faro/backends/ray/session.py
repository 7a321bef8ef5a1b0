"""The stages of one ``ray`` run (a live session on a local Ray head).

Each stage takes the run folder and the resolved run config, returns a JSON-able
record of what it did and the live state it created, checks the live state it
relies on (raising a clear error when the session is gone and must be rebuilt),
and tears the session down itself when it fails (also on Ctrl-C).

Run config keys used here::

    seed, quota, overhead_cpus (default 0), policy ("name" or "module:Class"),
    policy_params, jobs: [{name, slo_ms, processing_ms}], trace_path (artifact
    JSON Lines), unit_time, tick_s (default 10, trace seconds), model
    ("emulated" | "resnet"), service {shape, loc, scale}, controller {...
    Controller keyword arguments}, ray {state_dir, temp_root, extra_pythonpath,
    deploy_timeout_s, late_warn_ms, max_conn_errors, base_url (override)}

Live state lives in ``RUN/live/`` (``ray_head.json``, ``autoscaler.json``,
``autoscaler_config.json``); the replayer's and autoscaler's outputs in ``RUN/raw/``.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from faro.backends.ray import cluster
from faro.model.trace import parse_trace
from faro.serving import serve_api
from faro.serving.attempts import archive_attempt
from faro.serving.logs import fetch_logs as _fetch_logs
from faro.serving.replayer import run_replay
from faro.serving.serve_app import app_config, serve_config

log = logging.getLogger("faro.ray.stages")
#: what one attempt of a run writes into ``raw/`` (kept aside when the run is redone)
ATTEMPT_FILES = ("requests.csv", "autoscaler.jsonl", "autoscaler.log", "replay_start.json", "replay_end.json",
                 "serve_logs")
PKG_ROOT = str(Path(__file__).resolve().parents[3])


class SessionGone(RuntimeError):
    """The live state a stage relies on is gone: rebuild the session from ``setup_quota``."""


def _rc(cfg: dict) -> dict:
    return dict(cfg.get("ray") or {})


def _state_dir(cfg: dict) -> str:
    return str(_rc(cfg).get("state_dir") or cluster.DEFAULT_STATE_DIR)


def _job_names(cfg: dict) -> list[str]:
    return [j["name"] for j in cfg["jobs"]]


def _write_live(run_dir: Path, name: str, rec: dict) -> None:
    p = run_dir / "live" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(rec, indent=1))


def _read_live(run_dir: Path, name: str) -> dict | None:
    p = run_dir / "live" / name
    return json.loads(p.read_text()) if p.exists() else None


def _env(cfg: dict) -> dict:
    env = dict(os.environ)
    paths = [PKG_ROOT, *_rc(cfg).get("extra_pythonpath", [])]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def _guarded(fn: Callable[[Path, dict], dict]) -> Callable[[str | Path, dict], dict]:
    """A failed (or interrupted) stage tears its session down itself, then re-raises."""

    @functools.wraps(fn)
    def wrapper(run_dir, cfg):
        run_dir = Path(run_dir)
        t = time.monotonic()
        try:
            rec = fn(run_dir, cfg)
        except BaseException as e:
            log.error("stage %s failed (%s): tearing the session down", fn.__name__, e)
            try:
                teardown(run_dir, cfg)
            except Exception as te:  # keep the original error
                log.error("teardown after failed %s also failed: %s", fn.__name__, te)
            raise
        rec = {"stage": fn.__name__, "elapsed_s": round(time.monotonic() - t, 3), **rec}
        return rec

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


# -- stages --------------------------------------------------------------------------
@_guarded
def setup_quota(run_dir: Path, cfg: dict) -> dict:
    """Logical CPUs of the head = quota + declared overhead; a leftover session is torn down first."""
    quota, overhead = int(cfg["quota"]), int(cfg.get("overhead_cpus", 0))
    if quota < len(cfg["jobs"]):
        raise ValueError(f"quota {quota} is below one replica per job ({len(cfg['jobs'])} jobs)")
    leftover = None
    if cluster.load_record(run_dir) is not None or _read_live(run_dir, "autoscaler.json"):
        leftover = teardown(run_dir, cfg)
    rec = {"quota": quota, "overhead_cpus": overhead, "num_cpus": quota + overhead, "rebuilt_from": leftover}
    _write_live(run_dir, "quota.json", rec)
    return rec


@_guarded
def deploy_clusters(run_dir: Path, cfg: dict) -> dict:
    q = _read_live(run_dir, "quota.json")
    if q is None:
        raise SessionGone("setup_quota has not run for this session")
    rc = _rc(cfg)
    head = cluster.start_head(run_dir, q["num_cpus"], state_dir=_state_dir(cfg), temp_root=rc.get("temp_root", "/tmp"),
                              extra_pythonpath=rc.get("extra_pythonpath"))
    h = cluster.health(head, driver_check=True)
    return {"head": head, "health": h}


def initial_replicas(cfg: dict) -> dict[str, int]:
    from faro.serving.autoscaler import load_policy

    pol = load_policy(cfg["policy"], cfg.get("policy_params"), _job_names(cfg), int(cfg["quota"]))
    init = pol.initial_replicas()
    return {j: int(init.get(j, 1)) for j in _job_names(cfg)}


@_guarded
def deploy_jobs(run_dir: Path, cfg: dict) -> dict:
    """Metrics actor + one Serve application per job; waits until every app is RUNNING."""
    head = _check_head(run_dir)
    code = (
        "import ray, sys; from faro.serving.metrics import get_or_create_metrics_actor as g;"
        f"ray.init(address={head['gcs_address']!r}, logging_level='ERROR', log_to_driver=False);"
        "a = g(); ray.get(a.ping.remote(), timeout=60); ray.shutdown()"
    )
    p = subprocess.run([sys.executable, "-c", code], env=_env(cfg), capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"could not create the metrics actor: {p.stderr[-2000:]}")
    init = initial_replicas(cfg)
    app = {"model": cfg.get("model", "emulated"), "service": cfg.get("service") or {}, "seed": int(cfg.get("seed", 0))}
    services = cfg.get("services") or {}
    apps = [app_config(j, init[j], **{**app, "service": services.get(j, app["service"])}) for j in _job_names(cfg)]
    conf = serve_config(apps, head["http_port"])
    t = time.monotonic()
    serve_api.put_config(head["dashboard_url"], conf)
    timeout = float(_rc(cfg).get("deploy_timeout_s", 180))
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
    rec = {"initial": init, "app": app, "warmup_s": round(time.monotonic() - t, 3),
           "base_url": f"http://127.0.0.1:{head['http_port']}", "states": st}
    _write_live(run_dir, "jobs.json", rec)
    return rec


@_guarded
def launch_autoscaler(run_dir: Path, cfg: dict) -> dict:
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
    acfg = {
        "run_dir": str(run_dir.resolve()),
        "dashboard_url": head["dashboard_url"],
        "gcs_address": head["gcs_address"],
        "metrics_port": head["metrics_port"],
        "http_port": head["http_port"],
        "jobs": cfg["jobs"],
        "quota": int(cfg["quota"]),
        "policy": cfg["policy"],
        "policy_params": cfg.get("policy_params") or {},
        "unit_time": float(cfg["unit_time"]),
        "tick_s": float(cfg.get("tick_s", 10.0)),
        "seed": int(cfg.get("seed", 0)),
        "controller": cfg.get("controller") or {},
        "initial": jobs["initial"],
        "app": jobs["app"],
        "services": cfg.get("services") or {},
        "trace_path": str(Path(cfg["trace_path"]).resolve()),
        "policy_context": cfg.get("policy_context") or {},
        "latency_window_s": float(cfg.get("latency_window_s", 30.0)),
    }
    cpath = run_dir / "live" / "autoscaler_config.json"
    cpath.write_text(json.dumps(acfg, indent=1))
    logf = open(raw / "autoscaler.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "faro.serving.autoscaler", "--config", str(cpath.resolve())],
                            env=_env(cfg), stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    logf.close()
    rec = {"pid": proc.pid, "config": str(cpath.resolve())}
    _write_live(run_dir, "autoscaler.json", rec)
    t = time.monotonic()
    decisions = raw / "autoscaler.jsonl"
    while not (decisions.exists() and '"kind": "start"' in decisions.read_text()):
        if proc.poll() is not None:
            raise RuntimeError(f"autoscaler exited with {proc.returncode} at start; see {raw / 'autoscaler.log'}")
        if time.monotonic() - t > 60:
            raise TimeoutError("autoscaler did not start within 60 s")
        time.sleep(0.2)
    return {"autoscaler": rec, "ready_s": round(time.monotonic() - t, 3),
            "archived_attempt": None if archived is None else str(archived)}


@_guarded
def replay(run_dir: Path, cfg: dict) -> dict:
    head = _check_head(run_dir)
    asr = _read_live(run_dir, "autoscaler.json")
    if not _autoscaler_alive(asr):
        raise SessionGone(
            f"the autoscaler (pid {asr and asr.get('pid')}) is not running: the session is gone and must be rebuilt"
        )
    jobs = _read_live(run_dir, "jobs.json") or {}
    raw = run_dir / "raw"
    # the experiment's jobs in its order: a job's index keys its arrival stream, as in the simulator
    trace = parse_trace(cfg["trace_path"], _job_names(cfg))

    def on_start(t0: float) -> None:
        (raw / "replay_start.json").write_text(json.dumps({"t0": t0, "unit_time": float(cfg["unit_time"])}))

    def watchdog() -> str | None:
        if not _autoscaler_alive(asr):
            return f"the autoscaler (pid {asr['pid']}) died during the replay"
        if not cluster.run_pids(head["token"], head["temp_dir"]) or not cluster._http_ok(
            head["dashboard_url"] + "/api/version"
        ):
            return "the Ray head of this session died during the replay"
        return None

    rc = _rc(cfg)
    try:
        res = run_replay(
            rc.get("base_url") or jobs.get("base_url") or f"http://127.0.0.1:{head['http_port']}",
            trace, unit_time=float(cfg["unit_time"]), seed=int(cfg.get("seed", 0)),
            records=raw / "requests.csv", watchdog=watchdog,
            late_warn_ms=float(rc.get("late_warn_ms", 50.0)), max_conn_errors=int(rc.get("max_conn_errors", 200)),
            on_start=on_start,
        )
    finally:
        (raw / "replay_end.json").write_text(json.dumps({"epoch": time.time()}))
    return {"replay": res.__dict__}


@_guarded
def fetch_logs(run_dir: Path, cfg: dict) -> dict:
    head = _head(run_dir)
    asr = _read_live(run_dir, "autoscaler.json")
    t = time.monotonic()
    while _autoscaler_alive(asr) and time.monotonic() - t < 15:  # it exits on replay_end.json
        time.sleep(0.2)
    rec = _fetch_logs(run_dir, head)
    (run_dir / "live" / "logs_fetched").write_text("1")
    return rec


def teardown(run_dir: str | Path, cfg: dict | None = None) -> dict:
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


STAGES = {f.__name__: f for f in (setup_quota, deploy_clusters, deploy_jobs, launch_autoscaler, replay, fetch_logs)}


def run_all(run_dir: str | Path, cfg: dict, provenance: dict | None = None) -> list[dict]:
    """Every stage in order, then parse, then teardown (always)."""
    from faro.serving.parse import parse_run

    records = []
    try:
        for fn in STAGES.values():
            records.append(fn(run_dir, cfg))
        records.append({"stage": "parse", **parse_run(run_dir, cfg, provenance)})
    finally:
        records.append(teardown(run_dir, cfg))
    return records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="run one stage of a ray-backend session")
    ap.add_argument("stage", choices=[*STAGES, "teardown", "teardown_all", "all"])
    ap.add_argument("--run-dir", required=False)
    ap.add_argument("--config", required=False, help="resolved run config (JSON)")
    ap.add_argument("--out", help="write the stage record here (JSON)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = json.loads(Path(a.config).read_text()) if a.config else {}
    from faro.workflow.stage_runner import sigterm_as_interrupt

    with sigterm_as_interrupt():
        if a.stage == "teardown_all":
            rec: Any = cluster.teardown_all(_state_dir(cfg))
        elif a.stage == "teardown":
            rec = teardown(a.run_dir, cfg)
        elif a.stage == "all":
            rec = run_all(a.run_dir, cfg)
        else:
            rec = STAGES[a.stage](a.run_dir, cfg)
    text = json.dumps(rec, indent=1, default=str)
    if a.out:
        Path(a.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
