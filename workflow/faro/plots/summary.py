"""Figures over the whole matrix, from the stats table (one row per run).

Fig. 4b (utility vs SLO satisfaction), per-job box plots, utility vs effective utility, the
Pareto curve over cluster sizes, and the ablation ladder (Fig. 16).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from faro.plots import style
from faro.plots.headline import draw_headline, legend_handles

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]


def fig_utility_vs_slo(jobs: pd.DataFrame):
    """Fig. 4b: per job and run, average utility against SLO satisfaction (fraction of requests
    within the SLO, mean over minutes); colour = policy, marker = quota; y = x dashed."""
    policies = style.ordered(list(dict.fromkeys(jobs["policy"])))
    quotas = sorted(jobs["quota"].unique())
    with plt.rc_context(style.paper_rc()):
        fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 3.0))
        for p in policies:
            for k, q in enumerate(quotas):
                d = jobs[(jobs["policy"] == p) & (jobs["quota"] == q)]
                if d.empty:
                    continue
                ax.scatter(d["slo_rate"], d["utility"], s=10, marker=MARKERS[k % len(MARKERS)],
                           color=style.color(p), alpha=0.75, linewidths=0)
        ax.plot([0, 1], [0, 1], color="black", lw=0.5, ls="--")
        ax.set_xlabel("SLO satisfaction (per job)")
        ax.set_ylabel("utility (per job)")
        lo = float(np.nanmin(np.r_[jobs["slo_rate"], jobs["utility"]]))
        ax.set_xlim(max(0, lo - 0.05), 1.01)
        ax.set_ylim(max(0, lo - 0.05), 1.01)
        handles = [plt.Line2D([], [], ls="", marker="o", color=style.color(p), label=style.label(p))
                   for p in policies]
        handles += [plt.Line2D([], [], ls="", marker=MARKERS[k % len(MARKERS)], color="0.3", label=f"{q} CPUs")
                    for k, q in enumerate(quotas)]
        ax.legend(handles=handles, fontsize=6, frameon=False, loc="upper left", ncol=2)
        if len(jobs) > 2:
            r = np.corrcoef(jobs["slo_rate"], jobs["utility"])[0, 1]
            ax.text(0.98, 0.03, f"Pearson r = {r:.3f}", transform=ax.transAxes, ha="right", fontsize=7)
    return fig


def _err(std: pd.Series):
    """Error bars only when some cell has several seeds (std > 0)."""
    s = std.to_numpy(dtype=float)
    return s if np.nansum(s) > 0 else None


def _quota_axes(n_rows: int, quotas: Sequence[int], n_pol: int, row_h: float = 1.9):
    cols = len(quotas)
    width = min(style.TEXT_WIDTH, max(style.COLUMN_WIDTH, cols * (0.3 * n_pol + 0.8)))
    return plt.subplots(n_rows, cols, squeeze=False, sharey="row", figsize=(width, 0.6 + row_h * n_rows))


def fig_job_boxes(jobs: pd.DataFrame):
    """Per quota, per policy: box plot over jobs of each job's SLO violation rate (top) and
    utility (bottom), each job's value averaged over seeds."""
    per_job = jobs.groupby(["quota", "policy", "job"], sort=False)[["slo_violation", "utility"]].mean().reset_index()
    quotas = sorted(per_job["quota"].unique())
    policies = style.ordered(list(dict.fromkeys(per_job["policy"])))
    with plt.rc_context(style.paper_rc()):
        fig, axes = _quota_axes(2, quotas, len(policies))
        for c, q in enumerate(quotas):
            for r, (col, name) in enumerate([("slo_violation", "SLO violation rate"), ("utility", "utility")]):
                ax = axes[r, c]
                data = [per_job[(per_job["quota"] == q) & (per_job["policy"] == p)][col].dropna().to_numpy()
                        for p in policies]
                bp = ax.boxplot(data, patch_artist=True, widths=0.6, medianprops={"color": "black", "lw": 0.8},
                                flierprops={"markersize": 2}, whiskerprops={"lw": 0.6}, capprops={"lw": 0.6})
                for patch, p in zip(bp["boxes"], policies):
                    patch.set_facecolor(style.color(p))
                    patch.set_linewidth(0.6)
                ax.set_xticks(range(1, len(policies) + 1),
                              [style.label(p) for p in policies] if r == 1 else [""] * len(policies),
                              rotation=40, ha="right", fontsize=7)
                if c == 0:
                    ax.set_ylabel(name)
                if r == 0:
                    ax.set_title(f"{q} CPUs")
        fig.tight_layout(h_pad=0.4, w_pad=0.4)
    return fig


