"""Views of the whole matrix at a glance: the policy x quota overview (SLO%, lost utility and
violation rate), the spread over seeds, and the replica allocation of every policy of one quota
side by side.  Pure functions: frames in, Figure out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from faro.plots import style

#: (column, title, colormap, scale to display units, format); limits fixed per metric (see fig_overview)
OVERVIEW_METRICS = [
    ("slo_rate", "SLO%\n(requests within the SLO)", "RdYlGn", 1.0, ".1f"),
    ("lost_utility", "lost cluster utility\n(0 to N jobs)", "RdYlGn_r", 1.0, ".2f"),
    ("slo_violation", "cluster SLO violation\nrate (%)", "RdYlGn_r", 100.0, ".1f"),
]


def _text_color(rgba) -> str:
    r, g, b = rgba[:3]
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.45 else "black"


def _beyond_separator(ax, policies: Sequence[str], n_cols: int) -> None:
    """A line under the paper's policies when others (beyond the paper) follow."""
    k = sum(style.is_paper_policy(p) for p in policies)
    if 0 < k < len(policies):
        ax.axhline(k - 0.5, color="black", lw=1.2)


def fig_overview(cells: pd.DataFrame):
    """Policy x quota grid of SLO% (0-100), lost cluster utility (0-N) and cluster SLO violation
    rate (0-100 %), one panel each, colour limits fixed so that a colour means the same in every
    results root; every cell shows its mean over seeds (and ± sd with several seeds).

    ``cells``: :func:`faro.plots.data.cell_summary` of ``slo_rate``, ``lost_utility``,
    ``slo_violation`` and ``n_jobs``.
    """
    policies = style.ordered(list(dict.fromkeys(cells["policy"])))
    quotas = sorted(int(q) for q in cells["quota"].unique())
    n = float(cells["n_jobs"].max())
    t = cells.set_index(["policy", "quota"])
    multi = bool((cells["n_seeds"] > 1).any())
    limits = {"slo_rate": (0.0, 100.0), "lost_utility": (0.0, n), "slo_violation": (0.0, 100.0)}
    cw = 0.62 if multi else 0.5
    with plt.rc_context(style.paper_rc()):
        fig, axes = plt.subplots(1, 3, sharey=True, figsize=(1.3 + 3 * max(1.3, cw * len(quotas) + 0.35),
                                                             0.9 + 0.27 * len(policies)))
        for ax, (col, title, cmap, scale, fmt) in zip(axes, OVERVIEW_METRICS):
            mat = np.full((len(policies), len(quotas)), np.nan)
            sd = np.full_like(mat, np.nan)
            for i, p in enumerate(policies):
                for j, q in enumerate(quotas):
                    if (p, q) in t.index:
                        mat[i, j] = float(t.loc[(p, q), col]) * scale
                        sd[i, j] = float(t.loc[(p, q), f"{col}_std"]) * scale
            lo, hi = limits[col]
            cm = plt.get_cmap(cmap)
            ax.imshow(mat, cmap=cm, vmin=lo, vmax=hi, aspect="auto", interpolation="nearest")
            for i in range(len(policies)):
                for j in range(len(quotas)):
                    v = mat[i, j]
                    if not np.isfinite(v):
                        ax.text(j, i, "–", ha="center", va="center", fontsize=6)
                        continue
                    txt = format(v, fmt) + (f"\n± {format(sd[i, j], fmt)}" if multi else "")
                    ax.text(j, i, txt, ha="center", va="center", fontsize=5.5 if multi else 6.5,
                            linespacing=0.9, color=_text_color(cm((v - lo) / (hi - lo) if hi > lo else 0.0)))
            ax.set_xticks(range(len(quotas)), [str(q) for q in quotas])
            ax.set_xlabel("quota (CPUs)")
            ax.set_title(title, fontsize=7.5)
            ax.tick_params(length=0)
            _beyond_separator(ax, policies, len(quotas))
        axes[0].set_yticks(range(len(policies)),
                           [style.label(p) + ("" if style.is_paper_policy(p) else " †") for p in policies])
        fig.tight_layout(w_pad=0.6)
    return fig


def fig_seed_spread(runs: pd.DataFrame):
    """Per quota (columns) and policy: every seed's SLO% (top) and lost cluster utility (bottom)
    as dots, the mean as a bar across them and the sample sd as a vertical interval.

    ``runs``: a stats table with :func:`faro.plots.data.with_derived` columns (one row per run).
    """
    policies = style.ordered(list(dict.fromkeys(runs["policy"])))
    quotas = sorted(int(q) for q in runs["quota"].unique())
    rows = [("slo_rate", "SLO% per seed"), ("lost_utility", "lost utility per seed")]
    with plt.rc_context(style.paper_rc()):
        fig, axes = plt.subplots(2, len(quotas), squeeze=False, sharex=True,
                                 figsize=(min(1.5 * style.TEXT_WIDTH,
                                              0.28 * len(policies) * len(quotas) + 1.4), 4.2))
        for c, q in enumerate(quotas):
            for r, (col, name) in enumerate(rows):
                ax = axes[r, c]
                for k, p in enumerate(policies):
                    v = runs[(runs["quota"] == q) & (runs["policy"] == p)][col].dropna().to_numpy(dtype=float)
                    if v.size == 0:
                        continue
                    jit = np.linspace(-0.18, 0.18, v.size) if v.size > 1 else np.zeros(1)
                    ax.scatter(k + jit, v, s=9, marker=style.marker(p), color=style.color(p), linewidths=0,
                               zorder=3)
                    m = float(v.mean())
                    ax.plot([k - 0.3, k + 0.3], [m, m], color="black", lw=0.8, zorder=4)
                    if v.size > 1:
                        sd = float(v.std(ddof=1))
                        ax.plot([k, k], [m - sd, m + sd], color="black", lw=0.6, zorder=4)
                ax.grid(axis="y", lw=0.3, color="0.85")
                if c == 0:
                    ax.set_ylabel(name)
                if r == 0:
                    ax.set_title(f"{q} CPUs")
                ax.set_xticks(range(len(policies)),
                              [style.label(p) for p in policies] if r == 1 else [""] * len(policies),
                              rotation=90, fontsize=6.5)
        fig.tight_layout(h_pad=0.5, w_pad=0.5)
    return fig


