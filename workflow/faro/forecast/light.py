"""The default light probabilistic forecaster: a direct multi-step log-linear AR model.

Why this model.  The predictor only sees the last 15 minutes (10 for jobs 2 and 8) of one job
and must forecast the next 7.  On days 1-10 -> day 11 (docs/model.md section 2) we compared, per
job: persistence, the 5-minute mean, a least-squares AR on the last 1 / 5 / all lags of
log counts, a Huber-weighted AR on all lags, each per job or pooled over jobs.  Per-job models
on all lags won clearly (sMAPE of the median ~13.3 % vs ~15.0 % for persistence-like models
and ~15.3 % pooled): several series have a 15-minute period (job 3 spikes every 15 minutes,
job 7 dips), which a full 15-lag window captures; a Huber fit keeps those spikes and the odd
outage from bending the median.

Model, per job j with window length L and horizon h = 1..H:
    log1p(y[t+h]) - log1p(y[t]) = b_h0 + sum_k b_hk (log1p(y[t-k]) - log1p(y[t])) + e_h
fitted by ridge-regularised Huber IRLS on every window of days 1-10 (all augmented samples;
windows never cross an episode boundary).  Uncertainty is honest and empirical: the quantile
q of step h is the model's mean plus the q-quantile of its training residuals e_h (a table on a
fine grid, interpolated), then mapped back with expm1, clipped at 0 and made monotone in q.
Option ``heteroscedastic``: the residuals are first divided by the input window's own
volatility (:func:`window_scale`), so a calm window gets a narrower band than a jumpy one; it
scored no better in the forecaster selection (README), so the default keeps one spread per job.
A pooled model over all jobs serves ``job=None`` and jobs that were not fitted.

Histories shorter than L are left-padded with their first value (persistence at t = 60 s).
All arithmetic of the fit and the forecast goes through :mod:`faro.numerics` (no BLAS, no
CPU-dispatched ``log1p``/``expm1``), so a trained model and its forecasts are the same bits on
every machine.  Prediction is a (L x H) matrix product: one call for 10 jobs takes well under a millisecond;
means are cached per (job, window) and residual offsets per (job, quantiles, horizon), so the
slack escalation's repeated calls at rising quantiles are cheaper still.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from faro.forecast.base import (
    DEFAULT_INPUT_LEN,
    DEFAULT_INPUT_LEN_BY_JOB,
    Forecaster,
    check_history,
    check_quantiles,
    monotone_nonneg,
    training_episodes,
)
from faro.numerics import dexpm1, dgram, dlog1p, dmatmul, drowmean, dsolve

_GRID = np.linspace(0.001, 0.999, 999)
_CACHE_MAX = 512


def lag_features(windows: np.ndarray, n_lags: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(m, L) count windows -> features (m, k + 1) [k relative log lags, intercept], last log.

    ``n_lags`` = k keeps the k most recent lags before the last minute (default all, L - 1);
    k = 0 is a probabilistic persistence (drift and residual quantiles only).
    """
    lw = dlog1p(np.maximum(windows, 0.0))
    last = lw[:, -1:]
    k = lw.shape[1] - 1 if n_lags is None else max(0, min(int(n_lags), lw.shape[1] - 1))
    lags = lw[:, lw.shape[1] - 1 - k:-1] - last
    feats = np.concatenate([lags, np.ones((lw.shape[0], 1))], axis=1)
    return feats, last


