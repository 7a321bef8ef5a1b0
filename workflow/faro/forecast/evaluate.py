"""Score forecasters on the test day the way the predictive policies use them.

At every predictive step t = 60, 360, 660, ... s (first at 60 s, then every 300 s; docs/model.md
section 4) the forecaster sees the complete minutes before t and forecasts the next 7 minutes.
Steps whose 7 minutes run past the end of the day are scored on the minutes that exist.
Metrics of the median (MAPE, sMAPE, WAPE), the 0.1-0.9 interval's coverage (ideal 0.8) and the
0.6 quantile's exceedance rate (fraction of true counts above it; ideal 0.4), per job and
overall (all jobs, steps and horizons pooled).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from faro.forecast.base import Forecaster

EVAL_QUANTILES = (0.1, 0.5, 0.6, 0.9)


def predictive_times(n_minutes: int, unit_s: float = 60.0, first_s: float = 60.0,
                     interval_s: float = 300.0) -> list[float]:
    """Times (s) of the predictive steps that have at least one future minute to score."""
    out, t = [], first_s
    while t / unit_s < n_minutes:
        out.append(t)
        t += interval_s
    return out


def forecast_table(forecaster: Forecaster, truth: np.ndarray, *, horizon: int = 7,
                   quantiles: Sequence[float] = EVAL_QUANTILES,
                   times: Sequence[float] | None = None, unit_s: float = 60.0) -> pd.DataFrame:
    """One row per (job, t, step): the true count and each quantile ``q<q>`` forecast.

    ``truth``: (n_jobs, minutes) counts.  The history passed is every minute before t.
    """
    truth = np.asarray(truth, dtype=float)
    n_jobs, n_min = truth.shape
    times = predictive_times(n_min, unit_s) if times is None else list(times)
    rows = []
    qcols = [f"q{q:g}" for q in quantiles]
    for t in times:
        m = int(round(t / unit_s))
        hist = [truth[j, :m] for j in range(n_jobs)]
        pred = forecaster.predict_batch(hist, horizon, quantiles)  # (jobs, q, horizon)
        for j in range(n_jobs):
            for s in range(horizon):
                if m + s >= n_min:
                    break
                rows.append((j, t, s + 1, truth[j, m + s], *pred[j, :, s]))
    return pd.DataFrame(rows, columns=["job", "t", "step", "truth", *qcols])


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Per job plus an ``all`` row: n, mape, smape, wape (median, %), cov_10_90, exceed_06."""

    def stats(d: pd.DataFrame) -> dict[str, float]:
        y, p = d["truth"].to_numpy(), d["q0.5"].to_numpy()
        err = np.abs(p - y)
        out = {
            "n": int(len(d)),
            "mape": 100 * float(np.mean(err / np.maximum(y, 1.0))),
            "smape": 100 * float(np.mean(np.where(y + p > 0, 2 * err / np.maximum(y + p, 1e-12),
                                                  0.0))),
            "wape": 100 * float(err.sum() / max(y.sum(), 1e-12)),
        }
        if {"q0.1", "q0.9"} <= set(d.columns):
            out["cov_10_90"] = float(np.mean((y >= d["q0.1"]) & (y <= d["q0.9"])))
        if "q0.6" in d.columns:
            out["exceed_06"] = float(np.mean(y > d["q0.6"]))
        return out

    res = [{"job": str(j), **stats(d)} for j, d in table.groupby("job", sort=True)]
    res.append({"job": "all", **stats(table)})
    return pd.DataFrame(res)


def evaluate_forecasters(forecasters: dict[str, Forecaster], truth: np.ndarray,
                         **kw) -> pd.DataFrame:
    """:func:`summarize` of each forecaster, stacked with a ``forecaster`` column."""
    parts = []
    for name, f in forecasters.items():
        s = summarize(forecast_table(f, truth, **kw))
        s.insert(0, "forecaster", name)
        parts.append(s)
    return pd.concat(parts, ignore_index=True)
