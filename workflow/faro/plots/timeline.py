"""Figures over the run's time: cluster utility (Fig. 1), per-job SLO violation (Fig. 2), replicas.

Inputs are per-minute frames from :mod:`faro.plots.data` (``binned.parquet`` of one run and
its replica changes); every function returns a matplotlib Figure and touches no file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from faro.plots import style
from faro.plots.data import cluster_series, wide

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
    """Fig. 1: cluster utility (sum of job utilities per minute, rolling mean) per policy, with the
    cluster's total request count per minute below it."""
    policies = style.ordered(list(binned_by_policy))
    series = {p: cluster_series(binned_by_policy[p]) for p in policies}
    with plt.rc_context(style.paper_rc()):
        fig, (ax, axr) = plt.subplots(2, 1, sharex=True, figsize=(style.TEXT_WIDTH, 3.3),
                                      gridspec_kw={"height_ratios": [2.2, 1]})
        for p in policies:
            s = series[p]
            ax.plot(s.index, smooth(s["utility"], window), color=style.color(p), lw=1.0, label=style.label(p))
        ax.axhline(n_jobs, color="black", lw=0.6, ls="--")
        ax.set_ylabel("cluster utility")
        ax.set_ylim(0, n_jobs * 1.05)
        ax.set_title(title)
        ax.legend(ncol=min(len(policies), 5), loc="lower center", frameon=False, fontsize=7)
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
                   vmin=vmin, vmax=vmax, extent=(mat.index.min() - 0.5, mat.index.max() + 0.5, mat.shape[1], 0))
    ax.set_ylabel("job")
    plt.colorbar(im, ax=ax, label=label, pad=0.01)
    return im


def fig_job_slo_timeline(binned: pd.DataFrame, *, title: str, jobs: Sequence[str] | None = None,
                         window: int = 1):
    """Fig. 2: per job, the SLO violation rate per minute (line) with its request count (grey).

    Up to :data:`MAX_PANELS` jobs as small multiples, more as two heatmaps.
    """
    viol = 1.0 - wide(binned, "slo_frac", jobs)
    req = wide(binned, "requests", jobs)
    jobs = list(viol.columns)
    with plt.rc_context(style.paper_rc()):
        if len(jobs) > MAX_PANELS:
            fig, (a1, a2) = plt.subplots(2, 1, sharex=True, figsize=(style.TEXT_WIDTH, 4.5))
            _heatmap(a1, viol, "SLO violation rate", "Reds", 0, 1)
            _heatmap(a2, req, "requests/min", "Greys")
            a2.set_xlabel("time (trace minute)")
            a1.set_title(title)
            return fig
        fig, axes = _job_panels(len(jobs))
        for ax, j in zip(axes.flat, jobs):
            r = req[j].to_numpy(dtype=float)
            peak = max(1.0, float(np.nanmax(r)))
            ax.fill_between(req.index, r / peak, step="mid", color="0.82", lw=0)
            ax.plot(viol.index, smooth(viol[j], window), color="tab:red", lw=0.8)
            ax.set_ylim(0, 1.32)  # headroom for the panel label
            ax.set_yticks([0, 0.5, 1])
            _panel_label(ax, f"{style.job_label(j)} (peak {peak:.0f} req/min)")
            ax.tick_params(labelsize=6)
            ax.set_xlim(viol.index.min(), viol.index.max())
        for ax in axes[:, 0]:
            ax.set_ylabel("SLO viol.", fontsize=7)
        for ax in axes[-1, :]:
            ax.set_xlabel("time (trace minute)")
        fig.suptitle(f"{title}: SLO violation rate (red); requests/min scaled to the job's peak (grey)",
                     fontsize=8)
        fig.subplots_adjust(hspace=0.12, wspace=0.12, top=1 - 0.3 / fig.get_figheight())
    return fig


def fig_replicas(steps: pd.DataFrame, rates: pd.DataFrame, *, quota: int | None, title: str,
                 proc_s: float | Mapping[str, float]):
    """Replica timeline of one run: total active replicas (and the quota) with the total input
    rate, then per job (small multiples, or a heatmap for many jobs) with the job's input rate.

    The input rate is drawn as offered load in CPUs (requests/s x processing time), the number
    of busy replicas the load needs, so replicas and load share one axis.
    ``steps``: time (trace minutes) x job active replicas (:func:`faro.plots.data.replica_steps`);
    ``rates``: minute x job requests per minute; ``proc_s``: processing time per job (or one).
    """
    jobs = list(steps.columns)
    proc = pd.Series({j: float(proc_s[j]) if isinstance(proc_s, Mapping) else float(proc_s) for j in jobs})
    load = rates[jobs] / 60.0 * proc
    t_min = steps.index.to_numpy(dtype=float)
    x_end = float(load.index.max()) + 1
    many = len(jobs) > MAX_PANELS
    rows, cols = (1, 1) if many else style.grid_shape(len(jobs), 2)
    with plt.rc_context(style.paper_rc()):
        fig = plt.figure(figsize=(style.TEXT_WIDTH, 2.0 + (2.0 if many else 0.75 * rows)))
        gs = fig.add_gridspec(1 + rows, cols, height_ratios=[1.6] + [1.0 if many else 0.75] * rows, hspace=0.3)
        ax = fig.add_subplot(gs[0, :])
        total = steps.sum(axis=1).to_numpy()
        ax.step(t_min, total, where="post", color="tab:blue", lw=1.0, label="active replicas")
        ax.plot(load.index, load.sum(axis=1), color="0.45", lw=0.7, label="offered load (CPUs)")
        if quota:
            ax.axhline(quota, color="black", ls="--", lw=0.6, label=f"quota {quota}")
        ax.set_ylabel("replicas / CPUs")
        ax.set_ylim(0, max(float(total.max()), quota or 0, float(load.sum(axis=1).max())) * 1.1 + 1)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, fontsize=7, ncol=3)
        ax.set_title(title, pad=16)
        ax.set_xlim(0, x_end)
        if many:
            a2 = fig.add_subplot(gs[1, :], sharex=ax)
            _heatmap(a2, steps.iloc[:: max(1, len(steps) // 720)], "replicas", "Blues", 0)
            a2.set_xlabel("time (trace minute)")
            return fig
        ax.tick_params(labelbottom=False)
        for k, j in enumerate(jobs):
            a = fig.add_subplot(gs[1 + k // cols, k % cols], sharex=ax)
            a.step(t_min, steps[j].to_numpy(), where="post", color="tab:blue", lw=0.8)
            a.plot(load.index, load[j], color="0.45", lw=0.5)
            a.set_ylim(0, max(1.0, float(steps[j].max()), float(load[j].max())) * 1.15)
            a.tick_params(labelsize=6)
            _panel_label(a, style.job_label(j))
            if k // cols == rows - 1 or k + cols >= len(jobs):
                a.set_xlabel("time (trace minute)")
            else:
                a.tick_params(labelbottom=False)
    return fig
