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
from faro.plots.headline import draw_headline, legend_handles, summary_from_cells


def fig_utility_vs_slo(binned: pd.DataFrame):
    """Fig. 4b: per job and minute, the utility min(1, SLO/p99) against the fraction of the
    minute's requests within the SLO, over every run given (``binned``: concatenated
    ``binned.parquet`` frames); a hexagon's shade is its number of job-minutes (log scale);
    y = x dashed, Pearson r in the corner."""
    d = binned[["slo_frac", "util"]].dropna()
    with plt.rc_context(style.paper_rc()):
        fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 2.9))
        hb = ax.hexbin(d["slo_frac"], d["util"], gridsize=30, extent=(0, 1, 0, 1), bins="log", cmap="viridis",
                       mincnt=1, linewidths=0.1)
        ax.plot([0, 1], [0, 1], color="white", lw=0.8, ls="--")
        ax.set_xlabel("SLO satisfaction of a job-minute (fraction)")
        ax.set_ylabel("utility of the job-minute")
        ax.set_xlim(0, 1.0)
        ax.set_ylim(0, 1.0)
        fig.colorbar(hb, ax=ax, label="job-minutes (log scale)", pad=0.02)
        if len(d) > 2:
            r = np.corrcoef(d["slo_frac"], d["util"])[0, 1]
            ax.set_title(f"{len(d):,} job-minutes, Pearson r = {r:.3f}", fontsize=7)
    return fig


def _err(std: pd.Series):
    """Error bars only when some cell has several seeds (std > 0)."""
    s = std.to_numpy(dtype=float)
    return s if np.nansum(s) > 0 else None


def _policy_ticks(ax, x, policies, show: bool = True) -> None:
    """Policy names as vertical tick labels (no collisions between neighbouring panels)."""
    ax.set_xticks(x, [style.label(p) for p in policies] if show else [""] * len(policies), rotation=90,
                  fontsize=6.5)


def _quota_axes(n_rows: int, quotas: Sequence[int], n_pol: int, row_h: float = 1.9):
    cols = len(quotas)
    width = min(style.TEXT_WIDTH, max(style.COLUMN_WIDTH, cols * (0.3 * n_pol + 0.8)))
    return plt.subplots(n_rows, cols, squeeze=False, sharey="row", figsize=(width, 0.6 + row_h * n_rows))


def fig_job_boxes(jobs: pd.DataFrame):
    """Per quota, per policy: box plot over jobs of each job's SLO violation rate (top) and
    utility (bottom), each job's value averaged over seeds."""
    per_job = (jobs.groupby(["quota", "policy", "job"], sort=False)[["slo_violation", "utility"]]
               .mean().reset_index())
    per_job["slo_violation"] *= 100.0
    quotas = sorted(per_job["quota"].unique())
    policies = style.ordered(list(dict.fromkeys(per_job["policy"])))
    with plt.rc_context(style.paper_rc()):
        fig, axes = _quota_axes(2, quotas, len(policies))
        for c, q in enumerate(quotas):
            rows = [("slo_violation", "SLO violation rate (%)"), ("utility", "utility")]
            for r, (col, name) in enumerate(rows):
                ax = axes[r, c]
                data = [per_job[(per_job["quota"] == q) & (per_job["policy"] == p)][col].dropna().to_numpy()
                        for p in policies]
                bp = ax.boxplot(data, patch_artist=True, widths=0.6,
                                medianprops={"color": "black", "lw": 0.8},
                                flierprops={"markersize": 2}, whiskerprops={"lw": 0.6}, capprops={"lw": 0.6})
                for patch, p in zip(bp["boxes"], policies):
                    patch.set_facecolor(style.color(p))
                    patch.set_linewidth(0.6)
                _policy_ticks(ax, np.arange(1, len(policies) + 1), policies, show=r == 1)
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
            ax.bar(x - w / 2, d.loc[ps, "avg_total_utility"], w,
                   yerr=_err(d.loc[ps, "avg_total_utility_std"]),
                   color=colors, edgecolor="black", lw=0.5, capsize=2)
            ax.bar(x + w / 2, d.loc[ps, "avg_total_effective_utility"], w,
                   yerr=_err(d.loc[ps, "avg_total_effective_utility_std"]), color=colors, edgecolor="black",
                   lw=0.5, hatch="///", alpha=0.6, capsize=2)
            ax.axhline(float(d["n_jobs"].max()), color="black", ls="--", lw=0.6)
            _policy_ticks(ax, x, ps)
            ax.set_title(f"{q} CPUs")
        axes[0, 0].set_ylabel("average cluster utility")
        fig.tight_layout(w_pad=0.4, rect=(0, 0, 1, 0.9))
        fig.legend(handles=[plt.Rectangle((0, 0), 1, 1, fc="white", ec="black", lw=0.5,
                                          label="utility (solid)"),
                            plt.Rectangle((0, 0), 1, 1, fc="white", ec="black", lw=0.5, hatch="///",
                                          label="effective utility (hatched)")],
                   loc="upper center", ncol=2, fontsize=7, frameon=False)
    return fig


