"""Solver figures: time vs optimality (Fig. 5) and hierarchical solving (Fig. 7), and the small
benchmark that produces Fig. 7's data."""

from __future__ import annotations

import time
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from faro.plots import style

METHOD_COLORS = {"cobyla": "tab:blue", "slsqp": "tab:orange", "de": "tab:green"}
GROUP_COLORS = {1: "black", 3: "tab:orange", 5: "tab:green", 10: "tab:blue"}


def _setting_color(setting: str, k: int) -> str:
    for m, c in METHOD_COLORS.items():
        if setting == m:
            return c
    greens = ["tab:green", "tab:olive", "darkgreen", "tab:cyan"]
    return greens[k % len(greens)] if setting.startswith("de") else style._EXTRA[k % len(style._EXTRA)]


def setting_label(setting: str) -> str:
    """Readable name of a solver setting: ``de_maxiter20`` -> "differential evolution, 20 iterations"."""
    import re

    names = {"cobyla": "COBYLA", "slsqp": "SLSQP", "de": "differential evolution"}
    m = re.fullmatch(r"de_maxiter(\d+)", str(setting))
    if m:
        return f"differential evolution, {m.group(1)} iterations"
    return names.get(str(setting), str(setting))


def fig_solver_optimality(df: pd.DataFrame):
    """Fig. 5: decision time vs normalised optimality per solver setting and utility (relaxed filled,
    step hollow); small points = decision instances, large markers = medians, error bars = the
    10th-90th percentile range over instances (both axes)."""
    if "setting" not in df.columns:
        df = df.assign(setting=df["method"])
    settings = list(dict.fromkeys(df["setting"]))
    with plt.rc_context(style.paper_rc()):
        fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 2.6))
        for k, s in enumerate(settings):
            col = _setting_color(s, k)
            for util, filled in (("relaxed", True), ("step", False)):
                d = df[(df["setting"] == s) & (df["utility"] == util)]
                if d.empty:
                    continue
                fc = col if filled else "none"
                ax.scatter(d["seconds"], d["normalised_optimality"], s=7, color=col, alpha=0.4, linewidths=0)
                mx, my = d["seconds"].median(), d["normalised_optimality"].median()
                xerr = [[mx - d["seconds"].quantile(0.1)], [d["seconds"].quantile(0.9) - mx]]
                yerr = [[my - d["normalised_optimality"].quantile(0.1)],
                        [d["normalised_optimality"].quantile(0.9) - my]]
                ax.errorbar(mx, my, xerr=xerr, yerr=yerr, fmt="o", ms=5, mfc=fc, mec=col, ecolor=col, lw=0.7,
                            capsize=1.5, label=f"{setting_label(s)}, {util}")
        ax.set_xscale("log")
        ax.set_xlabel("decision time (s)")
        ax.set_ylabel("normalised optimality")
        ax.axhline(1.0, color="black", lw=0.5, ls="--")
        ax.set_title("Fig. 5: markers = medians, bars = 10th-90th percentiles", fontsize=7)
        style.legend_outside(ax, ncol=1, where="right", fontsize=6)
    return fig


def tile_rates(counts: np.ndarray, n_jobs: int, start: int, steps: int = 7) -> np.ndarray:
    """(n_jobs, steps) rates (req/s) of the trace's series repeated to ``n_jobs`` jobs (the paper's
    scale-out settings repeat the 10 series), from minute ``start``."""
    reps = -(-n_jobs // counts.shape[0])
    tiled = np.tile(counts, (reps, 1))[:n_jobs]
    return tiled[:, start : start + steps] / 60.0


def hierarchical_benchmark(counts: np.ndarray, *, job_counts: Sequence[int] = (10, 20, 50, 100),
                           groups: Sequence[int] = (1, 3, 5, 10), starts: Sequence[int] = (60, 180, 300),
                           cpus_per_job: float = 3.2, objective: str = "sum", proc_s: float = 0.18,
                           slo_s: float = 0.72) -> pd.DataFrame:
    """Objective and wall time of a Faro decision for many jobs, flat (G = 1) and hierarchical
    (G groups), one row per (n_jobs, G, instance).

    ``counts``: (series, minutes) per-minute counts; quota = round(cpus_per_job x n_jobs); the
    decision starts from an even split.  ``relative_objective`` = objective / the flat one.
    """
    from faro.solver.solve import solve, solve_hierarchical

    counts = np.asarray(counts, dtype=float)
    # decision times inside the trace (a short trace: its first minute)
    starts = [t for t in starts if t + 7 <= counts.shape[1]] or [0]
    rows = []
    solve(tile_rates(counts, 10, starts[0]), np.full(10, 3), 32, objective=objective, slo_s=slo_s,
          proc_s=proc_s)  # warm-up (JIT, caches) outside the timings
    for n in job_counts:
        quota = int(round(cpus_per_job * n))
        cur = np.full(n, max(1, quota // n))
        for inst, t in enumerate(starts):
            rates = tile_rates(counts, n, t)
            for g in groups:
                t0 = time.perf_counter()
                if g == 1:
                    res = solve(rates, cur, quota, objective=objective, slo_s=slo_s, proc_s=proc_s)
                else:
                    res = solve_hierarchical(rates, cur, quota, groups=g, objective=objective, slo_s=slo_s,
                                             proc_s=proc_s)
                sec = time.perf_counter() - t0
                rows.append(dict(n_jobs=n, quota=quota, groups=g, instance=inst, start_minute=t,
                                 objective=float(res.objective), seconds=sec, n_evals=int(res.n_evals),
                                 used=int(res.replicas.sum())))
    df = pd.DataFrame(rows)
    flat = df[df["groups"] == 1].set_index(["n_jobs", "instance"])["objective"]
    base = flat.loc[list(zip(df["n_jobs"], df["instance"]))].to_numpy()
    df["relative_objective"] = df["objective"].to_numpy() / base
    return df


def fig_hierarchical(df: pd.DataFrame):
    """Fig. 7: objective relative to flat solving (median over decision instances) and decision
    time (median) vs number of jobs, per number of groups G."""
    agg = df.groupby(["groups", "n_jobs"]).agg(rel=("relative_objective", "median"),
                                               rel_min=("relative_objective", "min"),
                                               sec=("seconds", "median")).reset_index()
    with plt.rc_context(style.paper_rc()):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(style.TEXT_WIDTH * 0.75, 2.3))
        for g in sorted(agg["groups"].unique()):
            d = agg[agg["groups"] == g].sort_values("n_jobs")
            lab = "flat (G = 1)" if g == 1 else f"G = {g}"
            col = GROUP_COLORS.get(int(g), None)
            a1.plot(d["n_jobs"], d["rel"], marker="o", ms=3, lw=1, color=col, label=lab)
            a2.plot(d["n_jobs"], d["sec"], marker="o", ms=3, lw=1, color=col, label=lab)
        a1.set_ylabel("objective / flat objective (median)")
        a2.set_ylabel("decision time (s, median)")
        a2.set_yscale("log")
        for a in (a1, a2):
            a.set_xlabel("number of jobs")
            a.set_xticks(sorted(agg["n_jobs"].unique()))
        a2.legend(fontsize=7, frameon=False)
        fig.suptitle("Fig. 7: flat vs hierarchical solving (medians over decision instances)", fontsize=8)
        fig.tight_layout()
    return fig
