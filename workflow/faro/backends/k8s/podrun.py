"""Entry point of faro's own pods: run a command and serve its records over HTTP.

    python -m faro.backends.k8s.podrun --dir /records --port 8080 --hold-seconds 3600 -- CMD ...

Runs CMD (the ``ray`` backend's replayer or autoscaler), copies its stdout/stderr both to
the container's streams and to ``DIR/stdout.log`` / ``DIR/stderr.log`` (the kubelet rotates
container logs at ~10 MiB, which would lose most of a 6-hour replay's records), and serves
DIR on PORT so the stages can fetch the files through the API server's pod proxy:

- ``GET /healthz`` -> ``ok`` (readiness probe)
- ``GET /status`` -> ``{"state": "running"|"exited", "returncode": ..., ...}``
- ``GET /files`` -> ``{"files": [{"name", "size"}]}``; ``GET /files/<name>`` -> the file
- ``POST /release`` -> lets a held pod exit

After CMD exits, the pod keeps serving for up to ``--hold-seconds`` or until released, then
exits with CMD's return code (so a Job's success is the replayer's success).

``--restarts N``: a CMD that fails (non-zero exit, not asked to stop) is started again, up to N
times, with a short backoff, in the same records folder (the autoscaler resumes from its own
decision log); ``/status`` counts the restarts and stays ``running`` meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any


class PodRun:
    """State shared by the child process, the tee threads and the HTTP handler."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.started = time.time()
        self.ended: float | None = None
        self.returncode: int | None = None
        self.released = threading.Event()
        self.restarts = 0
        self.last_failure: int | None = None

    def status(self) -> dict[str, Any]:
        return {"state": "running" if self.returncode is None else "exited", "returncode": self.returncode,
                "started": self.started, "ended": self.ended, "released": self.released.is_set(),
                "restarts": self.restarts, "last_failure": self.last_failure}

    def files(self) -> list[dict[str, Any]]:
        out = []
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                out.append({"name": p.relative_to(self.root).as_posix(), "size": p.stat().st_size})
        return out

    def resolve(self, rel: str) -> Path | None:
        p = (self.root / rel).resolve()
        if p != self.root and self.root in p.parents and p.is_file():
            return p
        return None


def make_handler(state: PodRun) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:  # keep the container log for CMD
            return

        def _json(self, obj: Any, code: int = 200) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path == "/healthz":
                data = b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(data)
            elif path == "/status":
                self._json(state.status())
            elif path == "/files":
                self._json({"files": state.files()})
            elif path.startswith("/files/"):
                p = state.resolve(path[len("/files/"):])
                if p is None:
                    self._json({"error": "no such file"}, 404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(p.stat().st_size))
                self.end_headers()
                with open(p, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        self.wfile.write(chunk)
            else:
                self._json({"error": "not found"}, 404)

        def do_POST(self) -> None:  # noqa: N802
            if self.path.rstrip("/") == "/release":
                # answer first: the main thread may shut the pod down the moment it is released,
                # and an answer cut short reads as a failed release (IncompleteRead) to the client
                self._json({"released": True})
                self.wfile.flush()
                state.released.set()
            else:
                self._json({"error": "not found"}, 404)

    return Handler


def _tee(src: IO[bytes], sink: IO[bytes], path: Path) -> None:
    with open(path, "ab") as fh:
        for line in iter(src.readline, b""):
            fh.write(line)
            fh.flush()
            sink.write(line)
            sink.flush()


def run(cmd: Sequence[str], root: Path, port: int, hold_s: float, host: str = "0.0.0.0",
        restarts: int = 0) -> int:
    """Run ``cmd`` under the record server (again after a failure, up to ``restarts`` times);
    returns its last exit code."""
    state = PodRun(root)
    server = ThreadingHTTPServer((host, port), make_handler(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    current: dict[str, subprocess.Popen | None] = {"child": None}

    def forward(signum: int, _frame: Any) -> None:
        child = current["child"]
        if child is not None and child.poll() is None:
            child.send_signal(signum)
        state.released.set()

    signal.signal(signal.SIGTERM, forward)
    while True:
        try:
            child = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            print(f"podrun: cannot start {cmd[0]!r}: {e}", file=sys.stderr)
            rc = 127
            break
        current["child"] = child
        tees = [threading.Thread(target=_tee,
                                 args=(child.stdout, sys.stdout.buffer, state.root / "stdout.log")),
                threading.Thread(target=_tee,
                                 args=(child.stderr, sys.stderr.buffer, state.root / "stderr.log"))]
        for t in tees:
            t.start()
        rc = child.wait()
        for t in tees:
            t.join()
        if rc == 0 or state.released.is_set() or state.restarts >= restarts:
            break
        state.restarts += 1
        state.last_failure = rc
        msg = f"podrun: {cmd[0]} exited with {rc}; restart {state.restarts} of {restarts}\n".encode()
        with open(state.root / "stderr.log", "ab") as fh:
            fh.write(msg)
        sys.stderr.buffer.write(msg)
        sys.stderr.flush()
        time.sleep(min(30.0, 2.0 ** state.restarts))
    state.returncode, state.ended = rc, time.time()
    (state.root / "exit_code").write_text(f"{state.returncode}\n")
    if hold_s > 0:
        state.released.wait(hold_s)
    server.shutdown()
    server.server_close()
    return int(state.returncode or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: python -m faro.backends.k8s.podrun [--dir D] [--port P] [--hold-seconds S] -- CMD ...",
              file=sys.stderr)
        return 2
    i = argv.index("--")
    ap = argparse.ArgumentParser(prog="python -m faro.backends.k8s.podrun")
    ap.add_argument("--dir", type=Path, default=Path(os.environ.get("FARO_RECORDS_DIR", "/records")))
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--hold-seconds", type=float, default=0.0)
    ap.add_argument("--host", default="0.0.0.0")
    ap.add_argument("--restarts", type=int, default=0, help="start a failed command again, up to N times")
    a = ap.parse_args(argv[:i])
    cmd = argv[i + 1:]
    if not cmd:
        ap.error("no command after --")
    return run(cmd, a.dir, a.port, a.hold_seconds, a.host, a.restarts)


if __name__ == "__main__":
    raise SystemExit(main())
