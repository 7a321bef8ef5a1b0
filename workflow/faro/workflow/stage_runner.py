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
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faro.atomic import atomic_path
from faro.backends.base import LIVE_BACKENDS, SESSION_STAGES, STAGES, get_backend
from faro.workflow.provenance import provenance

if TYPE_CHECKING:
    from faro.runspec import RunSpec

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
    from faro.model.data import sha256_of

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


@contextmanager
def teardown_on_failure(teardown, what: str) -> Iterator[None]:
    """The one teardown-on-failure of every live backend: when the block fails (or is
    interrupted: Ctrl-C, SIGTERM under :func:`sigterm_as_interrupt`), call ``teardown()``, then
    re-raise.  An error marked ``keep_session`` (the k8s API server unreachable for its whole
    retry grace: the cell may be fine) leaves the session for a reattach."""
    try:
        yield
    except BaseException as e:
        if getattr(e, "keep_session", False):
            log.error("%s lost the session's control plane; the session is kept: run again to reattach", what)
            raise
        log.error("%s failed: tearing the session down", what)
        try:
            teardown()
        except Exception as te:  # noqa: BLE001 - report, keep the original error
            log.error("teardown after failure also failed: %s", te)
        raise


def run_stage(stage: str, run: RunSpec, run_dir: str | os.PathLike, inputs: list[str] | None = None) -> dict:
    """Do ``stage`` of ``run`` in ``run_dir``; returns (and writes) its record.

    The one place of teardown-on-failure: when a stage of a live backend fails (or is
    interrupted), the run's session is torn down here, then the error re-raised; the
    backends' stages never tear down themselves."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} ({', '.join(STAGES)})")
    run_dir = Path(run_dir)
    backend = get_backend(run.backend)
    records = read_records(run_dir, stage)
    rebuilt: list[str] = []
    t0 = time.time()
    guard = (teardown_on_failure(lambda: backend.teardown(run_dir, read_records(run_dir, "teardown")),
                                 f"stage {stage}")
             if stage != "teardown" and LIVE_BACKENDS[run.backend] else nullcontext())
    with guard:
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
    rec = _record(stage, run, state, inputs or [], t0, rebuilt=False, redone=rebuilt)
    write_json_atomic(record_path(run_dir, stage), rec)
    return rec


def run_chain(run: RunSpec, run_dir: str | os.PathLike, inputs: list[str] | None = None) -> dict[str, dict]:
    """Every stage of ``run``, in order, in this process: the replay job of a backend without
    live state (``LIVE_BACKENDS``), whose stages hold nothing between them, so one interpreter
    does them all.  Each stage writes its record as its own job would (the replay's record
    names the job's inputs); returns the records by stage."""
    if LIVE_BACKENDS[run.backend]:
        raise ValueError(f"the {run.backend} backend holds live state between its stages: "
                         "each stage is a job of its own (run_stage), not one chain")
    return {s: run_stage(s, run, run_dir, inputs=inputs if s == "replay" else None) for s in STAGES}


def _record(stage, run, state, inputs, t0, *, rebuilt: bool, redone: list[str] | None = None) -> dict:
    return {
        "stage": stage,
        "backend": run.backend,
        "experiment": run.experiment_name,
        "quota": run.quota,
        "policy": run.policy.name,
        "seed": run.seed,
        "started": t0,
        "seconds": round(time.time() - t0, 3),
        "rebuilt": rebuilt,
        "redone_before": redone or [],
        "inputs": _inputs_digest(inputs),
        "state": state,
        "provenance": provenance(config_hash=run.config_hash),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m faro.workflow.stage_runner STAGE --run-spec RUN_SPEC.json --run-dir RUN``: one
    stage of one run by hand, exactly as its Snakemake rule runs it (record, teardown on failure,
    SIGTERM handled like Ctrl-C)."""
    import argparse

    from faro.runspec import RunSpec

    ap = argparse.ArgumentParser(prog="python -m faro.workflow.stage_runner")
    ap.add_argument("stage", choices=STAGES)
    ap.add_argument("--run-spec", required=True, help="the run's spec as JSON (RunSpec.write_json)")
    ap.add_argument("--run-dir", required=True)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with sigterm_as_interrupt():
        rec = run_stage(a.stage, RunSpec.read_json(a.run_spec), a.run_dir)
    print(json.dumps({"stage": a.stage, "seconds": rec["seconds"],
                      "record": str(record_path(Path(a.run_dir), a.stage))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
