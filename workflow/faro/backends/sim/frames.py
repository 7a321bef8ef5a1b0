"""The simulator's logs -> the Parquet schema's columns (numpy and pandas only: the parse
stage reads a run's logs without importing the simulator)."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: the kernel's status code of a served request (faro.backends.sim.kernel.S_OK)
S_OK = 1


def requests_frame(jobs, seed, job, arrival, start, end, status) -> pd.DataFrame:
    """Simulator arrays -> the requests schema's columns (no copies of the big arrays)."""
    ok = status == S_OK
    return pd.DataFrame(
        {
            "job": pd.Categorical.from_codes(job, categories=list(jobs)),
            "seed": np.full(len(job), int(seed), np.int64),
            "arrival_s": arrival,
            "start_s": start,
            "end_s": end,
            "latency_ms": np.where(ok, (end - arrival) * 1000.0, np.nan),
            "succeeded": ok,
            "status": np.where(ok, 200, 503).astype(np.int16),
        },
        copy=False,
    )


def replicas_frame(jobs, replica_log: np.ndarray) -> pd.DataFrame:
    """Rows (time, job index, active replicas) -> the replicas schema's columns."""
    rep = np.asarray(replica_log, dtype=float).reshape(-1, 3)
    return pd.DataFrame(
        {
            "time_s": rep[:, 0],
            "job": pd.Categorical.from_codes(rep[:, 1].astype(int), categories=list(jobs)),
            "replicas": rep[:, 2].astype(np.int32),
        }
    )
