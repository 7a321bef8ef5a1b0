"""Forecasters: shapes, ordered non-negative quantiles, exact baselines, the light model."""

from __future__ import annotations

import time

import numpy as np
import pytest

from faro.forecast.base import LastValue, Oracle, monotone_nonneg
from faro.forecast.light import LogARForecaster
from faro.forecast.registry import make_forecaster

QS = (0.9, 0.1, 0.5, 0.6)  # deliberately unsorted


def _periodic(n_days=6, T=120, period=5, seed=0):
    """Counts = 100 * pattern[t % period] with 2 % log-normal noise, several episodes."""
    rng = np.random.default_rng(seed)
    pattern = np.array([1.0, 1.5, 2.0, 1.5, 0.5])
    base = 100 * pattern[np.arange(T) % period]
    return base * np.exp(0.02 * rng.standard_normal((n_days, T))), base


def _check_quantiles(out, qs):
    order = np.argsort(qs)
    assert np.all(out >= 0)
    assert np.all(np.diff(out[order], axis=0) >= 0)


def test_monotone_nonneg_hand_computed():
    v = np.array([[5.0, -1.0], [3.0, 2.0], [4.0, 1.0]])
    q = np.array([0.9, 0.1, 0.5])
    # sorted order 0.1 (row1), 0.5 (row2), 0.9 (row0); clip then running max
    out = monotone_nonneg(v, q)
    np.testing.assert_array_equal(out, [[5.0, 2.0], [3.0, 2.0], [4.0, 2.0]])


def test_last_value_exact():
    out = LastValue().predict(np.array([3.0, 8.0, 5.0]), horizon=4, quantiles=QS)
    np.testing.assert_array_equal(out, np.full((4, 4), 5.0))
    np.testing.assert_array_equal(LastValue().point([1, 2], 2), [2.0, 2.0])


def test_oracle_exact():
    truth = np.array([[1, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60]], dtype=float)
    o = Oracle(truth)
    np.testing.assert_array_equal(o.predict([9, 9], 3, QS, job=1), np.tile([30, 40, 50], (4, 1)))
    # start given explicitly; past the end repeats the last true value
    np.testing.assert_array_equal(o.predict([0], 3, (0.5,), job=0, start=4), [[5, 6, 6]])
    with pytest.raises(ValueError):
        o.predict([1], 3)  # several jobs, no job given


def test_bad_inputs_rejected():
    with pytest.raises(ValueError):
        LastValue().predict([], 7)
    with pytest.raises(ValueError):
        LastValue().predict([1.0], 7, quantiles=(0.0, 0.5))
    with pytest.raises(ValueError):
        LastValue().predict([np.nan], 7)


@pytest.fixture(scope="module")
def fitted():
    train, _ = _periodic()
    # job 0 and 1 both periodic; job 1 uses a 10-minute window (like jobs 2 and 8)
    return LogARForecaster(input_len_by_job={1: 10}).fit([train, train])


def test_light_learns_known_pattern(fitted):
    _, base = _periodic()
    hist = base[:40]  # next minutes: 40 % 5 = 0 -> pattern 1.0, 1.5, 2.0, 1.5, 0.5, 1.0, 1.5
    want = np.array([100, 150, 200, 150, 50, 100, 150], dtype=float)
    for job in (0, 1, None):
        med = fitted.point(hist, 7, job=job)
        np.testing.assert_allclose(med, want, rtol=0.05)
        lo, hi = fitted.predict(hist, 7, (0.1, 0.9), job=job)
        assert np.all(lo <= want * 1.0001) and np.all(want <= hi * 1.0001)
        assert np.all(hi / lo < 1.2)  # 2 % noise -> a narrow 80 % interval


def test_light_quantiles_ordered_nonneg(fitted):
    rng = np.random.default_rng(1)
    for _ in range(20):
        h = rng.integers(0, 50, size=rng.integers(1, 30)).astype(float)
        out = fitted.predict(h, 7, QS, job=int(rng.integers(0, 2)))
        assert out.shape == (4, 7)
        _check_quantiles(out, np.array(QS))