def make_windows(episodes: Sequence[np.ndarray], input_len: int,
                 horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """All (input, target) pairs inside each episode: (m, input_len), (m, horizon)."""
    xs, ys = [], []
    for ep in episodes:
        for row in np.atleast_2d(ep):
            if len(row) < input_len + horizon:
                continue
            w = sliding_window_view(row, input_len + horizon)
            xs.append(w[:, :input_len])
            ys.append(w[:, input_len:])
    if not xs:
        raise ValueError(f"no training window: episodes need >= {input_len + horizon} minutes")
    return np.concatenate(xs), np.concatenate(ys)


def huber_ridge_fit(F: np.ndarray, Y: np.ndarray, ridge: float = 1e-3, c: float = 1.345,
                    n_iter: int = 30, tol: float = 1e-8) -> np.ndarray:
    """Multi-output linear fit (p, H) by IRLS with Huber weights on each row's mean |residual|.

    The ridge penalty (``ridge`` x rows) spares the last column (the intercept).
    """
    n, p = F.shape
    R = ridge * n * np.eye(p)
    R[-1, -1] = 0.0
    w = np.ones(n)
    beta = np.zeros((p, Y.shape[1]))
    for _ in range(max(1, n_iter)):
        new = dsolve(dgram(F, w, F) + R, dgram(F, w, Y))
        done = np.max(np.abs(new - beta)) < tol
        beta = new
        if done:
            break
        r = drowmean(np.abs(Y - dmatmul(F, beta)))
        scale = np.median(r) / 0.6745
        if scale <= 0:
            break
        k = c * scale
        w = np.where(r <= k, 1.0, k / np.maximum(r, 1e-300))
    return beta


def window_scale(windows: np.ndarray, floor: float) -> np.ndarray:
    """(m, L) count windows -> (m,) robust volatility of their log1p first differences.

    The normalised median absolute difference (MAD / 0.6745), combined with ``floor`` in
    quadrature so that a perfectly flat window still gets a non-zero spread.
    """
    d = np.diff(dlog1p(np.maximum(windows, 0.0)), axis=1)
    if d.shape[1] == 0:
        return np.full(windows.shape[0], max(floor, 1e-6))
    s = np.median(np.abs(d), axis=1) / 0.6745
    return np.sqrt(s * s + floor * floor)


@dataclass(frozen=True)
class _JobModel:
    input_len: int
    beta: np.ndarray  # (input_len, H)
    resid_q: np.ndarray  # (len(_GRID), H): residual quantiles (standardised if scale_floor)
    scale_floor: float | None = None  # set: residuals are divided by the window's volatility


class LogARForecaster(Forecaster):
    """Per-job direct log-linear AR with empirical residual quantiles (see module doc)."""

    name = "light"
    #: class defaults keep models pickled before these options existed loadable
    n_lags: int | None = None
    pooled: bool = False
    heteroscedastic: bool = False

    def __init__(self, input_len: int = DEFAULT_INPUT_LEN,
                 input_len_by_job: Mapping[int, int] | None = None,
                 max_horizon: int = 7, ridge: float = 1e-3, huber_c: float = 1.345,
                 n_iter: int = 30, n_lags: int | None = None, pooled: bool = False,
                 heteroscedastic: bool = False) -> None:
        self.input_len = int(input_len)
        self.input_len_by_job = dict(DEFAULT_INPUT_LEN_BY_JOB if input_len_by_job is None
                                     else input_len_by_job)
        self.max_horizon = int(max_horizon)
        self.ridge = float(ridge)
        self.huber_c = float(huber_c)
        self.n_iter = int(n_iter)
        #: lags used (None: the whole window); pooled: one model over all jobs serves every job
        self.n_lags = None if n_lags is None else int(n_lags)
        self.pooled = bool(pooled)
        #: residual spread proportional to the input window's own volatility (see window_scale)
        self.heteroscedastic = bool(heteroscedastic)
        self.models: dict[int | None, _JobModel] = {}
        self._mu_cache: dict[tuple, tuple[np.ndarray, float]] = {}
        self._off_cache: dict[tuple, np.ndarray] = {}

    def window_len(self, job: int | None) -> int:
        return self.input_len if job is None else self.input_len_by_job.get(job, self.input_len)

    def _fit_one(self, episodes: Sequence[np.ndarray], input_len: int) -> _JobModel:
        X, Y = make_windows(episodes, input_len, self.max_horizon)
        F, last = lag_features(X, self.n_lags)
        T = dlog1p(np.maximum(Y, 0.0)) - last
        beta = huber_ridge_fit(F, T, self.ridge, self.huber_c, self.n_iter)
        resid = T - dmatmul(F, beta)
        if not self.heteroscedastic:
            return _JobModel(input_len, beta, np.quantile(resid, _GRID, axis=0))
        # the floor: a low (10th) percentile of the training windows' volatility, so that a
        # flat window still gets the spread of the calmest typical ones
        floor = float(np.percentile(window_scale(X, 0.0), 10))
        z = resid / window_scale(X, floor)[:, None]
        return _JobModel(input_len, beta, np.quantile(z, _GRID, axis=0), floor)

    def fit(self, train: list[np.ndarray]) -> LogARForecaster:
        eps = training_episodes(train)
        self.models = {} if self.pooled else {j: self._fit_one([e], self.window_len(j))
                                              for j, e in enumerate(eps)}
        self.models[None] = self._fit_one(eps, self.input_len)
        self._mu_cache.clear()
        self._off_cache.clear()
        return self

    def _model(self, job: int | None) -> tuple[int | None, _JobModel]:
        if not self.models:
            raise RuntimeError("LogARForecaster is not fitted: call fit(train) first")
        key = job if job in self.models else None
        return key, self.models[key]

    def _offsets(self, key, m: _JobModel, q: np.ndarray, horizon: int) -> np.ndarray:
        ck = (key, tuple(q.tolist()), horizon)
        off = self._off_cache.get(ck)
        if off is None:
            off = np.stack([np.interp(q, _GRID, m.resid_q[:, h]) for h in range(horizon)],
                           axis=1)
            if len(self._off_cache) > _CACHE_MAX:
                self._off_cache.clear()
            self._off_cache[ck] = off
        return off

    def _mean(self, key, m: _JobModel, h: np.ndarray) -> tuple[np.ndarray, float]:
        """The model's mean (log space) for the window ending ``h``, and the residual scale
        of that window (1 unless the model is heteroscedastic); cached per (job, window)."""
        L = m.input_len
        w = h[-L:]
        if w.size < L:
            w = np.concatenate([np.full(L - w.size, w[0]), w])
        ck = (key, w.tobytes())
        hit = self._mu_cache.get(ck)
        if hit is None:
            f, last = lag_features(w[None, :], self.n_lags)
            scale = 1.0 if m.scale_floor is None else float(window_scale(w[None, :], m.scale_floor)[0])
            hit = ((dmatmul(f, m.beta) + last)[0], scale)
            if len(self._mu_cache) > _CACHE_MAX:
                self._mu_cache.clear()
            self._mu_cache[ck] = hit
        return hit

    def predict(self, history, horizon=7, quantiles=(0.5,), *, job=None):
        q = check_quantiles(quantiles)
        h = check_history(history)
        horizon = int(horizon)
        if not 1 <= horizon <= self.max_horizon:
            raise ValueError(f"horizon must be in 1..{self.max_horizon}, got {horizon}")
        key, m = self._model(job)
        mu, scale = self._mean(key, m, h)
        vals = dexpm1(mu[None, :horizon] + scale * self._offsets(key, m, q, horizon))
        return monotone_nonneg(vals, q)
