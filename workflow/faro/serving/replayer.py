"""Open-loop asyncio HTTP trace replayer (aiohttp).

Arrivals (docs/model.md section 2, "Replay"): trace minute ``k`` starts at
``k * unit_time`` seconds; within it a job's ``count`` requests go out with
exponential gaps of mean ``unit_time / count`` (a Poisson process), the first
at once; minutes may overlap.  The send times are the simulator's arrival times
(:func:`faro.model.arrivals.job_arrivals`, each job's stream keyed by the seed and
the job's index in the trace), so a seed gives the same request times in the
simulator and on ``ray``/``k8s``.

Every request is recorded (job, scheduled and actual send time, end time,
latency, HTTP status), failures included, in a CSV file flushed in batches
(every ``flush_every`` records or 0.5 s) and in a ``finally``, so partial
records survive errors and Ctrl-C.  Times are seconds since replay start
(``t0``, an epoch in ``replay_start.json``), all read from one clock
(``time.monotonic``, anchored to ``t0`` once, before any send); a request is sent
only once that clock has reached its scheduled time, so no recorded time is
before the replay's start.  ``status`` is the HTTP code, or
**0 when no HTTP response came back** (connection refused/reset, timeout); the
``error`` column then says why.

The replayer warns when it falls behind schedule (lateness above
``late_warn_ms``), prints a progress line per trace minute (minute, requests
sent, errors so far) on stderr and in the log, and aborts with
:class:`ReplayAborted` after ``max_conn_errors`` consecutive connection errors
(a dead endpoint), keeping the records made so far.

Command line (the ``k8s`` backend's replayer pod; one Ray cluster per job there,
so ``--job-urls`` gives each job its own route URL)::

    python -m faro.serving.replayer --trace T (--base-url URL | --job-urls FILE) \
        --unit-time U --seed S --out DIR

writes ``DIR/requests.csv``, ``DIR/replay_start.json`` (``t0``, ``unit_time``),
``DIR/replay_end.json`` and ``DIR/replay.json`` (the summary), like the ``ray``
backend's replay stage.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faro.model.arrivals import job_arrivals, merge_arrivals
from faro.model.trace import Trace, parse_trace

log = logging.getLogger("faro.replayer")

SENT_HEADER = "x-faro-sent"
COLUMNS = ["job", "sched_s", "sent_s", "end_s", "latency_ms", "status", "error"]


class ReplayAborted(RuntimeError):
    """The replay stopped early (dead endpoint, watchdog); partial records are on disk."""


def schedule(
    trace: Trace, unit_time: float, seed: int, jobs: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Send times (s since start, sorted), job indices and job names of the requests of
    ``jobs`` (default: every job of ``trace``).

    Each job's times are its simulator arrival times under ``seed``
    (:func:`faro.model.arrivals.job_arrivals`, keyed by the job's index in ``trace.jobs``,
    whichever jobs are replayed), merged in time order; ``who[i]`` indexes the returned
    names (``trace``'s order).
    """
    if jobs is None:
        names = list(trace.jobs)
    else:
        unknown = sorted(set(jobs) - set(trace.jobs))
        if unknown:
            raise ValueError(f"job(s) {', '.join(unknown)} not in the trace (it has {', '.join(trace.jobs)})")
        names = [j for j in trace.jobs if j in set(jobs)]
    idx = [trace.jobs.index(j) for j in names]
    times, who = merge_arrivals(job_arrivals(trace.counts, unit_time, seed, idx))
    return times, who, names


@dataclass
class ReplayResult:
    sent: int
    errors: int
    aborted: str | None
    late_p50_ms: float
    late_p99_ms: float
    late_max_ms: float
    duration_s: float
    records: str


class _Recorder:
    def __init__(self, path: Path, flush_every: int) -> None:
        self.fh = open(path, "w", newline="")
        self.w = csv.writer(self.fh)
        self.w.writerow(COLUMNS)
        self.buf: list[list] = []
        self.flush_every = flush_every
        self.n = 0

    def add(self, row: list) -> None:
        self.buf.append(row)
        self.n += 1
        if len(self.buf) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.w.writerows(self.buf)
            self.buf.clear()
        self.fh.flush()

    def close(self) -> None:
        self.flush()
        self.fh.close()