def test_light_short_history_and_horizon(fitted):
    out = fitted.predict([100.0], 3, (0.5,), job=0)  # padded with its only value
    assert out.shape == (1, 3) and np.all(np.isfinite(out))
    with pytest.raises(ValueError):
        fitted.predict([100.0] * 20, 8)
    with pytest.raises(RuntimeError):
        LogARForecaster().predict([1.0, 2.0])


def test_light_constant_series():
    train = np.full((3, 60), 400.0)
    f = LogARForecaster().fit([train])
    np.testing.assert_allclose(f.predict(np.full(15, 400.0), 7, (0.1, 0.5, 0.9), job=0), 400.0,
                               rtol=1e-6)


def test_light_batch_speed(fitted):
    rng = np.random.default_rng(2)
    hists = [rng.uniform(50, 200, 100) for _ in range(10)]
    jobs = [j % 2 for j in range(10)]
    ts = []
    for i in range(60):
        hs = [h[: 60 + i] for h in hists]  # new windows each call: no cache hits
        t0 = time.perf_counter()
        out = fitted.predict_batch(hs, 7, (0.6,), jobs=jobs)
        ts.append(time.perf_counter() - t0)
    assert out.shape == (10, 1, 7)
    assert np.median(ts) < 5e-3


def test_registry():
    train, _ = _periodic()
    assert isinstance(make_forecaster("default", train=[train]), LogARForecaster)
    assert isinstance(make_forecaster("light"), LogARForecaster)
    assert isinstance(make_forecaster("last_value"), LastValue)
    assert isinstance(make_forecaster("oracle", truth=np.ones(10)), Oracle)
    with pytest.raises(ValueError):
        make_forecaster("oracle")
    with pytest.raises(ValueError):
        make_forecaster("nhits")
    with pytest.raises(ValueError, match="unknown"):
        make_forecaster("prophet")


def test_window_scale_hand_computed():
    from faro.forecast.light import window_scale

    # log1p diffs of [e-1, e^2-1, e^2-1, e^4-1] -> 1, 0, 2; median |d| = 1
    w = np.expm1(np.array([[1.0, 2.0, 2.0, 4.0]]))
    np.testing.assert_allclose(window_scale(w, 0.0), [1 / 0.6745])
    np.testing.assert_allclose(window_scale(w, 0.5), [np.hypot(1 / 0.6745, 0.5)])
    np.testing.assert_allclose(window_scale(np.full((1, 5), 7.0), 0.1), [0.1])


def test_light_heteroscedastic_spread_follows_the_window():
    # noise level switches between episodes: calm (1 %) and jumpy (20 %) days
    rng = np.random.default_rng(3)
    sig = np.repeat([0.01, 0.2], 4)[:, None]
    train = 300 * np.exp(sig * rng.standard_normal((8, 120)))
    f = LogARForecaster(heteroscedastic=True).fit([train])
    plain = LogARForecaster().fit([train])
    calm = 300 * np.exp(0.01 * rng.standard_normal(15))
    jumpy = 300 * np.exp(0.2 * rng.standard_normal(15))
    jumpy[-1] = calm[-1]
    width = {k: np.subtract(*f.predict(h, 7, (0.9, 0.1), job=0)) for k, h in
             (("calm", calm), ("jumpy", jumpy))}
    assert np.all(width["jumpy"] > 3 * width["calm"])
    # the unconditional model gives both windows one mixed spread
    pw = np.subtract(*plain.predict(calm, 7, (0.9, 0.1), job=0))
    assert np.all(pw > 2 * width["calm"])
    for h in (calm, jumpy, np.array([5.0]), np.zeros(20)):
        _check_quantiles(f.predict(h, 7, QS, job=0), np.array(QS))
