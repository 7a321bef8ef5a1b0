"""Fig. 8: a job's forecast on the test day (day 11) against the truth, with quantile bands.

The forecaster is trained on days 1-10 of the artifact's history only; on day 11 it forecasts
the next ``horizon`` minutes from the minutes seen so far, block after block, so the stitched
forecast covers the day the way the predictive policies see it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from faro.plots import style

BAND = (0.1, 0.5, 0.6, 0.9)


def rolling_forecast(forecaster, truth: np.ndarray, job: int, *, horizon: int = 7, first: int = 15,
                     quantiles: Sequence[float] = BAND) -> pd.DataFrame:
    """Forecasts of ``truth[job]`` in consecutive ``horizon``-minute blocks from minute ``first``:
    one row per minute with its true count, the step (1..horizon) and each ``q<q>`` column."""
    truth = np.asarray(truth, dtype=float)
    series = truth[job]
    rows = []
    for m in range(first, len(series), horizon):
        pred = forecaster.predict(series[:m], horizon, quantiles, job=job)  # (q, horizon)
        for s in range(min(horizon, len(series) - m)):
            rows.append((m + s, s + 1, series[m + s], *pred[:, s]))
    return pd.DataFrame(rows, columns=["minute", "step", "truth", *[f"q{q:g}" for q in quantiles]])


def forecast_day11(history, job: int, forecaster: str = "default", **kw) -> pd.DataFrame:
    """Train ``forecaster`` (:func:`faro.forecast.make_forecaster`) on days 1-10 and forecast
    ``job`` over day 11 (sample 0, the replayed trace)."""
    from faro.forecast import make_forecaster

    f = make_forecaster(forecaster, train=history.training_series())
    out = rolling_forecast(f, history.test_series(0), job, **kw)
    out.insert(0, "job", job)
    out.insert(1, "forecaster", forecaster)
    return out


def fig_forecast(df: pd.DataFrame, *, title: str):
    """Truth (black), median forecast (blue, what Faro's configs plan on), the 0.6 quantile (the
    paper's planning quantile, dashed) and the 0.1-0.9 band (shaded); the lower panel shows the
    forecast error of the median in percent."""
    with plt.rc_context(style.paper_rc()):
        fig, (ax, ae) = plt.subplots(2, 1, sharex=True, figsize=(style.TEXT_WIDTH, 2.9),
                                     gridspec_kw={"height_ratios": [2.2, 1]})
        m = df["minute"].to_numpy()
        if {"q0.1", "q0.9"} <= set(df.columns):
            ax.fill_between(m, df["q0.1"], df["q0.9"], color="tab:blue", alpha=0.22, lw=0, step="mid",
                            label="0.1-0.9 quantiles")
        ax.plot(m, df["truth"], color="black", lw=0.8, label="truth")
        ax.plot(m, df["q0.5"], color="tab:blue", lw=0.8, label="median forecast")
        if "q0.6" in df.columns:
            ax.plot(m, df["q0.6"], color="tab:orange", lw=0.7, ls="--", label="0.6 quantile")
        ax.set_ylabel("requests/min")
        ax.set_ylim(bottom=0)
        ax.set_title(title)
        ax.legend(ncol=4, fontsize=7, frameon=False, loc="upper left")
        with np.errstate(divide="ignore", invalid="ignore"):
            err = 100.0 * (df["q0.5"] - df["truth"]) / df["truth"].where(df["truth"] > 0)
        ae.plot(m, err, color="tab:blue", lw=0.6)
        ae.axhline(0, color="black", lw=0.5)
        ae.set_ylabel("error (%)")
        ae.set_xlabel("time (minute of day 11)")
        lim = float(np.nanpercentile(np.abs(err), 99)) if np.isfinite(err).any() else 100.0
        ae.set_ylim(-lim * 1.1, lim * 1.1)
        fig.align_ylabels([ax, ae])
    return fig
