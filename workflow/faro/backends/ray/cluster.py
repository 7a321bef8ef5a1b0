"""Start, check and stop the local Ray head of one run, by pid only.

The head runs ``ray start --head`` as a subprocess with its own short temp dir
(Ray's socket paths must stay under ~107 characters), free ports picked at
start, the dashboard (and the Serve REST API) on 127.0.0.1, and
``--num-cpus = quota + overhead`` so Ray itself refuses replicas beyond the
quota.  Every process of the run carries the environment variable
``FARO_RAY_RUN=<token>`` (Ray's daemons and workers inherit the environment of
``ray start``); :func:`run_pids` finds them by that marker (or by the temp dir
in their command line), so :func:`stop_head` terminates exactly this run's
processes (SIGTERM, then SIGKILL after a grace period) and never another Ray
on the machine.  ``ray stop`` is never used: it kills every Ray on the machine.

A session record (JSON) is kept in the run folder and in a state directory
(default ``/tmp/faro-ray-state``), so :func:`teardown_all` can stop leftovers
of interrupted runs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

MARKER = "FARO_RAY_RUN"
DEFAULT_STATE_DIR = Path(os.environ.get("FARO_RAY_STATE_DIR", "/tmp/faro-ray-state"))


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now (from the ephemeral range)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _proc_environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _proc_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def run_pids(token: str, temp_dir: str | None = None) -> list[int]:
    """Live pids of the run marked ``token`` (environment marker or temp dir in the command line)."""
    needle = f"{MARKER}={token}".encode()
    me = os.getpid()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == me or _is_zombie(pid):
            continue
        env = _proc_environ(pid)
        if needle in env.split(b"\0") or (temp_dir and f"{temp_dir}/" in _proc_cmdline(pid)):
            out.append(pid)
    return sorted(out)


def _http_ok(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return 200 <= r.status < 300
    except Exception:
        return False


def start_head(
    run_dir: str | os.PathLike,
    num_cpus: int,
    *,
    state_dir: str | os.PathLike = DEFAULT_STATE_DIR,
    temp_root: str = "/tmp",
    extra_pythonpath: list[str] | None = None,
    timeout_s: float = 90.0,
) -> dict[str, Any]:
    """Start this run's Ray head; return its session record (also written to disk)."""
    run_dir = Path(run_dir)
    token = secrets.token_hex(6)
    temp_dir = os.path.join(temp_root, f"faro-ray-{token}")
    os.makedirs(temp_dir, exist_ok=True)
    gcs, om, nm, client, dash, agent_http, agent_grpc, rt_env, metrics, http = free_ports(10)
    env = dict(os.environ)
    env[MARKER] = token
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    pkg_root = str(Path(__file__).resolve().parents[3])  # .../workflow
    paths = [pkg_root, *(extra_pythonpath or [])]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    ray_bin = str(Path(sys.executable).with_name("ray"))
    cmd = [
        ray_bin if os.path.exists(ray_bin) else "ray", "start", "--head",
        f"--num-cpus={int(num_cpus)}", f"--temp-dir={temp_dir}",
        "--node-ip-address=127.0.0.1", f"--port={gcs}", f"--object-manager-port={om}",
        f"--node-manager-port={nm}", f"--ray-client-server-port={client}",
        "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
        f"--dashboard-agent-listen-port={agent_http}", f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--runtime-env-agent-port={rt_env}", f"--metrics-export-port={metrics}",
        "--disable-usage-stats", "--object-store-memory=200000000",
    ]
    record: dict[str, Any] = {
        "token": token,
        "run_dir": str(run_dir.resolve()),
        "temp_dir": temp_dir,
        "gcs_address": f"127.0.0.1:{gcs}",
        "ray_client_address": f"ray://127.0.0.1:{client}",
        "dashboard_url": f"http://127.0.0.1:{dash}",
        "http_port": http,
        "metrics_port": metrics,
        "num_cpus": int(num_cpus),
        "state_dir": str(state_dir),
    }
    # record before starting, so a crash in between still leaves something to tear down
    _write_record(record, run_dir, state_dir)
    t0 = time.monotonic()
    log = run_dir / "raw" / "ray_start.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout_s,
                              start_new_session=True)
    if proc.returncode != 0:
        stop_head(record)
        raise RuntimeError(f"`ray start --head` failed (exit {proc.returncode}); see {log}")
    deadline = time.monotonic() + timeout_s
    while not _http_ok(record["dashboard_url"] + "/api/version"):
        if time.monotonic() > deadline:
            stop_head(record)
            raise RuntimeError(f"Ray dashboard at {record['dashboard_url']} did not come up "
                               f"in {timeout_s:.0f} s")
        time.sleep(0.5)
    latest = Path(temp_dir) / "session_latest"
    record["session_dir"] = str(latest.resolve())
    record["pids"] = run_pids(token, temp_dir)
    record["startup_s"] = round(time.monotonic() - t0, 3)
    _write_record(record, run_dir, state_dir)
    return record


