"""The paper's headline chart: lost cluster utility and cluster SLO violation rate per policy.

Both axes have the paper's fixed limits, N (the number of jobs) for lost utility and 100 % for
the violation rate, so a bar's height is the fraction of the best possible lost, bars of
different panels (quotas, settings with the same N) compare directly, and the two bars of a
policy are on the same N:1 scale.  Every bar carries its value; the request-level SLO
satisfaction (``slo_rate``, the paper's SLO%) is printed above each policy.  With several seeds
a bar is the mean, the error bar the standard deviation and the dots the seeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from faro.plots import style

UTILITY_PREFIX = "avg_util_"
#: headroom above N / 100 % for the SLO% row (the ticks stop at N / 100 %)
HEADROOM = 1.22
#: columns of a headline summary (one row per policy)
SUMMARY_COLUMNS = ["policy", "lost_utility", "lost_utility_std", "slo_violation", "slo_violation_std",
                   "slo_rate", "slo_rate_std", "n_jobs", "n_seeds"]


def n_jobs_of(stats: Mapping) -> int:
    """Jobs of a cell's stats: its ``avg_util_<job>`` keys that hold a number (not NaN)."""
    n = 0
    for k, v in stats.items():
        if k.startswith(UTILITY_PREFIX) and not k.endswith("_std"):
            if not (isinstance(v, float) and np.isnan(v)):
                n += 1
    return n


def headline_values(stats: Mapping) -> tuple[float, float, float, float]:
    """(lost utility, its std, SLO violation rate, its std) of one cell's stats (rates as fractions)."""
    n = n_jobs_of(stats)
    lost = n - float(stats["avg_total_utility"])
    viol = 1.0 - float(stats["avg_total_slo_rate"])
    lost_sd = float(stats.get("avg_total_utility_std", 0.0))
    return lost, lost_sd, viol, float(stats.get("avg_total_slo_rate_std", 0.0))