def fig_replica_comparison(steps_by_policy: Mapping[str, pd.DataFrame], load: pd.DataFrame, *, quota: int,
                           title: str):
    """Replica allocation of every policy of one quota side by side (one seed).

    Top: each policy's total active replicas over time (its colour and line style), the total
    offered load in CPUs (grey: requests/s x processing time, the replicas the input keeps busy)
    and the quota (dashed, on a tick); whole-number ticks.  Below: per policy a jobs x time
    heatmap of active replicas, after the offered load per job, all on one colour scale.

    ``steps_by_policy``: policy -> time (trace minutes) x job replicas
    (:func:`faro.plots.data.replica_steps`); ``load``: minute x job offered load (CPUs).
    """
    from faro.plots.timeline import integer_ticks

    policies = style.ordered(list(steps_by_policy))
    jobs = list(load.columns)
    top = max(1.0, float(np.nanmax(load.to_numpy())),
              *(float(s.to_numpy().max()) for s in steps_by_policy.values()))
    panels = [("offered load (CPUs)", load)] + [(style.label(p), steps_by_policy[p]) for p in policies]
    cols = 2 if len(panels) > 4 else 1
    nrows = (len(panels) + cols - 1) // cols
    row_h = 0.09 * len(jobs) + 0.35
    with plt.rc_context(style.paper_rc()):
        fig = plt.figure(figsize=(style.TEXT_WIDTH, 2.3 + row_h * nrows))
        gs = fig.add_gridspec(1 + nrows, cols, height_ratios=[1.9] + [row_h] * nrows, hspace=0.45,
                              wspace=0.12, left=0.08, right=0.88, top=0.9, bottom=0.06)
        ax = fig.add_subplot(gs[0, :])
        for p in policies:
            st = steps_by_policy[p]
            ax.step(st.index, st.sum(axis=1), where="post", color=style.color(p), ls=style.linestyle(p),
                    lw=0.8, label=style.label(p))
        ax.plot(load.index, load.sum(axis=1), color="0.6", lw=0.7, label="offered load (CPUs)")
        ax.axhline(quota, color="black", ls="--", lw=0.6, label=f"quota {quota}")
        ymax = max(float(quota), *(float(s.sum(axis=1).max()) for s in steps_by_policy.values()),
                   float(load.sum(axis=1).max()))
        ax.set_ylim(0, ymax * 1.08 + 1)
        integer_ticks(ax, extra=quota)
        ax.set_ylabel("total replicas / CPUs")
        ax.set_xlim(float(load.index.min()), float(load.index.max()) + 1)
        style.legend_outside(ax, ncol=6, fontsize=6)
        rows = -(-(len(policies) + 2) // 6)  # legend rows: policies, offered load, quota
        ax.set_title(f"{title}: active replicas (quota {quota})", fontsize=8, pad=8 + 11 * rows)
        heat = []
        for k, (name, mat) in enumerate(panels):
            a = fig.add_subplot(gs[1 + k // cols, k % cols], sharex=heat[0] if heat else None,
                                sharey=heat[0] if heat else None)
            m = mat[jobs] if set(jobs) <= set(mat.columns) else mat
            x = m.index.to_numpy(dtype=float)
            im = a.imshow(m.T.to_numpy(dtype=float), aspect="auto", interpolation="nearest", cmap="viridis",
                          vmin=0, vmax=top, extent=(x.min(), x.max(), len(jobs) - 0.5, -0.5))
            a.set_title(f"{name}: mean total {float(m.sum(axis=1).mean()):.1f}", fontsize=7, pad=2)
            a.set_yticks(range(len(jobs)), [style.job_label(j).replace("job ", "") for j in jobs], fontsize=5)
            a.tick_params(labelsize=6)
            if k % cols == 0:
                a.set_ylabel("job", fontsize=7)
            if k + cols >= len(panels):
                a.set_xlabel("time (trace minute)")
            else:
                a.tick_params(labelbottom=False)
            heat.append(a)
        cax = fig.add_axes((0.9, 0.06, 0.015, 0.55))
        fig.colorbar(im, cax=cax, label="replicas / CPUs")
    return fig