async def replay(
    base_url: str,
    trace: Trace,
    *,
    jobs: Sequence[str] | None = None,
    unit_time: float,
    seed: int,
    records: str | os.PathLike,
    t0: float | None = None,
    route: Callable[[str], str] = lambda job: f"/{job}",
    timeout_s: float = 60.0,
    late_warn_ms: float = 50.0,
    max_conn_errors: int = 200,
    flush_every: int = 500,
    watchdog: Callable[[], str | None] | None = None,
    watchdog_every_s: float = 2.0,
    on_start: Callable[[float], None] | None = None,
    progress: bool = True,
    max_connections: int = 0,
) -> ReplayResult:
    """Replay ``trace`` (its ``jobs``, default all) against ``base_url``; returns a summary,
    records every request to ``records``.

    ``watchdog()`` is called every ``watchdog_every_s``; a non-None return aborts
    the replay with that message (e.g. the autoscaler or the Ray head is gone).
    ``on_start(t0)`` is called once the start epoch is fixed, before any send.
    """
    import aiohttp

    times, who, jobs = schedule(trace, unit_time, seed, jobs)
    urls = [base_url.rstrip("/") + route(j) for j in jobs]
    rec = _Recorder(Path(records), flush_every)
    n_min = trace.n_minutes
    state = {"sent": 0, "errors": 0, "consec": 0, "abort": None}
    late: list[float] = []
    inflight: set[asyncio.Task] = set()
    loop = asyncio.get_running_loop()
    if t0 is None:
        t0 = time.time() + 0.2
    # One clock for the schedule and every recorded time: time.monotonic (ns resolution),
    # anchored to the epoch t0 here, once, before any send.  Not loop.time(): uvloop's is
    # libuv's millisecond-truncated loop clock and its timers round to the millisecond, so a
    # request could go out (and be recorded) up to ~1 ms before its time, before t0 at time 0.
    m0 = time.monotonic() + (t0 - time.time())

    def now() -> float:
        """Seconds since t0 on the one clock."""
        return time.monotonic() - m0

    if on_start is not None:
        on_start(t0)
    conn = aiohttp.TCPConnector(limit=max_connections, force_close=False, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    session = aiohttp.ClientSession(connector=conn, timeout=timeout)

    async def one(i: int, sched: float) -> None:
        job = jobs[who[i]]
        sent = now()  # >= sched >= 0: the send loop waited for it on this clock
        late.append(sent - sched)
        status, err = 0, ""
        try:
            async with session.get(urls[who[i]], headers={SENT_HEADER: repr(t0 + sent)}) as r:
                await r.read()
                status = r.status
        except TimeoutError:
            err = "timeout"
        except aiohttp.ClientError as e:
            err = type(e).__name__
        except asyncio.CancelledError:
            err = "cancelled"
            end = now()
            rec.add([job, f"{sched:.6f}", f"{sent:.6f}", f"{end:.6f}", "", 0, err])
            raise
        end = now()
        if status == 0:
            state["errors"] += 1
            state["consec"] += 1
            if state["consec"] >= max_conn_errors and state["abort"] is None:
                state["abort"] = (f"{state['consec']} consecutive connection errors ({err}) from {base_url}: "
                                  "is the endpoint alive?")
        else:
            state["consec"] = 0
            if status != 200:
                state["errors"] += 1
        lat = f"{(end - sent) * 1000.0:.3f}" if status == 200 else ""
        rec.add([job, f"{sched:.6f}", f"{sent:.6f}", f"{end:.6f}", lat, status, err])

    def say(msg: str, level=logging.INFO) -> None:
        log.log(level, msg)
        if progress:
            print(msg, file=sys.stderr, flush=True)

    async def periodic() -> None:
        minute = -1
        last_flush = last_watch = loop.time()
        warned_at = -1
        while True:
            await asyncio.sleep(0.1)
            now_rel = now()
            m = int(now_rel // unit_time)
            if m != minute and 0 <= m:
                minute = m
                lp = 1000 * float(np.percentile(late[-2000:], 99)) if late else 0.0
                say(f"[replay] trace minute {min(m, n_min)}/{n_min}: sent {state['sent']}, "
                    f"errors {state['errors']}, send lateness p99 {lp:.1f} ms")
                if lp > late_warn_ms and warned_at != m:
                    warned_at = m
                    say(f"[replay] WARNING: behind schedule (send lateness p99 {lp:.1f} ms > "
                        f"{late_warn_ms} ms)", logging.WARNING)
            if loop.time() - last_flush > 0.5:
                rec.flush()
                last_flush = loop.time()
            if watchdog is not None and loop.time() - last_watch > watchdog_every_s:
                last_watch = loop.time()
                msg = await asyncio.to_thread(watchdog)
                if msg and state["abort"] is None:
                    state["abort"] = msg

    ticker = asyncio.create_task(periodic())
    t_start = time.monotonic()
    try:
        for i in range(len(times)):
            if state["abort"]:
                break
            # wait until the one clock reaches the send time (a loop timer may fire early)
            while (delay := times[i] - now()) > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(i, float(times[i])))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
            state["sent"] += 1
        while inflight and not state["abort"]:
            await asyncio.wait(list(inflight), timeout=0.5)
    finally:
        ticker.cancel()
        for t in list(inflight):
            t.cancel()
        if inflight:
            await asyncio.gather(*inflight, return_exceptions=True)
        await session.close()
        rec.close()
    arr = np.asarray(late) * 1000.0 if late else np.zeros(1)
    res = ReplayResult(
        sent=state["sent"], errors=state["errors"], aborted=state["abort"],
        late_p50_ms=float(np.percentile(arr, 50)), late_p99_ms=float(np.percentile(arr, 99)),
        late_max_ms=float(arr.max()), duration_s=time.monotonic() - t_start, records=str(records),
    )
    say(f"[replay] done: sent {res.sent}, errors {res.errors}, lateness p50 {res.late_p50_ms:.2f} ms "
        f"p99 {res.late_p99_ms:.2f} ms" + (f"; ABORTED: {res.aborted}" if res.aborted else ""))
    if res.aborted:
        raise ReplayAborted(f"{res.aborted} (partial records kept in {records})")
    return res


def run_replay(*args, **kwargs) -> ReplayResult:
    """Synchronous wrapper (uses uvloop when installed)."""
    try:
        import uvloop

        return uvloop.run(replay(*args, **kwargs))
    except ImportError:  # pragma: no cover
        return asyncio.run(replay(*args, **kwargs))


def main(argv: Sequence[str] | None = None) -> int:
    """The replayer as a process (see the module docstring); exit 3 when the replay aborted."""
    ap = argparse.ArgumentParser(prog="python -m faro.serving.replayer",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--trace", required=True,
                    help="trace in the artifact's JSON Lines format; its jobs' order (first line) "
                         "indexes their random streams, as in the simulator")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--base-url", help="one Serve HTTP endpoint for every job (route /<job>)")
    where.add_argument("--job-urls",
                       help="JSON file {job: URL of its route}; only these jobs are replayed")
    ap.add_argument("--unit-time", type=float, required=True, help="seconds per trace minute")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True, help="folder for requests.csv and the replay_*.json signals")
    ap.add_argument("--jobs", help="comma-separated jobs to replay (default: every job of the trace)")
    ap.add_argument("--late-warn-ms", type=float, default=50.0)
    ap.add_argument("--max-conn-errors", type=int, default=200)
    ap.add_argument("--timeout-s", type=float, default=60.0, help="per-request timeout")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    keep: set[str] | None = set(a.jobs.split(",")) if a.jobs else None
    if a.job_urls:
        urls = {str(k): str(v) for k, v in json.loads(Path(a.job_urls).read_text()).items()}
        keep = set(urls) if keep is None else keep & set(urls)
        base, route = "", urls.__getitem__
    else:
        base, route = a.base_url, (lambda job: f"/{job}")
    trace = parse_trace(a.trace, file_order=True)
    jobs = None if keep is None else [j for j in trace.jobs if j in keep]
    if keep is not None and set(keep) - set(trace.jobs):
        ap.error(f"job(s) {', '.join(sorted(set(keep) - set(trace.jobs)))} not in the trace {a.trace}")

    def on_start(t0: float) -> None:
        (out / "replay_start.json").write_text(json.dumps({"t0": t0, "unit_time": a.unit_time}))

    try:
        res = run_replay(base, trace, jobs=jobs, unit_time=a.unit_time, seed=a.seed,
                         records=out / "requests.csv", route=route, timeout_s=a.timeout_s,
                         late_warn_ms=a.late_warn_ms, max_conn_errors=a.max_conn_errors, on_start=on_start)
    except ReplayAborted as e:
        print(f"[replay] aborted: {e}", file=sys.stderr, flush=True)
        return 3
    finally:
        (out / "replay_end.json").write_text(json.dumps({"epoch": time.time()}))
    (out / "replay.json").write_text(json.dumps(res.__dict__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
