"""Run one stage of one run, for any backend, with records and clean failure.

Each stage writes ``<run>/stages/<stage>.json``: what it did, with which inputs
(sha256), the live state it created, timings and provenance.  Before a stage runs,
the live state of every earlier session stage is checked; if a session is gone
(e.g. after Ctrl-C and teardown) the earlier stages are redone first, and the
record says so.  If a stage fails, the run's session is torn down and the error
re-raised, so the cluster is clean.  SIGTERM (a killed Snakemake, a job scheduler, a CI
timeout) counts as a failure too: :func:`sigterm_as_interrupt` turns it into an exception.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from faro.atomic import atomic_path
from faro.backends.base import SESSION_STAGES, STAGES, get_backend
from faro.model.data import sha256_of
from faro.workflow.provenance import provenance

log = logging.getLogger("faro.workflow.stage_runner")


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: handled like Ctrl-C (the stage tears its session down, then exits)."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (main thread only; else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum, frame):
        raise Terminated(f"signal {signum} (SIGTERM)")

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def record_path(run_dir: Path, stage: str) -> Path:
    return run_dir / "stages" / f"{stage}.json"


def read_records(run_dir: Path, upto: str) -> dict[str, dict]:
    out = {}
    for s in STAGES[: STAGES.index(upto)]:
        p = record_path(run_dir, s)
        if p.is_file():
            out[s] = json.loads(p.read_text())
    return out


def write_json_atomic(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")


def _inputs_digest(paths: list[str]) -> dict[str, str]:
    out = {}
    for p in paths:
        pp = Path(p)
        if pp.is_file():
            out[str(p)] = sha256_of(pp)
    return out


def stale_stages(backend, stage: str, run_dir: Path, records: dict[str, dict]) -> list[str]:
    """The session stages before ``stage`` to redo: those after the latest one still alive.

    ``backend.alive(s, ...)`` says whether what stage ``s`` left is still usable by the stage
    after it (a finished replay's records, a running Ray head), so only the most recent
    live stage matters: a replay that is over needs no running autoscaler.
    """
    before = [s for s in SESSION_STAGES if STAGES.index(s) < STAGES.index(stage)]
    for k in range(len(before) - 1, -1, -1):
        rec = records.get(before[k])
        if rec is not None and backend.alive(before[k], run_dir, rec):
            return before[k + 1 :]
    return before


def run_stage(stage: str, run: dict[str, Any], run_dir: str | os.PathLike, inputs: list[str] | None = None) -> dict:
    """Do ``stage`` of ``run`` in ``run_dir``; returns (and writes) its record."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} ({', '.join(STAGES)})")
    run_dir = Path(run_dir)
    backend = get_backend(run["backend"])
    records = read_records(run_dir, stage)
    rebuilt: list[str] = []
    t0 = time.time()
    try:
        if stage != "teardown":
            # a session whose live state is gone is rebuilt before going on: walk back to the
            # latest earlier stage whose state is still there, redo every stage after it
            for prev in stale_stages(backend, stage, run_dir, records):
                log.warning("stage %s: live state of %s is gone; redoing it", stage, prev)
                state = backend.run_stage(prev, run, run_dir, records)
                records[prev] = _record(prev, run, state, [], time.time(), rebuilt=True)
                write_json_atomic(record_path(run_dir, prev), records[prev])
                rebuilt.append(prev)
            state = backend.run_stage(stage, run, run_dir, records)
        else:
            state = backend.teardown(run_dir, records)
    except BaseException as e:
        if getattr(e, "keep_session", False):  # e.g. the k8s API unreachable: the cell may be fine
            log.error("stage %s lost the session's control plane; the session is kept: run again to reattach", stage)
            raise
        if stage != "teardown" and run["backend"] != "sim":
            log.error("stage %s failed: tearing the session down", stage)
            try:
                backend.teardown(run_dir, read_records(run_dir, "teardown"))
            except Exception as e:  # noqa: BLE001 - report, keep the original error
                log.error("teardown after failure also failed: %s", e)
        raise
    rec = _record(stage, run, state, inputs or [], t0, rebuilt=False, redone=rebuilt)
    write_json_atomic(record_path(run_dir, stage), rec)
    return rec


def _record(stage, run, state, inputs, t0, *, rebuilt: bool, redone: list[str] | None = None) -> dict:
    return {
        "stage": stage,
        "backend": run["backend"],
        "experiment": run["experiment"],
        "quota": run["quota"],
        "policy": run["policy"],
        "seed": run["seed"],
        "started": t0,
        "seconds": round(time.time() - t0, 3),
        "rebuilt": rebuilt,
        "redone_before": redone or [],
        "inputs": _inputs_digest(inputs),
        "state": state,
        "provenance": provenance(config_hash=run.get("config_hash")),
    }
