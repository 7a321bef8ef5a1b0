"""A live run's raw logs (``ray`` and ``k8s``) -> the request and replica frames of :mod:`faro.model.schema`.

* requests: one row per replayed request from ``raw/requests.csv``;
  ``arrival_s`` = actual send time, ``end_s`` = response (or failure) time,
  ``latency_ms`` = end - send for HTTP 200 (null otherwise), ``succeeded`` =
  status 200, ``status`` = HTTP code or 0 when no response came (connection
  error, timeout); ``start_s`` (service start) is not observed client-side: null.
* replicas: every change of a job's RUNNING replica count as Serve reported
  it, from the ``replicas`` records of ``raw/autoscaler.jsonl`` (first row per
  job at time 0: the count when the replay started).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


def requests_frame(csv_path: str | Path, seed: int) -> pd.DataFrame:
    df = pd.read_csv(csv_path, dtype={"job": str, "error": str})
    status = df["status"].fillna(0).astype("int16")
    ok = status == 200
    return pd.DataFrame(
        {
            "job": df["job"].astype(str),
            "seed": np.int64(seed),
            "arrival_s": df["sent_s"].astype(float),
            "start_s": np.nan,
            "end_s": df["end_s"].astype(float),
            "latency_ms": df["latency_ms"].astype(float).where(ok),
            "succeeded": ok,
            "status": status,
        }
    ).sort_values(["arrival_s", "job"], kind="stable").reset_index(drop=True)


def replicas_frame(jsonl_path: str | Path, jobs: list[str]) -> pd.DataFrame:
    rows: list[tuple[float, str, int]] = []
    last: dict[str, int] = {}
    started = False
    pre: dict[str, int] = {}
    for line in Path(jsonl_path).read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        kind = rec.get("kind")
        if kind == "replay_start":
            started = True
            continue
        if kind != "replicas":
            continue
        if not started or rec.get("wall_s") is None:
            pre[rec["job"]] = int(rec["replicas"])
            continue
        t = 0.0 if rec.get("at_start") else max(0.0, float(rec["wall_s"]))
        n = int(rec["replicas"])
        if last.get(rec["job"]) != n:
            rows.append((t, rec["job"], n))
            last[rec["job"]] = n
    for job in jobs:  # a job whose count never changed still gets its starting row
        if job not in last and job in pre:
            rows.append((0.0, job, pre[job]))
    df = pd.DataFrame(rows, columns=["time_s", "job", "replicas"])
    df["replicas"] = df["replicas"].astype("int32")
    return df.sort_values(["time_s", "job"], kind="stable").reset_index(drop=True)
