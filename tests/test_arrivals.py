"""One arrival generator (faro.model.arrivals) for the simulator and the live replayer.

The replayer's planned send times of a job are the simulator's arrival times of that
job under the same seed (docs/model.md section 2, "Replay"), taken here from
:func:`faro.backends.sim.engine.simulate` itself, so the test fails if either side
draws differently.  The live test also checks the replayer's clock: no request is
recorded as sent before its planned time (hence none before the replay's start).
"""

from __future__ import annotations

import asyncio
import csv
import json
import socket
import threading

import numpy as np
import pytest

from faro.backends.sim.engine import simulate
from faro.model.arrivals import arrival_stream, job_arrivals, merge_arrivals, poisson_arrivals
from faro.model.experiment import experiment_from_dict
from faro.model.trace import Trace, parse_trace, write_trace
from faro.policies.reactive import AIAD
from faro.serving import replayer

# jobs listed out of natural order: a job's index in the experiment keys its stream
JOBS = ["job-b", "job-a", "job-c"]
RAW = {
    "name": "arrivals",
    "trace": {"file": "t.json"},
    "jobs": {"names": JOBS, "model": "m"},
    "models": {"m": {"processing_ms": 180, "slo_ms": 720,
                     "service_time": {"shape": 0.42, "loc": 0.079, "scale": 0.068}}},
    "router": {"shape": 0.48, "loc": 0.0035, "scale": 0.001},
    "cluster": {},
    "controller": {"upscale_order": "job"},
}
# 4 trace minutes x 3 jobs (an empty minute, a busy one: minutes may overlap)
COUNTS = np.array([[12, 3, 0], [7, 20, 5], [0, 4, 9], [15, 1, 2]])
UNIT_TIME = 0.4
SEED = 11


def _sim_arrivals(unit_time: float, seed: int) -> dict[str, np.ndarray]:
    exp = experiment_from_dict(RAW)
    res = simulate(exp, Trace(tuple(JOBS), COUNTS), AIAD({}, jobs=JOBS, quota=6), 6, seed,
                   unit_time=unit_time)
    return {j: np.sort(res.arrival[res.job == i]) for i, j in enumerate(JOBS)}


def test_simulator_draws_through_the_shared_generator():
    sim = _sim_arrivals(60.0, SEED)
    for i, j in enumerate(JOBS):
        own = poisson_arrivals(COUNTS[:, i], 60.0, arrival_stream(SEED, i))
        assert np.array_equal(sim[j], own)


@pytest.mark.parametrize("seed", [0, SEED])
def test_replayer_schedule_is_the_simulators_arrivals(seed):
    sim = _sim_arrivals(60.0, seed)
    t, who, names = replayer.schedule(Trace(tuple(JOBS), COUNTS), 60.0, seed)
    assert names == JOBS and (np.diff(t) >= 0).all() and len(t) == COUNTS.sum()
    for k, j in enumerate(names):
        assert np.array_equal(t[who == k], sim[j]), j
    # a subset keeps each job's own stream
    t2, who2, names2 = replayer.schedule(Trace(tuple(JOBS), COUNTS), 60.0, seed, jobs=["job-c", "job-b"])
    assert names2 == ["job-b", "job-c"]
    for k, j in enumerate(names2):
        assert np.array_equal(t2[who2 == k], sim[j]), j


def test_merge_is_stable_and_complete():
    per_job = job_arrivals(COUNTS, 60.0, SEED)
    t, who = merge_arrivals(per_job)
    assert (np.diff(t) >= 0).all()
    for k, a in enumerate(per_job):
        assert np.array_equal(t[who == k], a)
    # ties (every job's first request at 0.0) keep job order
    assert who[:2].tolist() == [0, 1]


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def endpoint():
    """A trivial HTTP server (200 on any path) in a thread; yields its base URL."""
    from aiohttp import web

    port = _free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def ok(_request):
        return web.Response(text="ok")

    async def serve():
        app = web.Application()
        app.router.add_get("/{tail:.*}", ok)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        return runner

    def run():
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(serve())
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    th.join(10)


@pytest.mark.parametrize("keep", [None, ["job-c", "job-b"]], ids=["all", "subset"])
def test_replayer_command_sends_the_simulators_arrivals(tmp_path, endpoint, keep):
    """``python -m faro.serving.replayer`` on a prepared trace: the planned send times per
    job are the simulator's arrivals; no send is recorded before its planned time or t0."""
    path = tmp_path / "trace.json"
    write_trace(Trace(tuple(JOBS), COUNTS), path)  # the experiment's order, as prepare_trace writes it
    assert parse_trace(path, file_order=True).jobs == tuple(JOBS)
    out = tmp_path / "out"
    argv = ["--trace", str(path), "--base-url", endpoint, "--unit-time", str(UNIT_TIME),
            "--seed", str(SEED), "--out", str(out), "--timeout-s", "10"]
    if keep:
        argv += ["--jobs", ",".join(keep)]
    assert replayer.main(argv) == 0
    start = json.loads((out / "replay_start.json").read_text())
    assert start["unit_time"] == UNIT_TIME
    with (out / "requests.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    sim = _sim_arrivals(UNIT_TIME, SEED)
    want = keep or JOBS
    assert sorted({r["job"] for r in rows}) == sorted(want)
    for j in want:
        sched = np.sort([float(r["sched_s"]) for r in rows if r["job"] == j])
        np.testing.assert_allclose(sched, sim[j], rtol=0, atol=1e-6)  # CSV keeps 6 decimals
    assert all(r["status"] == "200" for r in rows)
    sent = np.array([float(r["sent_s"]) for r in rows])
    planned = np.array([float(r["sched_s"]) for r in rows])
    end = np.array([float(r["end_s"]) for r in rows])
    # one clock, t0 fixed before any send, a send waits for its time on that clock
    assert (sent >= planned).all() and sent.min() >= 0.0 and (end >= sent).all()
