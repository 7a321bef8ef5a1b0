"""Comparisons across runs of one cell or two backends: the simulator against a real backend
(paper Fig. 13, from Table 7's numbers) and the latency each job sees per policy.
Pure functions: frames in, Figure out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from faro.plots import style


def fig_sim_vs_real(det: pd.DataFrame, labels: tuple[str, str] = ("sim", "real")):
    """Fig. 13: per cell (policy: colour and marker; quota: the number next to it) our simulator's
    mean over seeds (x) against the other backend's (y), lost cluster utility (left) and cluster
    SLO violation rate in % (right); error bars = sd over each side's seeds; dashed: y = x.

    ``det``: :func:`faro.plots.tables.sim_vs_real`'s per-cell frame.
    """
    a, b = labels
    policies = style.ordered(list(dict.fromkeys(det["policy"])))
    panels = [("lost_utility", "lost cluster utility", 1.0),
              ("slo_violation", "cluster SLO violation rate (%)", 100.0)]
    with plt.rc_context(style.paper_rc()):
        fig, axes = plt.subplots(1, 2, figsize=(style.TEXT_WIDTH * 0.85, 3.0))
        for ax, (col, name, scale) in zip(axes, panels):
            x = det[f"{col}_{a}"].to_numpy(dtype=float) * scale
            y = det[f"{col}_{b}"].to_numpy(dtype=float) * scale
            for p in policies:
                m = (det["policy"] == p).to_numpy()
                ax.errorbar(x[m], y[m], xerr=det.loc[m, f"{col}_{a}_std"].to_numpy(dtype=float) * scale,
                            yerr=det.loc[m, f"{col}_{b}_std"].to_numpy(dtype=float) * scale, ls="none",
                            marker=style.marker(p), color=style.color(p), ms=5, elinewidth=0.6, capsize=1.5,
                            label=style.label(p))
                for xi, yi, q in zip(x[m], y[m], det.loc[m, "quota"]):
                    ax.annotate(f"{int(q)}", (xi, yi), xytext=(3, -7), textcoords="offset points",
                                fontsize=5.5)
            hi = 1.08 * float(np.nanmax(np.r_[x, y]))
            ax.plot([0, hi], [0, hi], color="black", lw=0.5, ls="--")
            ax.set_xlim(0, hi)
            ax.set_ylim(0, hi)
            ax.set_aspect("equal")
            ax.set_xlabel(f"{name}, {a}")
            ax.set_ylabel(f"{name}, {b}")
        handles, names = axes[0].get_legend_handles_labels()
        fig.suptitle(f"Fig. 13: {a} vs {b} (numbers next to points: quota, CPUs)", fontsize=8)
        fig.tight_layout(rect=(0, 0, 0.78, 1))
        fig.legend(handles, names, loc="center left", bbox_to_anchor=(0.78, 0.5), frameon=False, fontsize=6.5)
    return fig


def fig_job_latency(by_quota: Mapping[int, Mapping[str, pd.DataFrame]], *,
                    slo_ms: Mapping[str, float] | float, jobs: Sequence[str] | None = None):
    """Per quota (one panel each), per job and policy: the p99 latency of the job's successful
    requests (marker, log scale) with its p50 (the line below it); dashed: the job's SLO.
    ``by_quota``: quota -> policy -> :func:`faro.plots.data.job_latency` frame (one seed)."""
    quotas = sorted(by_quota)
    policies = style.ordered(list(dict.fromkeys(p for q in quotas for p in by_quota[q])))
    first = next(iter(by_quota[quotas[0]].values()))
    jobs = list(jobs) if jobs is not None else list(first["job"])
    n_p = len(policies)
    offs = (np.arange(n_p) - (n_p - 1) / 2) * (0.8 / max(n_p, 1))
    with plt.rc_context(style.paper_rc()):
        fig, axes = plt.subplots(len(quotas), 1, squeeze=False, sharex=True, sharey=True,
                                 figsize=(style.TEXT_WIDTH, 0.9 + 1.5 * len(quotas)))
        for ax, q in zip(axes[:, 0], quotas):
            for k, p in enumerate(policies):
                d = by_quota[q].get(p)
                if d is None:
                    continue
                d = d.set_index("job").reindex(jobs)
                x = np.arange(len(jobs)) + offs[k]
                ax.vlines(x, d["p50"], d["p99"], color=style.color(p), lw=0.6)
                ax.scatter(x, d["p99"], marker=style.marker(p), color=style.color(p), s=12, linewidths=0,
                           label=style.label(p), zorder=3)
            slo = [float(slo_ms[j]) if isinstance(slo_ms, Mapping) else float(slo_ms) for j in jobs]
            ax.hlines(slo, np.arange(len(jobs)) - 0.45, np.arange(len(jobs)) + 0.45, color="black", lw=0.7,
                      ls="--")
            ax.set_yscale("log")
            ax.set_ylabel("latency (ms)")
            ax.set_title(f"{q} CPUs", fontsize=7.5, pad=2)
            ax.grid(axis="y", lw=0.3, color="0.85", which="both")
        axes[-1, 0].set_xticks(range(len(jobs)), [style.job_label(j) for j in jobs], fontsize=6.5)
        handles, names = axes[0, 0].get_legend_handles_labels()
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()), h_pad=0.4)
        fig.legend(handles, names, loc="upper center", ncol=min(6, len(names)), frameon=False, fontsize=6.5)
    return fig
