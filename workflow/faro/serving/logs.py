"""Fetch a run's logs into its ``raw/`` folder.

The replayer's records (``raw/requests.csv``) and the autoscaler's decision log
(``raw/autoscaler.jsonl``) are written there directly; this adds Serve's
controller, proxy and replica logs from *this run's* Ray session directory
(recorded at start, never ``session_latest`` of some other temp dir) and the
Ray daemons' error logs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


def fetch_logs(run_dir: str | Path, head: dict[str, Any]) -> dict[str, Any]:
    raw = Path(run_dir) / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    session = Path(head["session_dir"])
    if not session.is_dir():
        raise RuntimeError(f"Ray session directory {session} is gone: cannot fetch Serve logs")
    dest = raw / "serve_logs"
    dest.mkdir(exist_ok=True)
    copied = []
    serve_dir = session / "logs" / "serve"
    for f in sorted(serve_dir.glob("*.log")) if serve_dir.is_dir() else []:
        shutil.copy2(f, dest / f.name)
        copied.append(f.name)
    for name in ("gcs_server.err", "raylet.err", "dashboard.err"):
        f = session / "logs" / name
        if f.exists() and f.stat().st_size:
            shutil.copy2(f, dest / name)
            copied.append(name)
    expected = {"requests.csv": (raw / "requests.csv").exists(),
                "autoscaler.jsonl": (raw / "autoscaler.jsonl").exists()}
    return {"session_dir": str(session), "serve_logs": copied, "present": expected}
