"""The trace format: per-minute request counts per job.

A trace is JSON Lines, one line per trace minute, in order::

    {"ts": 0, "counts": {"serve-cluster0": {"classifier": 957}, "serve-cluster1": {...}}}

``ts`` is the minute index (0, 1, 2, ...); ``counts`` maps each job to
``{deployment: count}`` (the artifact has one deployment, ``classifier``, per job;
several deployments of a job are summed).  Every line must name every job of the
experiment; counts are non-negative integers.  Errors name the file and line.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faro.atomic import atomic_path


class TraceError(ValueError):
    """A trace file that does not follow the format."""


@dataclass(frozen=True)
class Trace:
    jobs: tuple[str, ...]
    #: counts[minute, job]
    counts: np.ndarray
    #: jobs the file has beyond the ones asked for (left out of ``counts``)
    extra_jobs: tuple[str, ...] = ()

    @property
    def n_minutes(self) -> int:
        return int(self.counts.shape[0])

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def select(self, jobs: Sequence[str]) -> Trace:
        idx = [self.jobs.index(j) for j in jobs]
        return Trace(tuple(jobs), self.counts[:, idx])


def parse_trace(
    path: str | os.PathLike, jobs: Sequence[str] | None = None, *, file_order: bool = False
) -> Trace:
    """Read and validate a trace; ``jobs`` (if given) must all appear on every line.

    Without ``jobs``, the trace's jobs are those of its first line, in natural order
    (``serve-cluster2`` before ``serve-cluster10``), or in the line's own order with
    ``file_order`` (a prepared trace, :func:`write_trace`, lists the experiment's jobs
    in the experiment's order, the order that indexes their random streams).
    """
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: trace file not found")
    rows: list[dict[str, int]] = []
    names: list[str] | None = list(jobs) if jobs is not None else None
    extra: dict[str, None] = {}
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            if not rows and line.lstrip().startswith("["):
                raise TraceError(
                    f"{where}: a JSON array; a trace is JSON Lines, one object per line "
                    '(\'{"ts": 0, "counts": {...}}\'); convert it with: jq -c \'.[]\' FILE > NEW'
                )
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise TraceError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(rec, dict) or "counts" not in rec or "ts" not in rec:
                raise TraceError(f"{where}: each line needs keys 'ts' and 'counts'")
            if rec["ts"] != len(rows):
                raise TraceError(f"{where}: expected ts {len(rows)}, found {rec['ts']!r}")
            counts = rec["counts"]
            if not isinstance(counts, dict):
                raise TraceError(f"{where}: 'counts' must be an object of job -> {{deployment: count}}")
            row: dict[str, int] = {}
            for job, deps in counts.items():
                if isinstance(deps, dict):
                    vals = list(deps.values())
                else:
                    vals = [deps]
                total = 0
                for v in vals:
                    if (
                        isinstance(v, bool)
                        or not isinstance(v, int | float)
                        or not math.isfinite(v)
                        or v != int(v)
                    ):
                        raise TraceError(f"{where}: job {job!r} has a non-integer count {v!r}")
                    if v < 0:
                        raise TraceError(f"{where}: job {job!r} has a negative count {v}")
                    total += int(v)
                row[job] = total
            if names is None:
                names = list(row) if file_order else sorted(row, key=_natural_key)
            missing = [j for j in names if j not in row]
            if missing:
                raise TraceError(f"{where}: missing job(s) {', '.join(missing)}")
            if len(row) > len(names):
                extra.update((j, None) for j in row if j not in names)
            rows.append(row)
    if not rows:
        raise TraceError(f"{path}: trace is empty")
    assert names is not None
    counts = np.array([[r[j] for j in names] for r in rows], dtype=np.int64)
    return Trace(tuple(names), counts, tuple(sorted(set(extra) - set(names), key=_natural_key)))


def _natural_key(s: str) -> tuple:
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))


def write_trace(trace: Trace, path: str | os.PathLike, deployment: str = "classifier") -> None:
    """Write ``trace`` in the format above (atomically)."""
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for k in range(trace.n_minutes):
            counts = {j: {deployment: int(trace.counts[k, i])} for i, j in enumerate(trace.jobs)}
            fh.write(json.dumps({"ts": k, "counts": counts}) + "\n")

