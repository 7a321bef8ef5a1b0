"""Day-11 evaluation: predictive step times and hand-computed metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from faro.forecast.base import LastValue, Oracle
from faro.forecast.evaluate import (
    evaluate_forecasters,
    forecast_table,
    predictive_times,
    summarize,
)


def test_predictive_times():
    t = predictive_times(360)
    assert t[:3] == [60.0, 360.0, 660.0] and t[-1] == 21360.0 and len(t) == 72
    assert predictive_times(7) == [60.0, 360.0]


def test_forecast_table_last_value_hand_computed():
    truth = np.array([[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]])
    tab = forecast_table(LastValue(), truth, horizon=3, times=[60, 300])
    # t=60: history [10] -> 10 for minutes 1..3; t=300: history up to minute 4 -> 50 for 5, 6
    assert list(tab["truth"]) == [20, 30, 40, 60, 70]
    assert list(tab["q0.5"]) == [10, 10, 10, 50, 50]
    s = summarize(tab).set_index("job")
    # APE: 10/20, 20/30, 30/40, 10/60, 20/70
    ape = np.array([10 / 20, 20 / 30, 30 / 40, 10 / 60, 20 / 70])
    assert s.loc["0", "mape"] == pytest.approx(100 * ape.mean())
    assert s.loc["0", "wape"] == pytest.approx(100 * 90 / 220)
    assert s.loc["0", "cov_10_90"] == 0.0 and s.loc["0", "exceed_06"] == 1.0
    assert s.loc["all", "n"] == 5


def test_summarize_coverage_and_exceedance():
    tab = pd.DataFrame({"job": [0, 0, 1, 1], "t": 60, "step": 1,
                        "truth": [5.0, 10.0, 1.0, 4.0],
                        "q0.1": [4.0, 11.0, 0.0, 0.0], "q0.5": [5.0, 12.0, 2.0, 4.0],
                        "q0.6": [6.0, 12.0, 0.5, 5.0], "q0.9": [6.0, 13.0, 3.0, 5.0]})
    s = summarize(tab).set_index("job")
    assert s.loc["0", "cov_10_90"] == 0.5 and s.loc["1", "cov_10_90"] == 1.0
    assert s.loc["1", "exceed_06"] == 0.5 and s.loc["all", "exceed_06"] == 0.25
    # sMAPE job 1: 2*1/3 and 0 -> mean 1/3
    assert s.loc["1", "smape"] == pytest.approx(100 / 3)


def test_oracle_is_perfect():
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 100, size=(3, 40)).astype(float)
    res = evaluate_forecasters({"oracle": Oracle(truth)}, truth)
    assert np.all(res["mape"] == 0) and np.all(res["cov_10_90"] == 1)
    assert np.all(res["exceed_06"] == 0)