def fig_pareto(cells: pd.DataFrame):
    """Fig. 15: average cluster utility (left) and cluster SLO violation rate in % (right) vs
    cluster size (quota, CPUs, log axis) per policy: mean over seeds, error bars = sd over seeds;
    colour, marker and line style per policy (family: dashed baselines, dash-dot MArk, solid Faro,
    dotted others)."""
    policies = style.ordered(list(dict.fromkeys(cells["policy"])))
    with plt.rc_context(style.paper_rc()):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(style.TEXT_WIDTH, 2.4))
        for p in policies:
            d = cells[cells["policy"] == p].sort_values("quota")
            kw = style.line_kw(p, ms=3.5, lw=0.9, capsize=2, alpha=0.9)
            a1.errorbar(d["quota"], d["avg_total_utility"], yerr=_err(d["avg_total_utility_std"]), **kw)
            a2.errorbar(d["quota"], 100 * d["slo_violation"], yerr=_err(100 * d["slo_violation_std"]), **kw)
        n = float(cells["n_jobs"].max())
        a1.axhline(n, color="black", ls="--", lw=0.6)
        a1.set_ylabel("average cluster utility")
        a2.set_ylabel("cluster SLO violation rate (%)")
        a2.set_ylim(bottom=0)
        quotas = sorted(int(q) for q in cells["quota"].unique())
        for a in (a1, a2):
            a.set_xlabel("cluster size (quota, CPUs, log scale)")
            a.set_xscale("log")
            a.set_xticks(quotas, [str(q) for q in quotas])
            a.minorticks_off()
        a1.set_title("Fig. 15: cluster utility vs cluster size", fontsize=7.5)
        a2.set_title("Fig. 15: cluster SLO violation vs cluster size", fontsize=7.5)
        fig.tight_layout(rect=(0, 0, 1, 0.8))
        handles, labels = a1.get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=min(6, len(labels)), frameon=False, fontsize=6.5)
    return fig


def fig_ablation(cells_by_quota: Mapping[int, Mapping[str, Mapping]], steps: Sequence[str],
                 labels: Mapping[str, str] | None = None):
    """Fig. 16: the ablation ladder, one panel per quota; bars in ladder order (each step adds one
    technique to the previous), lost utility solid and SLO violation (%) hatched, fixed N:1 limits."""
    quotas = sorted(cells_by_quota)
    multi = False
    with plt.rc_context(style.paper_rc()):
        fig, axes = plt.subplots(1, len(quotas), squeeze=False,
                                 figsize=(min(1.4 * style.TEXT_WIDTH,
                                              len(quotas) * (0.45 * len(steps) + 1.3)), 3.0))
        for k, q in enumerate(quotas):
            summ = summary_from_cells(cells_by_quota[q])
            multi = multi or bool((summ["n_seeds"] > 1).any())
            draw_headline(axes[0, k], summ, f"Fig. 16, {q} CPUs", order=steps, labels=labels,
                          ylabels=(k == 0, k == len(quotas) - 1))
        fig.tight_layout(w_pad=0.5, rect=(0, 0, 1, 0.9))
        fig.legend(handles=legend_handles(multi), loc="upper center", ncol=3, frameon=False, fontsize=7)
    return fig
