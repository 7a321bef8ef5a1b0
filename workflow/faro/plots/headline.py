"""The paper's headline chart: lost cluster utility and cluster SLO violation rate per policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from faro.plots import style

UTILITY_PREFIX = "avg_util_"


def n_jobs_of(stats: Mapping) -> int:
    return sum(1 for k in stats if k.startswith(UTILITY_PREFIX) and not k.endswith("_std"))


def headline_values(stats: Mapping) -> tuple[float, float, float, float]:
    """(lost utility, its std, SLO violation rate, its std) of one cell's stats."""
    n = n_jobs_of(stats)
    lost = n - float(stats["avg_total_utility"])
    viol = 1.0 - float(stats["avg_total_slo_rate"])
    return lost, float(stats.get("avg_total_utility_std", 0.0)), viol, float(stats.get("avg_total_slo_rate_std", 0.0))


def plot_headline(cells: Mapping[str, Mapping], title: str):
    """Dual-axis bars: lost utility (left) and SLO violation rate (right) for each policy."""
    policies = style.ordered(list(cells))
    vals = np.array([headline_values(cells[p]) for p in policies])
    with plt.rc_context(style.paper_rc()):
        fig, ax = plt.subplots(figsize=(max(3.4, 0.55 * len(policies) + 1.2), 2.4))
        ax2 = ax.twinx()
        x = np.arange(len(policies))
        w = 0.38
        colors = [style.color(p) for p in policies]
        ax.bar(x - w / 2, vals[:, 0], w, yerr=vals[:, 1], color=colors, edgecolor="black", linewidth=0.5,
               capsize=2, label="lost cluster utility")  # fmt: skip
        ax2.bar(x + w / 2, vals[:, 2], w, yerr=vals[:, 3], color=colors, edgecolor="black", linewidth=0.5,
                hatch="///", alpha=0.6, capsize=2, label="cluster SLO violation rate")  # fmt: skip
        ax.set_xticks(x, [style.label(p) for p in policies], rotation=30, ha="right")
        ax.set_ylabel("lost cluster utility")
        ax2.set_ylabel("cluster SLO violation rate")
        ax.set_ylim(0, max(0.5, vals[:, 0].max() * 1.2))
        ax2.set_ylim(0, max(0.05, vals[:, 2].max() * 1.2))
        ax.set_title(title)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, ["lost utility (solid)", "SLO violation (hatched)"], loc="upper right", frameon=False)
    return fig


def headline_from_files(paths: Sequence[str], policies: Sequence[str], title: str):
    from faro.stats import read_stats

    cells = {p: read_stats(path) for p, path in zip(policies, paths, strict=True)}
    return plot_headline(cells, title)
