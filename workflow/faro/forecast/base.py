"""The forecaster interface and the two reference forecasters (persistence and oracle).

A forecaster maps a job's observed per-minute counts (oldest first, the last entry is the
minute that just ended) to quantiles of the next ``horizon`` minutes' counts.  Faro's
predictive step (docs/model.md section 4) asks for 7 steps at its planning quantile (0.6 in the
paper's simulator runs, 0.5 in this project's configs; higher ones during slack escalation);
MArk asks for the median.  Outputs are per-minute counts, shape
``(len(quantiles), horizon)``, non-negative and non-decreasing in q.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: default per-job input windows (minutes): docs/model.md section 4, 10 for jobs 2 and 8
DEFAULT_INPUT_LEN = 15
DEFAULT_INPUT_LEN_BY_JOB: dict[int, int] = {2: 10, 8: 10}


def check_quantiles(quantiles: Sequence[float]) -> np.ndarray:
    q = np.asarray(quantiles, dtype=float).reshape(-1)
    if q.size == 0 or np.any(~np.isfinite(q)) or np.any(q <= 0) or np.any(q >= 1):
        raise ValueError(f"quantiles must be in (0, 1), got {list(quantiles)}")
    return q


def check_history(history: np.ndarray) -> np.ndarray:
    h = np.asarray(history, dtype=float).reshape(-1)
    if h.size == 0:
        raise ValueError("history is empty: at least one observed minute is needed")
    if np.any(~np.isfinite(h)):
        raise ValueError("history contains NaN or inf")
    return h


def monotone_nonneg(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Clip at 0 and make rows non-decreasing in q (rows follow ``quantiles``' own order)."""
    v = np.maximum(np.asarray(values, dtype=float), 0.0)
    order = np.argsort(quantiles, kind="stable")
    out = np.empty_like(v)
    out[order] = np.maximum.accumulate(v[order], axis=0)
    return out


def training_episodes(train: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Normalise one job's training data: a 1-D series or a 2-D (episodes, minutes) array."""
    out = []
    for a in train:
        a = np.asarray(a, dtype=float)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2:
            raise ValueError(f"training data must be 1-D or 2-D, got shape {a.shape}")
        out.append(a)
    return out


class Forecaster:
    """Base class.  ``fit(train)`` takes one entry per job (``train[j]``: a 1-D series or a
    2-D array of separate episodes, e.g. days x samples); ``predict(history, job=j)`` forecasts
    job ``j`` (``job=None``: a forecaster without per-job state, or its pooled model).
    """

    name: str = "base"

    def fit(self, train: list[np.ndarray]) -> Forecaster:
        return self

    def predict(self, history: np.ndarray, horizon: int = 7,
                quantiles: Sequence[float] = (0.5,), *, job: int | None = None) -> np.ndarray:
        raise NotImplementedError

    def point(self, history: np.ndarray, horizon: int = 7, *,
              job: int | None = None) -> np.ndarray:
        """Median forecast, shape (horizon,)."""
        return self.predict(history, horizon, (0.5,), job=job)[0]

    def predict_batch(self, histories: Sequence[np.ndarray], horizon: int = 7,
                      quantiles: Sequence[float] = (0.5,),
                      jobs: Sequence[int | None] | None = None) -> np.ndarray:
        """All jobs at once: shape (n_jobs, len(quantiles), horizon); ``jobs`` default 0..n-1."""
        jobs = list(range(len(histories))) if jobs is None else list(jobs)
        return np.stack([self.predict(h, horizon, quantiles, job=j)
                         for h, j in zip(histories, jobs)])


class LastValue(Forecaster):
    """Persistence: every step and every quantile equal the last observed minute."""

    name = "last_value"

    def predict(self, history, horizon=7, quantiles=(0.5,), *, job=None):
        q = check_quantiles(quantiles)
        h = check_history(history)
        return np.full((q.size, int(horizon)), max(h[-1], 0.0))


class Oracle(Forecaster):
    """Knows the future: ``truth[j]`` is job j's full count series from minute 0.

    The forecast of the minutes after ``history`` starts at minute index ``start``, by
    default ``len(history)`` (so pass the whole history since minute 0, or give ``start``).
    Past the end of the truth it repeats the last true value.  All quantiles equal the truth.
    For experiments and upper bounds only.
    """

    name = "oracle"

    def __init__(self, truth: np.ndarray | Sequence[np.ndarray]) -> None:
        t = [np.asarray(x, dtype=float).reshape(-1) for x in
             (truth if np.ndim(truth) != 1 else [truth])]
        self.truth = t

    def predict(self, history, horizon=7, quantiles=(0.5,), *, job=None, start=None):
        q = check_quantiles(quantiles)
        if job is None:
            if len(self.truth) != 1:
                raise ValueError("Oracle with several jobs needs job=")
            job = 0
        tr = self.truth[job]
        s = len(np.asarray(history).reshape(-1)) if start is None else int(start)
        idx = np.minimum(np.arange(s, s + int(horizon)), len(tr) - 1)
        return np.tile(np.maximum(tr[idx], 0.0), (q.size, 1))
