"""Fig. 11: Faro vs Cilantro, cluster SLO violation over time.

Cilantro's numbers are the artifact's logs of a real 64-CPU EKS run (per job and reporting
window: requests and requests within the SLO); ours come from this workflow's runs.  Each line
is labelled with its backend and cluster size, since the two settings differ.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from faro.plots import style
from faro.plots.timeline import smooth

CILANTRO_COLOR = "tab:purple"


def fig_cilantro(cilantro: pd.DataFrame, ours: Mapping[str, tuple[str, pd.DataFrame]], *,
                 cilantro_label: str = "Cilantro (k8s/EKS, 64 CPUs)", window: int = 5):
    """SLO violation rate per minute (rolling mean over ``window`` minutes): Cilantro's run
    (``cilantro``: :func:`faro.plots.data.cilantro_minutes`) beside ours (``ours``: label ->
    (policy, :func:`faro.plots.data.cluster_series` frame)); requests per minute below."""
    with plt.rc_context(style.paper_rc()):
        fig, (ax, ar) = plt.subplots(2, 1, sharex=True, figsize=(style.TEXT_WIDTH, 3.0),
                                     gridspec_kw={"height_ratios": [2, 1]})
        ax.plot(cilantro.index, smooth(cilantro["slo_violation"], window), color=CILANTRO_COLOR, lw=1.0,
                label=f"{cilantro_label}: mean {np.nanmean(cilantro['slo_violation']):.2f}")
        ar.plot(cilantro.index, cilantro["requests"], color=CILANTRO_COLOR, lw=0.7)
        for label, (policy, s) in ours.items():
            ax.plot(s.index, smooth(s["slo_violation"], window), color=style.color(policy), lw=1.0,
                    label=f"{label}: mean {np.nanmean(s['slo_violation']):.2f}")
            ar.plot(s.index, s["requests"], color=style.color(policy), lw=0.7)
        ax.set_ylabel("cluster SLO violation rate")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7, frameon=False, loc="upper right")
        ar.set_ylabel("requests/min")
        ar.set_yscale("log")
        ar.set_xlabel("time (minute)")
        fig.align_ylabels([ax, ar])
    return fig
