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

#: black: not the colour of any policy of the matrix
CILANTRO_COLOR = "black"


def fig_cilantro(cilantro: pd.DataFrame, ours: Mapping[str, tuple[str, pd.DataFrame]], *,
                 cilantro_label: str = "Cilantro (k8s/EKS, 64 CPUs)", window: int = 5):
    """SLO violation rate per minute (rolling mean over ``window`` minutes): Cilantro's run
    (``cilantro``: :func:`faro.plots.data.cilantro_minutes`) beside ours (``ours``: label ->
    (policy, :func:`faro.plots.data.cluster_series` frame)); requests per minute below."""
    rate_c = float(np.nanmean(cilantro["requests"]))
    with plt.rc_context(style.paper_rc()):
        fig, (ax, ar) = plt.subplots(2, 1, sharex=True, figsize=(style.TEXT_WIDTH, 3.3),
                                     gridspec_kw={"height_ratios": [2, 1]})
        ax.plot(cilantro.index, 100 * smooth(cilantro["slo_violation"], window), color=CILANTRO_COLOR, lw=1.0,
                ls=(0, (1, 1)),
                label=f"{cilantro_label}: mean {100 * np.nanmean(cilantro['slo_violation']):.1f}%, "
                                      f"{rate_c:,.0f} req/min")
        ar.plot(cilantro.index, cilantro["requests"], color=CILANTRO_COLOR, lw=0.7, ls=(0, (1, 1)))
        for label, (policy, s) in ours.items():
            rate = float(np.nanmean(s["requests"]))
            ax.plot(s.index, 100 * smooth(s["slo_violation"], window), color=style.color(policy),
                    ls=style.linestyle(policy), lw=1.0,
                    label=f"{label}: mean {100 * np.nanmean(s['slo_violation']):.1f}%, {rate:,.0f} req/min "
                          f"({rate / rate_c:.1f}x Cilantro's)")
            ar.plot(s.index, s["requests"], color=style.color(policy), ls=style.linestyle(policy), lw=0.7)
        ax.set_ylabel("cluster SLO violation rate (%)")
        ax.set_title("Fig. 11: Faro vs Cilantro", fontsize=8, pad=8 + 12 * (1 + len(ours)))
        ax.set_ylim(0, 102)
        style.legend_outside(ax, ncol=1, fontsize=6.5)
        ar.set_ylabel("requests/min")
        ar.set_yscale("log")
        ar.set_xlabel("time (minute)")
        fig.align_ylabels([ax, ar])
    return fig
