"""Figures of Faro's solver model (no run data): utility functions (Fig. 4a) and utility vs
replicas under the relaxation and the M/D/c estimate for several utilisation caps (Fig. 6)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from faro.plots import style
from faro.solver.latency import mdc_p99_latency
from faro.solver.utility import job_utilities, relaxed_utility, step_utility

SLO_S = 0.72
PROC_S = 0.18


def utility_curves(slo_s: float = SLO_S, max_factor: float = 3.0, n: int = 601) -> dict[str, np.ndarray]:
    """Latency grid (s) with the relaxed ``min(1, SLO/L)`` and step ``1[L <= SLO]`` utilities."""
    lat = np.linspace(1e-3, max_factor * slo_s, n)
    return {"latency_s": lat, "relaxed": relaxed_utility(lat, slo_s), "step": step_utility(lat, slo_s)}


def fig_utility_functions(slo_s: float = SLO_S):
    """Fig. 4a: per-request-latency utility of a job, step (unrelaxed) vs relaxed (inverse)."""
    c = utility_curves(slo_s)
    with plt.rc_context(style.paper_rc()):
        fig, ax = plt.subplots(figsize=(style.COLUMN_WIDTH, 2.2))
        ms = c["latency_s"] * 1000
        ax.plot(ms, c["step"], color="tab:gray", lw=1.4, ls="--", label="step: 1[L <= SLO]")
        ax.plot(ms, c["relaxed"], color="tab:blue", lw=1.4, label="relaxed: min(1, SLO/L)")
        ax.axvline(slo_s * 1000, color="black", lw=0.5, ls=":")
        ax.text(slo_s * 1000, 0.05, f" SLO {slo_s * 1000:.0f} ms", fontsize=7)
        ax.set_xlabel("p99 latency L (ms)")
        ax.set_ylabel("utility")
        ax.set_ylim(-0.03, 1.08)
        ax.legend(frameon=False, loc="upper right")
        ax.set_title("Fig. 4a: utility of a job vs its p99 latency", fontsize=8)
    return fig


def utility_vs_replicas(rate: float, caps: Sequence[float], x: np.ndarray, *, proc_s: float = PROC_S,
                        slo_s: float = SLO_S) -> dict[str, np.ndarray]:
    """Relaxed utility and estimated p99 (s) of one job at ``rate`` req/s for real-valued replicas
    ``x``, per utilisation cap, plus the step utility at the paper's cap (0.95)."""
    out: dict[str, np.ndarray] = {"x": x}
    rates = np.array([[rate]])
    for cap in caps:
        u = job_utilities(x[:, None], rates, proc_s=proc_s, slo_s=slo_s, rho_cap=cap)
        out[f"relaxed_{cap:g}"] = u[:, 0]
        out[f"latency_{cap:g}"] = mdc_p99_latency(rate, x, proc_s, rho_cap=cap)
    out["step_0.95"] = job_utilities(x[:, None], rates, proc_s=proc_s, slo_s=slo_s, relaxed=False)[:, 0]
    return out


def fig_utility_vs_replicas(rate: float = 20.0, caps: Sequence[float] = (0.8, 0.9, 0.95, 0.99),
                            max_replicas: float = 8.0):
    """Fig. 6: a job's utility vs its (real-valued) replica count under the M/D/c latency estimate,
    for several utilisation caps, relaxed (lines) and step at cap 0.95 (dashed); below, the
    estimated p99 latency against the SLO."""
    x = np.linspace(0.5, max_replicas, 400)
    d = utility_vs_replicas(rate, caps, x)
    cmap = plt.get_cmap("viridis")
    with plt.rc_context(style.paper_rc()):
        fig, (a1, a2) = plt.subplots(2, 1, sharex=True, figsize=(style.COLUMN_WIDTH, 3.4),
                                     gridspec_kw={"height_ratios": [1.4, 1]})
        for k, cap in enumerate(caps):
            col = cmap(k / max(1, len(caps) - 1) * 0.9)
            a1.plot(x, d[f"relaxed_{cap:g}"], color=col, lw=1.1, label=f"relaxed, cap {cap:g}")
            a2.plot(x, d[f"latency_{cap:g}"] * 1000, color=col, lw=1.1)
        a1.plot(x, d["step_0.95"], color="black", lw=1.0, ls="--", label="step, cap 0.95")
        busy = rate * PROC_S
        for a in (a1, a2):
            a.axvline(busy, color="0.5", lw=0.5, ls=":")
        a1.text(busy, 0.02, f" load {busy:.1f}", fontsize=7, color="0.4")
        a1.set_ylabel("utility")
        a1.set_ylim(0, 1.05)
        a1.legend(fontsize=6, frameon=False, loc="lower right")
        a1.set_title(f"Fig. 6: one job at {rate:g} req/s, {PROC_S * 1000:.0f} ms per request", fontsize=8)
        a2.axhline(SLO_S * 1000, color="tab:red", lw=0.6, ls="--")
        a2.set_yscale("log")
        a2.set_ylabel("est. p99 (ms)")
        a2.set_xlabel("replicas x (real-valued)")
        fig.align_ylabels([a1, a2])
    return fig
