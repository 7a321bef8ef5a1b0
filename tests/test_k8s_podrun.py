"""k8s backend: the pod entry point runs its command, keeps its output as files and serves them
until released (a local process on 127.0.0.1, no cluster)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

WORKFLOW = str(Path(__file__).resolve().parents[1] / "workflow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, data: bytes | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as r:
        return r.read()


def _wait_json(url: str, pred, timeout: float = 20.0) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            got = json.loads(_get(url))
            if pred(got):
                return got
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} never satisfied the condition")


@pytest.mark.timeout(60)
def test_podrun_serves_records_until_released(tmp_path):
    port = _free_port()
    script = ("import sys, pathlib; p = pathlib.Path(sys.argv[1]); p.write_text('a\\nb\\n'); "
              "print('record 1'); print('record 2'); sys.exit(3)")
    env = {**os.environ, "PYTHONPATH": WORKFLOW}
    proc = subprocess.Popen([sys.executable, "-m", "faro.backends.k8s.podrun", "--dir", str(tmp_path),
                             "--port", str(port), "--host", "127.0.0.1", "--hold-seconds", "30", "--",
                             sys.executable, "-c", script, str(tmp_path / "requests.jsonl")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        st = _wait_json(f"{base}/status", lambda s: s["state"] == "exited")
        assert st["returncode"] == 3
        assert _get(f"{base}/healthz") == b"ok"
        files = {f["name"]: f["size"] for f in json.loads(_get(f"{base}/files"))["files"]}
        assert files == {"requests.jsonl": 4, "stdout.log": 18, "stderr.log": 0, "exit_code": 2}
        assert _get(f"{base}/files/stdout.log") == b"record 1\nrecord 2\n"
        with pytest.raises(urllib.error.HTTPError):
            _get(f"{base}/files/../../etc/passwd")
        assert proc.poll() is None  # held
        assert json.loads(_get(f"{base}/release", data=b"")) == {"released": True}
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 3  # the command's own exit code
        assert out == b"record 1\nrecord 2\n"  # also on the container's stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_podrun_without_command_is_a_usage_error(tmp_path):
    from faro.backends.k8s.podrun import main

    assert main(["--dir", str(tmp_path / "x")]) == 2


def test_a_failing_command_is_started_again_in_the_same_folder(tmp_path):
    """--restarts: the autoscaler's pod starts a failed process again (it resumes from its
    records); /status counts the restarts, the final exit code is the last run's."""
    from faro.backends.k8s.podrun import run

    script = ("import pathlib, sys; p = pathlib.Path(sys.argv[1]) / 'runs.txt'; "
              "n = len(p.read_text()) if p.exists() else 0; p.write_text('x' * (n + 1)); "
              "print('run', n + 1, flush=True); sys.exit(0 if n >= 2 else 3)")
    rc = run([sys.executable, "-c", script, str(tmp_path)], tmp_path, _free_port(), hold_s=0,
             host="127.0.0.1", restarts=5)
    assert rc == 0 and (tmp_path / "runs.txt").read_text() == "xxx"
    assert (tmp_path / "stdout.log").read_text().splitlines() == ["run 1", "run 2", "run 3"]
    assert "restart 2 of 5" in (tmp_path / "stderr.log").read_text()
    rc = run([sys.executable, "-c", "import sys; sys.exit(4)"], tmp_path / "b", _free_port(), hold_s=0,
             host="127.0.0.1", restarts=1)
    assert rc == 4  # gives up after its restarts


class _ExitOnRelease:
    """A release event whose ``set`` ends the handler at once, as the pod's process may end the
    moment it is released (CI saw the answer cut short: IncompleteRead)."""

    def __init__(self) -> None:
        self.was_set = False

    def set(self) -> None:
        self.was_set = True
        raise SystemExit  # the handler thread stops here, its socket is closed

    def is_set(self) -> bool:
        return self.was_set


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the SystemExit
def test_release_is_answered_before_the_pod_may_exit(tmp_path):
    import threading
    from http.server import ThreadingHTTPServer

    from faro.backends.k8s.podrun import PodRun, make_handler

    class Server(ThreadingHTTPServer):
        daemon_threads = False  # server_close() joins the handler threads, inside this test

    state = PodRun(tmp_path)
    state.released = _ExitOnRelease()  # type: ignore[assignment]
    server = Server(("127.0.0.1", 0), make_handler(state))
    serving = threading.Thread(target=server.serve_forever)
    serving.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/release"
        assert json.loads(_get(url, data=b"")) == {"released": True}
    finally:
        server.shutdown()
        server.server_close()
        serving.join()
    assert state.released.was_set  # by the handler, after its answer