def summary_from_cells(cells: Mapping[str, Mapping]) -> pd.DataFrame:
    """Headline summary (:data:`SUMMARY_COLUMNS`) from cell stats dicts (``latency_stats.pkl``)."""
    rows = []
    for p, st in cells.items():
        lost, lost_sd, viol, viol_sd = headline_values(st)
        rows.append({"policy": p, "lost_utility": lost, "lost_utility_std": lost_sd, "slo_violation": viol,
                     "slo_violation_std": viol_sd, "slo_rate": float(st.get("slo_rate", np.nan)),
                     "slo_rate_std": float(st.get("slo_rate_std", 0.0)), "n_jobs": n_jobs_of(st),
                     "n_seeds": len(st.get("seeds", [])) or 1})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def summary_from_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Headline summary of one panel from per-run rows (a stats table with
    :func:`faro.plots.data.with_derived` columns, one quota): mean and sample sd over seeds."""
    from faro.plots.data import cell_summary

    s = cell_summary(runs, ["lost_utility", "slo_violation", "slo_rate", "n_jobs"])
    return s[SUMMARY_COLUMNS].reset_index(drop=True)


def _bar_labels(ax, x, heights, texts, top: float, fontsize: float = 5.5):
    """Value labels: above a bar, or inside its top when the bar is tall."""
    for xi, h, t in zip(x, heights, texts):
        if not np.isfinite(h):
            continue
        inside = h > 0.78 * top
        ax.text(xi, h - 0.01 * top if inside else h + 0.012 * top, t, rotation=90, ha="center",
                va="top" if inside else "bottom", fontsize=fontsize, zorder=5,
                bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none",
                      "alpha": 0.75} if inside else None)


def draw_headline(ax, summary: pd.DataFrame, title: str, *, points: pd.DataFrame | None = None,
                  order: Sequence[str] | None = None, labels: Mapping[str, str] | None = None,
                  ylabels: tuple[bool, bool] = (True, True), n_jobs: int | None = None):
    """Paired bars on ``ax``: lost utility (solid, left axis, 0..N) and SLO violation rate (hatched,
    right axis, 0..100 %), value labels on every bar and the SLO% row above.

    ``summary``: :data:`SUMMARY_COLUMNS` rows; ``points``: per-run rows (policy, lost_utility,
    slo_violation) drawn as dots when a policy has several seeds; ``order``: bar order (default:
    the paper's policy order); ``labels``: tick labels by name; ``ylabels``: whether to label the
    left and right axis.  Returns the twin axis.
    """
    s = summary.set_index("policy")
    names = [p for p in (order if order is not None else style.ordered(list(s.index))) if p in s.index]
    s = s.loc[names]
    n = int(n_jobs if n_jobs is not None else s["n_jobs"].max())
    lost = s["lost_utility"].to_numpy(dtype=float)
    viol = 100.0 * s["slo_violation"].to_numpy(dtype=float)
    multi = bool((s["n_seeds"] > 1).any())
    ax2 = ax.twinx()
    x = np.arange(len(names))
    w = 0.4
    colors = [style.color(p) for p in names]
    err_kw = {"elinewidth": 0.6, "capthick": 0.6}
    ax.bar(x - w / 2, lost, w, yerr=s["lost_utility_std"].to_numpy(dtype=float) if multi else None,
           color=colors, edgecolor="black", linewidth=0.5, capsize=1.5, error_kw=err_kw)
    ax2.bar(x + w / 2, viol, w, yerr=100.0 * s["slo_violation_std"].to_numpy(dtype=float) if multi else None,
            color=colors, edgecolor="black", linewidth=0.5, hatch="////", alpha=0.55, capsize=1.5,
            error_kw=err_kw)
    if points is not None and multi:
        for k, p in enumerate(names):
            d = points[points["policy"] == p]
            if len(d) > 1:
                jit = np.linspace(-0.08, 0.08, len(d))
                ax.scatter(x[k] - w / 2 + jit, d["lost_utility"], s=3, color="black", zorder=4, linewidths=0)
                ax2.scatter(x[k] + w / 2 + jit, 100.0 * d["slo_violation"], s=3, color="black", zorder=4,
                            linewidths=0)
    ax.set_ylim(0, n * HEADROOM)
    ax2.set_ylim(0, 100.0 * HEADROOM)
    ax.set_yticks(np.linspace(0, n, 6 if n % 5 == 0 else 5))
    ax2.set_yticks([0, 20, 40, 60, 80, 100])
    ax.axhline(n, color="0.6", lw=0.5, ls=":", zorder=0)
    _bar_labels(ax, x - w / 2, lost, [f"{v:.2f}" for v in lost], n * HEADROOM)
    _bar_labels(ax2, x + w / 2, viol, [f"{v:.1f}" for v in viol], 100.0 * HEADROOM)
    for k, p in enumerate(names):
        v = s.loc[p, "slo_rate"]
        if np.isfinite(v):
            ax.text(x[k], n * (HEADROOM - 0.015), f"{v:.1f}", ha="center", va="top", fontsize=6, color="0.1")
    ax.text(-0.6, n * (HEADROOM - 0.015), "SLO%", ha="right", va="top", fontsize=6, fontweight="bold")
    tick = [(labels or {}).get(p, style.label(p)) for p in names]
    ax.set_xticks(x, tick, rotation=35, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.6, len(names) - 0.4)
    if ylabels[0]:
        ax.set_ylabel(f"lost cluster utility (of {n})")
    if ylabels[1]:
        ax2.set_ylabel("cluster SLO violation rate (%)")
    ax.set_title(title)
    return ax2


def legend_handles(multi_seed: bool = False):
    """Legend entries of the headline bars (policy colours are on the x axis)."""
    h = [plt.Rectangle((0, 0), 1, 1, fc="white", ec="black", lw=0.5,
                       label="lost cluster utility (solid, left)"),
         plt.Rectangle((0, 0), 1, 1, fc="white", ec="black", lw=0.5, hatch="////",
                       label="SLO violation rate, % (hatched, right)")]
    if multi_seed:
        h.append(plt.Line2D([], [], ls="", marker="o", ms=2, color="black",
                            label="one seed (bar: mean, error: sd)"))
    return h


def _panel_width(n_pol: int) -> float:
    return max(style.COLUMN_WIDTH, 0.52 * n_pol + 1.3)


def plot_headline(summary: pd.DataFrame, title: str, points: pd.DataFrame | None = None):
    """One headline panel (see :func:`draw_headline`) with its legend above the axes."""
    with plt.rc_context(style.paper_rc()):
        fig, ax = plt.subplots(figsize=(_panel_width(len(summary)), 2.7))
        draw_headline(ax, summary, title, points=points)
        multi = bool((summary["n_seeds"] > 1).any())
        ax.set_title(title, pad=14)
        style.legend_outside(ax, legend_handles(multi), ncol=3, fontsize=6.5)
    return fig


def fig_headline_runs(runs: pd.DataFrame, title: str, policies: Sequence[str] | None = None):
    """Headline of one quota from per-run rows (stats table rows of that quota)."""
    if policies is not None:
        runs = runs[runs["policy"].isin(list(policies))]
    return plot_headline(summary_from_runs(runs), title, points=runs)


def fig_headline_settings(settings: Sequence[tuple[str, pd.DataFrame, pd.DataFrame | None]]):
    """One headline panel per setting (e.g. the main experiment at its quotas, mixed, 20 jobs,
    100 jobs), side by side; ``settings``: (title, summary, per-run points or None)."""
    n = len(settings)
    n_pol = max(len(s) for _, s, _ in settings)
    cols = min(n, 2 if n_pol > 4 else 4)
    rows = (n + cols - 1) // cols
    width = style.TEXT_WIDTH * (1.35 if n_pol > 9 else 1.0) if n > 1 else _panel_width(n_pol)
    multi = any(bool((s["n_seeds"] > 1).any()) for _, s, _ in settings)
    with plt.rc_context(style.paper_rc()):
        fig, axes = plt.subplots(rows, cols, squeeze=False, figsize=(width, 2.7 * rows))
        for k, (title, summ, pts) in enumerate(settings):
            col = k % cols
            last_in_row = col == cols - 1 or k == n - 1
            draw_headline(axes.flat[k], summ, title, points=pts, ylabels=(col == 0, last_in_row))
        for ax in axes.flat[n:]:
            ax.set_visible(False)
        fig.tight_layout(w_pad=0.4, rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
        fig.legend(handles=legend_handles(multi), loc="upper center", ncol=3, frameon=False, fontsize=7)
    return fig