def _record_paths(record: dict[str, Any], run_dir=None, state_dir=None) -> list[Path]:
    run_dir = Path(run_dir or record["run_dir"])
    state_dir = Path(state_dir or record.get("state_dir") or DEFAULT_STATE_DIR)
    return [run_dir / "live" / "ray_head.json", state_dir / f"{record['token']}.json"]


def _write_record(record: dict[str, Any], run_dir=None, state_dir=None) -> None:
    for p in _record_paths(record, run_dir, state_dir):
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, p)


def load_record(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    p = Path(run_dir) / "live" / "ray_head.json"
    return json.loads(p.read_text()) if p.exists() else None


def health(record: dict[str, Any], *, driver_check: bool = True, timeout_s: float = 60.0) -> dict[str, Any]:
    """Check the head: dashboard HTTP answers and a driver (``ray.init(address=...)``, in a
    subprocess so no connection lingers) sees the expected logical CPUs.  Raises on failure."""
    if not run_pids(record["token"], record["temp_dir"]):
        raise RuntimeError(f"Ray head of this run ({record['temp_dir']}) has no live process: "
                           f"the session is gone")
    if not _http_ok(record["dashboard_url"] + "/api/version"):
        raise RuntimeError(f"Ray dashboard {record['dashboard_url']} does not answer: the session is gone")
    out: dict[str, Any] = {"dashboard": True}
    if driver_check:
        gcs = record["gcs_address"]
        code = (
            f"import json, ray; ray.init(address={gcs!r}, logging_level='ERROR', log_to_driver=False);"
            "print(json.dumps(ray.cluster_resources())); ray.shutdown()"
        )
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s,
                           env=env)
        if p.returncode != 0:
            raise RuntimeError(f"ray.init(address={record['gcs_address']}) failed: {p.stderr[-2000:]}")
        res = json.loads(p.stdout.strip().splitlines()[-1])
        if int(res.get("CPU", -1)) != int(record["num_cpus"]):
            raise RuntimeError(f"Ray head reports {res.get('CPU')} CPUs, expected {record['num_cpus']}")
        out["resources"] = res
    return out


def terminate_pids(pids: list[int], grace_s: float = 5.0) -> list[int]:
    """SIGTERM ``pids``, SIGKILL what is left after ``grace_s``; returns those that needed SIGKILL."""
    alive = [p for p in pids if not _is_zombie(p)]
    for p in alive:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if not _is_zombie(p)]
    for p in alive:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return alive


def stop_head(record: dict[str, Any], *, grace_s: float = 5.0, remove_temp: bool = True) -> dict[str, Any]:
    """Stop exactly this run's Ray processes; idempotent.  Returns what it did."""
    token, temp_dir = record["token"], record["temp_dir"]
    killed: list[int] = []
    termed: list[int] = []
    for _ in range(5):  # workers may be forked while we stop: rescan
        pids = run_pids(token, temp_dir)
        if not pids:
            break
        termed += pids
        killed += terminate_pids(pids, grace_s)
        time.sleep(0.2)
    left = run_pids(token, temp_dir)
    if left:
        raise RuntimeError(f"processes of Ray run {token} survive SIGKILL: {left}")
    if remove_temp and os.path.isdir(temp_dir):
        shutil.rmtree(temp_dir, ignore_errors=True)
    for p in _record_paths(record):
        p.unlink(missing_ok=True)
    return {"token": token, "terminated": sorted(set(termed)), "sigkilled": sorted(set(killed))}


def teardown_all(state_dir: str | os.PathLike = DEFAULT_STATE_DIR) -> list[dict[str, Any]]:
    """Stop every leftover session recorded in ``state_dir``."""
    done = []
    for p in sorted(Path(state_dir).glob("*.json")):
        try:
            record = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        done.append(stop_head(record))
        p.unlink(missing_ok=True)
    return done
