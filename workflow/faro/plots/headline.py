"""The paper's headline chart: lost cluster utility and cluster SLO violation rate per policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from faro.plots import style

UTILITY_PREFIX = "avg_util_"


def n_jobs_of(stats: Mapping) -> int:
    """Jobs of a cell's stats: its ``avg_util_<job>`` keys that hold a number (not NaN)."""
    n = 0
    for k, v in stats.items():
        if k.startswith(UTILITY_PREFIX) and not k.endswith("_std"):
            if not (isinstance(v, float) and np.isnan(v)):
                n += 1
    return n


def headline_values(stats: Mapping) -> tuple[float, float, float, float]:
    """(lost utility, its std, SLO violation rate, its std) of one cell's stats."""
    n = n_jobs_of(stats)
    lost = n - float(stats["avg_total_utility"])
    viol = 1.0 - float(stats["avg_total_slo_rate"])
    return lost, float(stats.get("avg_total_utility_std", 0.0)), viol, float(stats.get("avg_total_slo_rate_std", 0.0))


def draw_headline(ax, cells: Mapping[str, Mapping], title: str, *, order: Sequence[str] | None = None,
                  labels: Mapping[str, str] | None = None, legend: bool = True,
                  ylabels: tuple[bool, bool] = (True, True)):
    """Dual-axis bars on ``ax``: lost utility (solid, left) and SLO violation (hatched, right).

    ``order``: bar order (default: the paper's policy order); ``labels``: tick labels by name;
    ``ylabels``: whether to label the left and right axis.  Error bars only when some std > 0.
    Returns the twin axis.
    """
    names = list(order) if order is not None else style.ordered(list(cells))
    vals = np.array([headline_values(cells[p]) for p in names], dtype=float)
    ax2 = ax.twinx()
    x = np.arange(len(names))
    w = 0.38
    colors = [style.color(p) for p in names]
    err_u = vals[:, 1] if np.nansum(vals[:, 1]) > 0 else None
    err_v = vals[:, 3] if np.nansum(vals[:, 3]) > 0 else None
    ax.bar(x - w / 2, vals[:, 0], w, yerr=err_u, color=colors, edgecolor="black", linewidth=0.5,
           capsize=2, label="lost cluster utility")  # fmt: skip
    ax2.bar(x + w / 2, vals[:, 2], w, yerr=err_v, color=colors, edgecolor="black", linewidth=0.5,
            hatch="///", alpha=0.6, capsize=2, label="cluster SLO violation rate")  # fmt: skip
    tick = [(labels or {}).get(p, style.label(p)) for p in names]
    ax.set_xticks(x, tick, rotation=35, ha="right", rotation_mode="anchor")
    if ylabels[0]:
        ax.set_ylabel("lost cluster utility")
    if ylabels[1]:
        ax2.set_ylabel("cluster SLO violation rate")
    top_u = np.nanmax(vals[:, 0] + np.nan_to_num(vals[:, 1]))
    top_v = np.nanmax(vals[:, 2] + np.nan_to_num(vals[:, 3]))
    ax.set_ylim(0, max(0.5, top_u * 1.25))
    ax2.set_ylim(0, max(0.05, top_v * 1.25))
    ax.set_title(title)
    if legend:
        ax.legend(handles=legend_handles(), loc="upper left", frameon=False, fontsize=7)
    return ax2


def legend_handles():
    """Legend entries of the headline bars (policy colours are on the x axis)."""
    return [plt.Rectangle((0, 0), 1, 1, fc="white", ec="black", lw=0.5, label="lost utility (solid)"),
            plt.Rectangle((0, 0), 1, 1, fc="white", ec="black", lw=0.5, hatch="///",
                          label="SLO violation (hatched)")]


def plot_headline(cells: Mapping[str, Mapping], title: str):
    """Dual-axis bars: lost utility (left) and SLO violation rate (right) for each policy."""
    with plt.rc_context(style.paper_rc()):
        fig, ax = plt.subplots(figsize=(max(3.4, 0.55 * len(cells) + 1.2), 2.4))
        draw_headline(ax, cells, title)
    return fig


def fig_headline_settings(settings: Sequence[tuple[str, Mapping[str, Mapping]]]):
    """One headline panel per setting (e.g. each quota of the main experiment, mixed, 20 jobs,
    100 jobs), side by side; ``settings`` is a list of (title, {policy: cell stats})."""
    n = len(settings)
    n_pol = max(len(c) for _, c in settings)
    cols = min(n, 2 if n_pol > 4 else 4)
    rows = (n + cols - 1) // cols
    width = style.TEXT_WIDTH if n > 1 else max(3.4, 0.55 * n_pol + 1.2)
    with plt.rc_context(style.paper_rc()):
        fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(width, 2.5 * rows))
        for k, (title, cells) in enumerate(settings):
            col = k % cols
            last_in_row = col == cols - 1 or k == n - 1
            draw_headline(axes.flat[k], cells, title, legend=False, ylabels=(col == 0, last_in_row))
        for ax in axes.flat[n:]:
            ax.set_visible(False)
        fig.tight_layout(w_pad=0.4, rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
        fig.legend(handles=legend_handles(), loc="upper center", ncol=2, frameon=False, fontsize=8)
    return fig


def headline_from_files(paths: Sequence[str], policies: Sequence[str], title: str):
    from faro.stats import read_stats

    cells = {p: read_stats(path) for p, path in zip(policies, paths, strict=True)}
    return plot_headline(cells, title)
