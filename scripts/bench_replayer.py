"""Replayer capacity: the highest request rate with send-time error <= 5 ms at p99.

Starts a trivial aiohttp endpoint on 127.0.0.1 (its own process, stopped by pid
at the end), replays a one-job constant-rate trace at increasing rates (a few
seconds each), repeats every rate ``--repeats`` times and prints the medians.

    PYTHONPATH=workflow python scripts/bench_replayer.py [--rates 100,200,400,800] [--seconds 4]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
from faro.model.trace import Trace  # noqa: E402
from faro.serving.replayer import run_replay  # noqa: E402

SERVER = """
import sys
from aiohttp import web
async def ok(request):
    return web.Response(text="ok")
app = web.Application()
app.router.add_get("/{job}", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="100,200,400,600,800,1200")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--p99-ms", type=float, default=5.0)
    a = ap.parse_args()
    port = free_port()
    srv = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        best = 0
        with tempfile.TemporaryDirectory() as tmp:
            for rate in [int(r) for r in a.rates.split(",")]:
                p50s, p99s = [], []
                for rep in range(a.repeats):
                    trace = Trace(("bench",), np.array([[int(rate * a.seconds)]]))
                    res = run_replay(f"http://127.0.0.1:{port}", trace, unit_time=a.seconds, seed=rep,
                                     records=os.path.join(tmp, "r.csv"), progress=False)
                    p50s.append(res.late_p50_ms)
                    p99s.append(res.late_p99_ms)
                p99 = float(np.median(p99s))
                ok = p99 <= a.p99_ms
                print(f"rate {rate:5d} req/s: send lateness median over {a.repeats} runs: "
                      f"p50 {np.median(p50s):.2f} ms, p99 {p99:.2f} ms {'OK' if ok else 'TOO LATE'}",
                      flush=True)
                if ok:
                    best = max(best, rate)
        print(f"replayer capacity: {best} req/s with p99 send-time error <= {a.p99_ms} ms")
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(5)
        except subprocess.TimeoutExpired:
            srv.kill()


if __name__ == "__main__":
    main()
