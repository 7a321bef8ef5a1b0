"""Figures over the run's time: cluster utility (Fig. 1) and per-job SLO violation (Fig. 2).

Inputs are per-minute frames from :mod:`faro.plots.data` (``binned.parquet`` of one run and
its replica changes); every function returns a matplotlib Figure and touches no file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from faro.plots import style
from faro.plots.data import cluster_series, wide
from faro.plots.io import fixed_layout

#: above this many jobs, per-job small multiples become a heatmap
MAX_PANELS = 12


def smooth(y: pd.Series | np.ndarray, window: int) -> np.ndarray:
    """Centred rolling mean over ``window`` minutes (NaN-aware; 1 = unchanged)."""
    s = pd.Series(np.asarray(y, dtype=float))
    if window <= 1:
        return s.to_numpy()
    return s.rolling(window, center=True, min_periods=1).mean().to_numpy()


def fig_cluster_utility(binned_by_policy: Mapping[str, pd.DataFrame], *, n_jobs: int, title: str,
                        window: int = 5):
    """Fig. 1: cluster utility (sum of job utilities per minute, rolling mean over ``window``
    minutes) per policy, with the cluster's total request count per minute below it.

    Colour, line style (family) and marker (every 30 minutes) per policy; the legend sits above
    the axes, outside the data.
    """
    policies = style.ordered(list(binned_by_policy))
    series = {p: cluster_series(binned_by_policy[p]) for p in policies}
    with plt.rc_context(style.paper_rc()):
        fig, (ax, axr) = plt.subplots(2, 1, sharex=True, figsize=(style.TEXT_WIDTH, 3.6),
                                      gridspec_kw={"height_ratios": [2.4, 1]})
        for k, p in enumerate(policies):
            s = series[p]
            ax.plot(s.index, smooth(s["utility"], window), **style.line_kw(p, lw=0.9, ms=3.5,
                    markevery=(3 * k % 30, 30)))
        ax.axhline(n_jobs, color="black", lw=0.6, ls="--")
        ax.set_ylabel("cluster utility")
        ax.set_ylim(0, n_jobs * 1.03)
        style.legend_outside(ax, ncol=min(len(policies), 5), fontsize=6.5)
        ax.set_title(title, pad=8 + 12 * ((len(policies) + 4) // 5))
        ref = series[policies[0]]
        axr.fill_between(ref.index, ref["requests"], step="mid", color="0.6", lw=0)
        axr.set_ylabel("requests/min")
        axr.set_xlabel("time (trace minute)")
        axr.set_xlim(ref.index.min(), ref.index.max())
        fig.align_ylabels([ax, axr])
    return fig


def _job_panels(n: int, height_per_row: float = 0.85):
    rows, cols = style.grid_shape(n, 2)
    fig, axes = plt.subplots(rows, cols, sharex=True, sharey=True, squeeze=False,
                             figsize=(style.TEXT_WIDTH, 0.5 + height_per_row * rows))
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def _panel_label(ax, text: str) -> None:
    ax.text(0.01, 0.97, text, transform=ax.transAxes, va="top", fontsize=6.5, zorder=10,
            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})


def _heatmap(ax, mat: pd.DataFrame, label: str, cmap: str, vmin=None, vmax=None):
    im = ax.imshow(mat.T.to_numpy(dtype=float), aspect="auto", interpolation="nearest", cmap=cmap,
                   vmin=vmin, vmax=vmax,
                   extent=(mat.index.min() - 0.5, mat.index.max() + 0.5, mat.shape[1] - 0.5, -0.5))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))  # row k is the k-th job
    ax.set_ylabel("job index")
    plt.colorbar(im, ax=ax, label=label, pad=0.01, fraction=0.09)
    return im


def fig_job_slo_timeline(binned: pd.DataFrame, *, title: str, jobs: Sequence[str] | None = None,
                         window: int = 1):
    """Fig. 2: per job, the SLO violation rate per minute (line) with its request count (grey).

    Up to :data:`MAX_PANELS` jobs as small multiples, more as two heatmaps. The layout is fixed
    in inches (:func:`faro.plots.io.fixed_layout`): one of these is drawn per cell.
    """
    viol = 100.0 * (1.0 - wide(binned, "slo_frac", jobs))
    req = wide(binned, "requests", jobs)
    jobs = list(viol.columns)
    with plt.rc_context({**style.paper_rc(), "xtick.labelsize": 6, "ytick.labelsize": 6}):
        if len(jobs) > MAX_PANELS:
            fig, (a1, a2) = plt.subplots(2, 1, sharex=True, figsize=(style.TEXT_WIDTH, 4.5))
            _heatmap(a1, viol, "SLO violation rate (%)", "Reds", 0, 100)
            _heatmap(a2, req, "requests/min", "Greys")
            a2.set_xlabel("time (trace minute)")
            a1.set_title(title)
            return fixed_layout(fig, left=0.6, right=0.15, bottom=0.45, top=0.3, hspace=0.12)
        fig, axes = _job_panels(len(jobs))
        for ax, j in zip(axes.flat, jobs):
            r = req[j].to_numpy(dtype=float)
            peak = max(1.0, float(np.nanmax(r)))
            ax.fill_between(req.index, 100.0 * r / peak, step="mid", color="0.82", lw=0)
            ax.plot(viol.index, smooth(viol[j], window), color="tab:red", lw=0.8)
            _panel_label(ax, f"{style.job_label(j)} (peak {peak:.0f} req/min)")
        ax = axes.flat[0]  # the panels share both axes (limits, ticks): set once
        ax.set_ylim(0, 132)  # headroom for the panel label
        ax.set_yticks([0, 50, 100])
        ax.set_xlim(viol.index.min(), viol.index.max())
        for ax in axes[:, 0]:
            ax.set_ylabel("SLO viol. (%)", fontsize=7)
        for ax in axes[-1, :]:
            ax.set_xlabel("time (trace minute)", fontsize=7)
        fig.suptitle(f"{title}\nSLO violation rate, % (red); requests/min, % of the job's peak (grey)",
                     fontsize=8, y=1 - 0.04 / fig.get_figheight(), va="top")
    return fixed_layout(fig, left=0.48, right=0.12, bottom=0.42, top=0.36, hspace=0.12, wspace=0.12)


def integer_ticks(ax, *, extra: int | None = None, nbins: int = 6) -> None:
    """Whole-number y ticks (replicas come in units), plus ``extra`` (e.g. the quota) as a tick."""
    lo, hi = ax.get_ylim()
    ticks = [t for t in MaxNLocator(nbins=nbins, integer=True).tick_values(lo, hi) if lo <= t <= hi]
    if extra is not None and lo <= extra <= hi:
        step = ticks[1] - ticks[0] if len(ticks) > 1 else hi
        ticks = [t for t in ticks if abs(t - extra) >= 0.8 * step] + [extra]
    ax.set_yticks(sorted(ticks))
