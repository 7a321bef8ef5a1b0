"""Memory of a Ray head's processes under one job's peak load of the main trace (k8s head sizing).

    PYTHONPATH=workflow python scripts/bench_ray_head.py --mirror ../shared/data/faro-artifact

Starts a local single-node Ray cluster (own temp dir and ports), deploys the ``ray`` backend's
Serve application for the trace's busiest job (2 replicas), creates the metrics actor, replays
that job's peak per-minute rate for ``--minutes`` minutes with the replayer, and samples every
5 s the summed PSS (and RSS) of the cluster's processes except the Serve replicas: GCS, raylet,
dashboard and its agents, Serve controller, HTTP proxy, metrics actor, i.e. what a KubeRay head
with ``num-cpus: 0`` runs (the per-client Ray Client server is not included). Stops only the
processes it started. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil


def busiest(trace: Path) -> tuple[str, int]:
    peak: dict[str, int] = {}
    for line in trace.read_text().splitlines():
        if line.strip():
            for job, c in json.loads(line)["counts"].items():
                n = sum(c.values()) if isinstance(c, dict) else int(c)
                peak[job] = max(peak.get(job, 0), n)
    job = max(peak, key=peak.get)
    return job, peak[job]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, required=True, help="folder with the artifact's input.json")
    ap.add_argument("--minutes", type=int, default=3)
    ap.add_argument("--port", type=int, default=6391,
                    help="GCS port; dashboard, HTTP and metrics get their own")
    a = ap.parse_args(argv)

    from faro.serving import serve_api
    from faro.serving.serve_app import app_config, serve_config

    job, rate = busiest(a.mirror / "input.json")
    work = Path(tempfile.mkdtemp(prefix="faro-head-"))
    tmp = str(work / "ray")
    dash, http, metrics = a.port + 1880, a.port + 1620, a.port + 1700
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run(["ray", "start", "--head", "--num-cpus", "2", "--port", str(a.port),
                    "--dashboard-port", str(dash), "--metrics-export-port", str(metrics), "--temp-dir", tmp,
                    "--dashboard-host", "127.0.0.1", "--ray-client-server-port", str(a.port + 13620),
                    "--min-worker-port", str(a.port + 14609), "--max-worker-port", str(a.port + 15608),
                    "--dashboard-agent-listen-port", str(a.port + 46000), "--disable-usage-stats"],
                   check=True, env=env, capture_output=True)

    def ours() -> list[psutil.Process]:
        roots = [p for p in psutil.process_iter(["cmdline"])
                 if any(tmp in c for c in (p.info["cmdline"] or []))]
        seen: dict[int, psutil.Process] = {}
        for r in roots:
            try:
                for p in [r, *r.children(recursive=True)]:
                    seen[p.pid] = p
            except psutil.Error:
                pass
        return list(seen.values())

    peak = {"pss": 0, "rss": 0, "detail": {}}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            pss = rss = 0
            detail: dict[str, int] = {}
            for p in ours():
                try:
                    name = " ".join(p.cmdline())[:40]
                    if "ServeReplica" in name or p.pid == os.getpid():
                        continue
                    mi = p.memory_full_info()
                    pss, rss = pss + mi.pss, rss + mi.rss
                    detail[name] = detail.get(name, 0) + mi.pss
                except psutil.Error:
                    pass
            if pss > peak["pss"]:
                peak.update(pss=pss, rss=rss, detail=detail)
            stop.wait(5)

    try:
        import ray

        from faro.serving.metrics import NAMESPACE, get_or_create_metrics_actor

        url = f"http://127.0.0.1:{dash}"
        serve_api.put_config(url, serve_config([app_config(job, 2)], http))
        for _ in range(240):
            if len(serve_api.job_states(serve_api.get_details(url)).get(job, {}).get("running", [])) == 2:
                break
            time.sleep(1)
        ray.init(address=f"127.0.0.1:{a.port}", namespace=NAMESPACE, logging_level="ERROR")
        ray.get(get_or_create_metrics_actor(on_head=True).ping.remote(), timeout=60)
        th = threading.Thread(target=sample)
        th.start()
        trace = work / "trace.json"
        trace.write_text("".join(json.dumps({"ts": k, "counts": {job: {"classifier": rate}}}) + "\n"
                                 for k in range(a.minutes)))
        t0 = time.time()
        subprocess.run([sys.executable, "-m", "faro.serving.replayer", "--trace", str(trace),
                        "--base-url", f"http://127.0.0.1:{http}", "--unit-time", "60", "--seed", "1",
                        "--out", str(work / "out")],
                       check=True, capture_output=True)
        stop.set()
        th.join()
        csv = work / "out" / "requests.csv"
        n = sum(1 for _ in open(csv)) - 1
        print(json.dumps({"job": job, "rate_per_min": rate, "requests": n,
                          "seconds": round(time.time() - t0, 1),
                          "requests_csv_bytes_per_row": round(csv.stat().st_size / max(n, 1), 1),
                          "peak_pss_MiB": round(peak["pss"] / 2**20),
                          "peak_rss_MiB": round(peak["rss"] / 2**20),
                          "by_process_pss_MiB": {k: round(v / 2**20) for k, v in
                                                 sorted(peak["detail"].items(), key=lambda x: -x[1])}},
                         indent=1))
        ray.shutdown()
    finally:
        stop.set()
        for p in ours():
            try:
                p.terminate()
            except psutil.Error:
                pass
        time.sleep(3)
        for p in ours():
            try:
                p.kill()
            except psutil.Error:
                pass
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
