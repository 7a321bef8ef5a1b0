"""A run's per-minute frames, derived from its requests once (in its results job) and read by
the figures: ``binned.parquet`` (per job and trace minute: requests, failures, SLO fraction,
utility and effective utility, from :class:`faro.model.stats.BinnedMetrics`) and
``job_latency.parquet`` (per job: failed fraction and latency percentiles)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from faro.atomic import atomic_path
from faro.model.stats import BinnedMetrics

BINNED_COLUMNS = ["job", "minute", "requests", "failed", "slo_frac", "util", "effective_util"]


def binned_frame(binned: BinnedMetrics) -> pd.DataFrame:
    """A :class:`faro.model.stats.BinnedMetrics` as a long frame (one row per job and slot)."""
    n_jobs, n_slots = binned.requests.shape
    job = np.repeat(np.array(binned.jobs, dtype=object), n_slots)
    minute = np.tile(np.arange(n_slots), n_jobs)
    return pd.DataFrame({
        "job": job,
        "minute": minute,
        "requests": binned.requests.ravel(),
        "failed": binned.failed.ravel(),
        "slo_frac": binned.slo_frac.ravel(),
        "util": binned.util.ravel(),
        "effective_util": binned.effective_util.ravel(),
    })


def job_latency(requests: pd.DataFrame, jobs: Sequence[str]) -> pd.DataFrame:
    """Per job: requests, failed fraction and the 50th/90th/99th percentile latency (ms) of its
    successful requests (NaN when it has none)."""
    rows = []
    for j in jobs:
        d = requests[requests["job"] == j]
        ok = d["latency_ms"][d["succeeded"].astype(bool)].to_numpy(dtype=float)
        ok = ok[np.isfinite(ok)]
        q = np.percentile(ok, [50, 90, 99]) if ok.size else np.full(3, np.nan)
        n = len(d)
        rows.append({"job": str(j), "requests": n, "failed_fraction": (n - ok.size) / n if n else np.nan,
                     "p50": q[0], "p90": q[1], "p99": q[2]})
    return pd.DataFrame(rows)


def write_binned(df: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        df[BINNED_COLUMNS].to_parquet(tmp, index=False)


def write_job_latency(df: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