def fig_utility_vs_effective(cells: pd.DataFrame):
    """Per quota: average cluster utility (solid) beside effective utility (hatched: successes only,
    times the drop penalty) for each policy; dashed line = number of jobs."""
    quotas = sorted(cells["quota"].unique())
    policies = style.ordered(list(dict.fromkeys(cells["policy"])))
    with plt.rc_context(style.paper_rc()):
        fig, axes = _quota_axes(1, quotas, len(policies), row_h=2.2)
        w = 0.4
        for c, q in enumerate(quotas):
            ax = axes[0, c]
            d = cells[cells["quota"] == q].set_index("policy")
            ps = [p for p in policies if p in d.index]
            x = np.arange(len(ps))
            colors = [style.color(p) for p in ps]
            ax.bar(x - w / 2, d.loc[ps, "avg_total_utility"], w, yerr=_err(d.loc[ps, "avg_total_utility_std"]),
                   color=colors, edgecolor="black", lw=0.5, capsize=2)
            ax.bar(x + w / 2, d.loc[ps, "avg_total_effective_utility"], w,
                   yerr=_err(d.loc[ps, "avg_total_effective_utility_std"]), color=colors, edgecolor="black", lw=0.5,
                   hatch="///", alpha=0.6, capsize=2)
            ax.axhline(float(d["n_jobs"].max()), color="black", ls="--", lw=0.6)
            ax.set_xticks(x, [style.label(p) for p in ps], rotation=40, ha="right", fontsize=7)
            ax.set_title(f"{q} CPUs")
        axes[0, 0].set_ylabel("average cluster utility")
        fig.tight_layout(w_pad=0.4, rect=(0, 0, 1, 0.9))
        fig.legend(handles=[plt.Rectangle((0, 0), 1, 1, fc="white", ec="black", lw=0.5, label="utility (solid)"),
                            plt.Rectangle((0, 0), 1, 1, fc="white", ec="black", lw=0.5, hatch="///",
                                          label="effective utility (hatched)")],
                   loc="upper center", ncol=2, fontsize=7, frameon=False)
    return fig


def fig_pareto(cells: pd.DataFrame):
    """Average cluster utility (left) and cluster SLO violation rate (right) vs cluster size
    (quota, CPUs) per policy, error bars over seeds."""
    policies = style.ordered(list(dict.fromkeys(cells["policy"])))
    with plt.rc_context(style.paper_rc()):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(style.TEXT_WIDTH, 2.5))
        for p in policies:
            d = cells[cells["policy"] == p].sort_values("quota")
            kw = dict(color=style.color(p), marker="o", ms=3, lw=1.0, capsize=2, label=style.label(p))
            a1.errorbar(d["quota"], d["avg_total_utility"], yerr=_err(d["avg_total_utility_std"]), **kw)
            a2.errorbar(d["quota"], d["slo_violation"], yerr=_err(d["slo_violation_std"]), **kw)
        n = float(cells["n_jobs"].max())
        a1.axhline(n, color="black", ls="--", lw=0.6)
        a1.set_ylabel("average cluster utility")
        a2.set_ylabel("cluster SLO violation rate")
        a2.set_ylim(bottom=0)
        for a in (a1, a2):
            a.set_xlabel("cluster size (quota, CPUs)")
            a.set_xticks(sorted(cells["quota"].unique()))
        a1.legend(fontsize=6, frameon=False, loc="lower right")
        fig.tight_layout()
    return fig


def fig_ablation(cells_by_quota: Mapping[int, Mapping[str, Mapping]], steps: Sequence[str],
                 labels: Mapping[str, str] | None = None):
    """Fig. 16: the ablation ladder, one panel per quota; bars in ladder order (each step adds one
    technique to the previous), lost utility solid and SLO violation hatched."""
    quotas = sorted(cells_by_quota)
    with plt.rc_context(style.paper_rc()):
        fig, axes = plt.subplots(1, len(quotas), squeeze=False,
                                 figsize=(min(style.TEXT_WIDTH, len(quotas) * (0.35 * len(steps) + 1.3)), 2.8))
        for k, q in enumerate(quotas):
            draw_headline(axes[0, k], cells_by_quota[q], f"{q} CPUs", order=steps, labels=labels, legend=False,
                          ylabels=(k == 0, k == len(quotas) - 1))
        fig.tight_layout(w_pad=0.5, rect=(0, 0, 1, 0.92))
        fig.legend(handles=legend_handles(), loc="upper center", ncol=2, frameon=False, fontsize=8)
    return fig
