"""The per-cell "why" figure: one job's load, forecast, requested and active replicas, what the
controller did and the job's SLO violation, on one time axis.

Inputs are the run's decision records (``decisions.parquet``, :mod:`faro.control.records`)
and its per-minute bins (``binned.parquet``, :mod:`faro.model.binned`). :func:`fig_why` is pure
(returns a Figure, touches no file); the rule's entry point is
:func:`faro.workflow.plot_entry.plot_why`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from faro.plots import style
from faro.plots.io import fixed_layout
from faro.plots.timeline import integer_ticks

#: outcomes where the controller did not carry out the policy's request in full
SHORT = ("clamped", "requeued", "busy", "dropped")


def worst_job(binned: pd.DataFrame) -> str:
    """The job with the most SLO-violating requests in the run (ties: the first)."""
    b = binned.copy()
    b["violated"] = b["requests"] * (1.0 - b["slo_frac"].fillna(1.0))
    return str(b.groupby("job", observed=True)["violated"].sum().idxmax())


def fig_why(decisions: pd.DataFrame, binned: pd.DataFrame, job: str, *, unit_time: float, title: str):
    """Four stacked panels for ``job`` over trace minutes (``time_s`` / 60): requests per minute
    with the forecast's peak (its rates are per ``unit_time``-th of a trace minute), replicas
    (requested by the policy, allocated by the controller, active) with the ledger's free CPUs
    (whole-number ticks), the ticks where the controller carried out less than asked, and the
    SLO violation rate per minute in %. Legends sit right of the panels; the layout is fixed in
    inches (:func:`faro.plots.io.fixed_layout`): one of these is drawn per cell."""
    d = decisions[decisions["job"] == job].sort_values("time_s")
    b = binned[binned["job"] == job].sort_values("minute")
    t = d["time_s"].to_numpy() / 60.0
    with plt.rc_context(style.paper_rc()):
        fig, axes = plt.subplots(4, 1, sharex=True, figsize=(style.TEXT_WIDTH, 5.6),
                                 gridspec_kw={"height_ratios": [1.2, 1.4, 0.8, 1.0]})
        ax = axes[0]
        ax.plot(b["minute"], b["requests"], color="0.3", lw=0.8, label="requests / min")
        fc = d.dropna(subset=["forecast_peak_rps"])
        if len(fc):
            ax.step(fc["time_s"] / 60.0, fc["forecast_peak_rps"] * unit_time, where="post",
                    color="tab:purple", lw=1.0,
                    label=f"forecast peak (q {fc['forecast_quantile'].iloc[-1]:.2g})")
        ax.set_ylabel("load")
        ax = axes[1]
        req = d["requested"].ffill()
        if req.notna().any():
            ax.step(t, req, where="post", color="tab:red", lw=0.9, label="requested by the policy")
        ax.step(t, d["applied"], where="post", color="tab:blue", lw=1.0, label="allocated")
        ax.step(t, d["active_replicas"], where="post", color="tab:green", lw=0.8, ls="--", label="active")
        ax.step(t, d["free_cpus_after"], where="post", color="0.6", lw=0.7, label="ledger's free CPUs")
        ax.set_ylabel("replicas / CPUs")
        integer_ticks(ax, nbins=5)
        ax = axes[2]
        last = d["outcome"].str.split("+").str[-1]
        for k, outcome in enumerate(SHORT):
            pts = d[last == outcome]
            ax.scatter(pts["time_s"] / 60.0, np.full(len(pts), k), s=5, label=f"{outcome} ({len(pts)} ticks)")
        ax.set_yticks(range(len(SHORT)), SHORT)
        ax.set_ylim(-0.7, len(SHORT) - 0.3)
        ax.set_ylabel("not in full")
        ax = axes[3]
        ax.fill_between(b["minute"], 100.0 * (1.0 - b["slo_frac"].fillna(1.0)), step="post", color="tab:red",
                        alpha=0.5, lw=0)
        ax.set_ylim(0, 100)
        ax.set_yticks([0, 50, 100])
        ax.set_ylabel("SLO viol. (%)")
        ax.set_xlabel("trace minute")
        axes[0].set_title(title)
        for ax in axes[:3]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.align_ylabels(axes)
    return fixed_layout(fig, left=0.95, right=1.9, bottom=0.45, top=0.3, hspace=0.15)
