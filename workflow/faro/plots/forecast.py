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
    """Train ``forecaster`` (:func:`faro.forecast.registry.make_forecaster`) on days 1-10 and forecast
    ``job`` over day 11 (sample 0, the replayed trace)."""
    from faro.forecast.registry import make_forecaster

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
        ax.set_title(title, pad=14)
        style.legend_outside(ax, ncol=4)
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


def _offsets(n: int, width: float = 0.7) -> np.ndarray:
    return (np.arange(n) - (n - 1) / 2) * (width / max(n, 1))


def fig_forecasters(df: pd.DataFrame):
    """The forecaster comparison (``scripts/compare_forecasters.py`` rows): per quota (panels) and
    policy, each (forecaster, planning quantile)'s SLO% as the mean over seeds (marker) ± the
    sample sd (bar), the seeds as small dots."""
    d = df.assign(setting=[f"{f}, q {q:g}" if pd.notna(q) else str(f)
                           for f, q in zip(df["forecaster"], df["quantile"])])
    settings = list(dict.fromkeys(d["setting"]))
    policies = style.ordered(list(dict.fromkeys(d["policy"])))
    quotas = sorted(int(q) for q in d["quota"].unique())
    cmap = plt.get_cmap("tab10")
    offs = _offsets(len(settings))
    with plt.rc_context(style.paper_rc()):
        fig, axes = plt.subplots(1, len(quotas), squeeze=False, sharey=False,
                                 figsize=(min(style.TEXT_WIDTH * 1.3,
                                              0.5 + 0.35 * len(policies) * len(quotas) + 1), 2.9))
        for ax, q in zip(axes[0], quotas):
            for k, s in enumerate(settings):
                for i, p in enumerate(policies):
                    sel = (d["quota"] == q) & (d["policy"] == p) & (d["setting"] == s)
                    v = d[sel]["slo_rate"].to_numpy(dtype=float)
                    if v.size == 0:
                        continue
                    x = i + offs[k]
                    ax.scatter(np.full(v.size, x), v, s=3, color=cmap(k % 10), alpha=0.5, linewidths=0)
                    ax.errorbar(x, v.mean(), yerr=v.std(ddof=1) if v.size > 1 else None, fmt="o", ms=3.5,
                                color=cmap(k % 10), elinewidth=0.7, capsize=1.5, label=s if i == 0 else None)
            ax.set_xticks(range(len(policies)), [style.label(p) for p in policies], rotation=90, fontsize=6.5)
            ax.set_title(f"{q} CPUs")
            ax.grid(axis="y", lw=0.3, color="0.85")
        axes[0, 0].set_ylabel("SLO% (mean ± sd over seeds)")
        handles, names = axes[0, 0].get_legend_handles_labels()
        fig.tight_layout(rect=(0, 0, 1, 0.86))
        fig.legend(handles, names, loc="upper center", ncol=min(4, len(names)), frameon=False, fontsize=6.5)
    return fig


def fig_forecast_selection(df: pd.DataFrame):
    """The forecaster / quantile selection on days 1-10 (``scripts/select_forecaster.py`` rows):
    per quota (panels) and candidate, SLO% averaged over the validation days, policies and
    seeds (marker), the day means as dots and their sample sd as the bar; the best candidate
    of each quota is filled black."""
    quotas = sorted(int(q) for q in df["quota"].unique())
    cands = list(dict.fromkeys(df["candidate"]))
    with plt.rc_context(style.paper_rc()):
        fig, axes = plt.subplots(1, len(quotas), squeeze=False,
                                 figsize=(min(style.TEXT_WIDTH, 1.2 + 0.45 * len(cands) * len(quotas)), 2.8))
        for ax, q in zip(axes[0], quotas):
            dq = df[df["quota"] == q]
            day_means = dq.groupby(["candidate", "day"])["slo_rate"].mean()
            present = set(dq["candidate"])
            means = {c: float(dq[dq["candidate"] == c]["slo_rate"].mean()) for c in cands if c in present}
            best = max(means, key=means.get)
            for i, c in enumerate(cands):
                if c not in means:
                    continue
                days = day_means.loc[c].to_numpy(dtype=float)
                ax.scatter(np.full(days.size, i) + _offsets(days.size, 0.4), days, s=4, color="0.6",
                           linewidths=0)
                ax.errorbar(i, means[c], yerr=days.std(ddof=1) if days.size > 1 else None, fmt="o", ms=5,
                            mfc="black" if c == best else "white", mec="black", ecolor="black",
                            elinewidth=0.7, capsize=2)
                ax.annotate(f"{means[c]:.2f}", (i, means[c]), xytext=(5, 0), textcoords="offset points",
                            fontsize=5.5, va="center")
            ax.set_xticks(range(len(cands)), cands, rotation=90, fontsize=6.5)
            ax.set_title(f"{q} CPUs (days 1-10; black: best)", fontsize=7.5)
            ax.grid(axis="y", lw=0.3, color="0.85")
        axes[0, 0].set_ylabel("SLO% (mean over days, policies, seeds)")
        fig.tight_layout()
    return fig
