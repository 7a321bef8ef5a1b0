"""Derive a small trace (few jobs, a window, rates scaled down) from the artifact trace.

Used for experiments this machine can run in real time on the ``ray`` backend
(e.g. ``experiments/local_small/``).  Output is in the artifact's JSON Lines
format (``{"ts": k, "counts": {job: {"classifier": n}}}``, ``ts`` from 0), so
the simulator and the replayer read it alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def derive_small_trace(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    jobs: Sequence[str],
    start_minute: int,
    minutes: int,
    scale: float,
    rename: dict[str, str] | None = None,
) -> dict:
    """Keep ``jobs`` over minutes ``[start_minute, start_minute + minutes)``, multiply every count by
    ``scale`` (rounded half to even, at least 1 where the source had any), write to ``dst``.
    Returns a summary (total requests, mean/peak cluster rate per minute, per-job means)."""
    rows = {}
    with open(src) as fh:
        for line in fh:
            if line.strip():
                r = json.loads(line)
                rows[int(r["ts"])] = r["counts"]
    missing = [j for j in jobs if j not in rows[min(rows)]]
    if missing:
        raise KeyError(f"jobs {missing} not in {src}")
    if start_minute < 0 or start_minute + minutes > len(rows):
        raise ValueError(f"window [{start_minute}, {start_minute + minutes}) outside the trace (0..{len(rows)})")
    rename = dict(rename or {})
    out = []
    for k in range(minutes):
        src_counts = rows[start_minute + k]
        counts = {}
        for j in jobs:
            n = int(sum(src_counts[j].values()))
            m = int(np.rint(n * scale))
            counts[rename.get(j, j)] = {"classifier": max(m, 1 if n > 0 else 0)}
        out.append({"ts": k, "counts": counts})
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("".join(json.dumps(r) + "\n" for r in out))
    per_min = np.array([[r["counts"][rename.get(j, j)]["classifier"] for j in jobs] for r in out])
    return {
        "total": int(per_min.sum()),
        "cluster_mean_per_min": float(per_min.sum(1).mean()),
        "cluster_peak_per_min": int(per_min.sum(1).max()),
        "job_mean_per_min": {rename.get(j, j): float(per_min[:, i].mean()) for i, j in enumerate(jobs)},
    }
