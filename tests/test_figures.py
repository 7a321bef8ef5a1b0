"""Figures a reader can trust: legends never cover data, paired panels share limits, every policy
keeps its colour across figures, PDFs embed TrueType fonts, replica axes have whole-number
ticks, unknown policies get a style of their own; and ours-vs-the-paper on hand-made numbers.

Small synthetic frames only (no workflow run)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from faro.plots import style  # noqa: E402
from faro.plots.data import cell_summary, with_derived  # noqa: E402
from faro.plots.fidelity import (  # noqa: E402
    applicable_cells,
    display_fidelity,
    fidelity_table,
    fig_fidelity,
    load_references,
    tolerance,
)
from faro.plots.headline import fig_headline_runs, fig_headline_settings, summary_from_runs  # noqa: E402
from faro.plots.io import save  # noqa: E402
from faro.plots.overview import fig_overview, fig_replica_comparison, fig_seed_spread  # noqa: E402
from faro.plots.summary import fig_pareto  # noqa: E402
from faro.plots.timeline import fig_cluster_utility  # noqa: E402

PAPER = list(style.PAPER_POLICIES)
POLICIES = PAPER + ["k8s_hpa", "my_new_policy"]
JOBS = ["j0", "j1", "j2", "j3"]
QUOTAS = [16, 32]


def _runs(policies=POLICIES, quotas=QUOTAS, seeds=(1, 2, 3)) -> pd.DataFrame:
    """A stats table: better policies later in the list, more CPUs better, seed noise."""
    rng = np.random.default_rng(0)
    rows = []
    for q in quotas:
        for k, p in enumerate(policies):
            for s in seeds:
                good = min(0.99, 0.35 + 0.05 * k + 0.01 * q + 0.01 * rng.standard_normal())
                row = {"experiment": "x", "backend": "sim", "quota": q, "policy": p, "seed": s,
                       "avg_total_utility": good * len(JOBS), "avg_total_slo_rate": good,
                       "slo_rate": 100 * good - 2, "p99": 500.0, "failed": 10, "avg_used_replicas": q - 1.0,
                       "avg_total_effective_utility": good * len(JOBS) - 0.1}
                for j in JOBS:
                    row[f"avg_util_{j}"] = good
                    row[f"avg_slo_rate_{j}"] = good
                rows.append(row)
    return with_derived(pd.DataFrame(rows))


def _binned(policy_shift: float, minutes: int = 60) -> pd.DataFrame:
    rows = []
    for j, job in enumerate(JOBS):
        for m in range(minutes):
            u = min(1.0, 0.5 + policy_shift + 0.3 * math.sin(m / 7 + j))
            rows.append((job, m, 100 + 10 * j, 0, u, u, u))
    return pd.DataFrame(rows,
                        columns=["job", "minute", "requests", "failed", "slo_frac", "util", "effective_util"])


# --------------------------------------------------------------------------- geometry helpers


def _legends(fig):
    out = list(fig.legends)
    out += [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return out


def _data_points(ax) -> np.ndarray:
    """Display coordinates of the plotted data of ``ax``: line vertices, scatter offsets, bar corners."""
    pts = []
    for line in ax.get_lines():
        xy = np.asarray(line.get_xydata(), dtype=float)
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy):
            pts.append(line.get_transform().transform(xy))
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            off = np.asarray(coll.get_offsets(), dtype=float)
            pts.append(coll.get_offset_transform().transform(off[np.isfinite(off).all(axis=1)]))
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_height() > 0 and patch.get_width() > 0:
            bb = patch.get_window_extent()
            pts.append(np.array([[bb.x0, bb.y1], [bb.x1, bb.y1], [(bb.x0 + bb.x1) / 2, bb.y1]]))
    return np.vstack(pts) if pts else np.zeros((0, 2))


def assert_legends_clear(fig) -> None:
    """No plotted data point (line vertex, scatter point, bar top) lies inside a legend box."""
    fig.canvas.draw()
    legends = _legends(fig)
    assert legends, "figure has no legend"
    for leg in legends:
        box = leg.get_window_extent()
        for ax in fig.axes:
            pts = _data_points(ax)
            inside = (pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1)
            assert not inside.any(), f"legend covers {int(inside.sum())} data points of {ax.get_title()!r}"


def _legend_colors(fig) -> dict[str, str]:
    out = {}
    for leg in _legends(fig):
        for h, t in zip(leg.legend_handles, leg.get_texts()):
            c = h.get_color() if hasattr(h, "get_color") else h.get_facecolor()
            out[t.get_text()] = to_hex(c)
    return out


# --------------------------------------------------------------------------- style


def test_every_policy_has_a_style_and_unknown_ones_come_last():
    order = style.ordered(["my_new_policy", "k8s_hpa", "faro_sum", "fairshare"])
    assert order == ["fairshare", "faro_sum", "k8s_hpa", "my_new_policy"]
    colors = [style.color(p) for p in POLICIES[:-1]]
    assert len(set(colors)) == len(colors)  # known policies: all distinct
    assert style.color("my_new_policy") == style.color("my_new_policy")  # stable
    assert style.color("my_new_policy") not in colors[:9]
    assert style.marker("my_new_policy") not in [style.marker(p) for p in PAPER]
    assert style.label("my_new_policy") == "my_new_policy"
    assert {style.linestyle(p) for p in ("fairshare", "oneshot", "aiad")} == {style.linestyle("fairshare")}
    assert len({str(style.linestyle(p)) for p in ("aiad", "mark", "faro_sum", "k8s_hpa")}) == 4
    assert len({style.marker(p) for p in PAPER}) == 9


# --------------------------------------------------------------------------- legends and limits


def test_legends_do_not_cover_data():
    runs = _runs()
    cells = cell_summary(runs, ["avg_total_utility", "slo_violation", "n_jobs"])
    for fig in (fig_pareto(cells), fig_headline_runs(runs[runs["quota"] == 32], "32 CPUs"),
                fig_cluster_utility({p: _binned(0.03 * k) for k, p in enumerate(POLICIES)}, n_jobs=4,
                                    title="t")):
        assert_legends_clear(fig)
        plt.close(fig)


def test_headline_has_fixed_n_to_one_limits_shared_by_panels():
    runs = _runs()
    by_q = {q: runs[runs["quota"] == q] for q in QUOTAS}
    figs = [fig_headline_runs(by_q[q], f"{q} CPUs") for q in QUOTAS]
    limits = []
    for fig in figs:
        left, right = fig.axes[0], fig.axes[1]
        limits.append((left.get_ylim(), right.get_ylim()))
        n = len(JOBS)
        assert left.get_yticks().max() == pytest.approx(n)  # lost utility 0..N
        assert right.get_yticks().max() == pytest.approx(100)  # violation 0..100 %
        assert left.get_ylim()[1] / n == pytest.approx(right.get_ylim()[1] / 100)  # N:1
        texts = [t.get_text() for t in left.texts]
        assert "SLO%" in texts
        # a value label per bar: lost utility (2 decimals) on the left, violation % on the right
        assert sum(1 for t in texts if t.count(".") == 1 and len(t.split(".")[1]) == 2) == len(POLICIES)
        assert len(right.texts) == len(POLICIES)
        plt.close(fig)
    assert limits[0] == limits[1]  # different data, same limits
    settings = [(f"{q}", summary_from_runs(by_q[q]), by_q[q]) for q in QUOTAS]
    fig = fig_headline_settings(settings)
    shown = [a for a in fig.axes if a.get_visible()]
    assert len({a.get_ylim() for a in shown}) == 2  # one left and one right limit for all panels
    plt.close(fig)


def test_every_policy_keeps_its_colour_across_figures():
    runs = _runs()
    cells = cell_summary(runs, ["avg_total_utility", "slo_violation", "n_jobs"])
    expected = {style.label(p): to_hex(style.color(p)) for p in POLICIES}
    pareto = fig_pareto(cells)
    assert _legend_colors(pareto) == expected
    fig1 = fig_cluster_utility({p: _binned(0.02 * k) for k, p in enumerate(POLICIES)}, n_jobs=4, title="t")
    assert _legend_colors(fig1) == expected
    head = fig_headline_runs(runs[runs["quota"] == 32], "32")
    bars = [r for r in head.axes[0].patches if isinstance(r, Rectangle)]
    ticks = [t.get_text() for t in head.axes[0].get_xticklabels()]
    assert [to_hex(b.get_facecolor()) for b in bars] == [expected[t] for t in ticks]
    for f in (pareto, fig1, head):
        plt.close(f)


def test_overview_and_seed_spread():
    runs = _runs()
    cells = cell_summary(runs, ["slo_rate", "lost_utility", "slo_violation", "n_jobs"])
    fig = fig_overview(cells)
    heat = [ax for ax in fig.axes if ax.images]
    assert len(heat) == 3
    assert [im.get_clim() for ax in heat for im in ax.images] == [(0, 100), (0, len(JOBS)), (0, 100)]
    labels = [t.get_text() for t in heat[0].get_yticklabels()]
    assert labels[:9] == [style.label(p) for p in PAPER] and labels[9:] == ["K8s HPA †", "my_new_policy †"]
    # every cell annotated: mean and ± sd (three seeds)
    assert sum("±" in t.get_text() for t in heat[0].texts) == len(POLICIES) * len(QUOTAS)
    plt.close(fig)
    spread = fig_seed_spread(runs)
    top = spread.axes[0]
    n_points = sum(len(c.get_offsets()) for c in top.collections)
    assert n_points == len(POLICIES) * 3  # every seed of every policy at the first quota
    plt.close(spread)


def test_replica_comparison_has_whole_number_ticks_the_quota_and_one_colour_scale():
    t = np.arange(0, 30.0, 0.5)
    steps = pd.DataFrame({j: np.where(t > 5, 3 + k, 1) for k, j in enumerate(JOBS)}, index=t)
    load = pd.DataFrame({j: np.full(30, 1.8) for j in JOBS})
    fig = fig_replica_comparison({"aiad": steps, "fairshare": steps * 0 + 2, "my_new_policy": steps}, load,
                                 quota=13, title="t")
    total = fig.axes[0]
    ticks = total.get_yticks()
    assert np.allclose(ticks, np.round(ticks)) and 13 in ticks
    assert {line.get_label() for line in total.get_lines()} >= {"AIAD", "FairShare", "my_new_policy"}
    assert _legend_colors(fig)["my_new_policy"] == to_hex(style.color("my_new_policy"))
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 4 and len({im.get_clim() for im in images}) == 1  # load + 3 policies, one scale
    assert_legends_clear(fig)
    plt.close(fig)


def test_pdfs_embed_truetype_fonts(tmp_path):
    runs = _runs(quotas=[32])
    save(fig_headline_runs(runs, "32 CPUs"), tmp_path / "h.pdf")
    pdf = (tmp_path / "h.pdf").read_bytes()
    assert b"/TrueType" in pdf or b"/CIDFontType2" in pdf
    assert b"/Type3" not in pdf


def _decisions(job: str, ticks: int = 2160) -> pd.DataFrame:
    """Decision records of one job: every outcome that the why figure marks, a forecast."""
    t = 10.0 * np.arange(1, ticks + 1)
    kinds = np.array(["none", "clamped", "requeued+dropped", "busy", "dropped", "applied"])
    outcome = kinds[np.arange(ticks) % len(kinds)]
    return pd.DataFrame({"job": job, "time_s": t, "requested": 3 + np.arange(ticks) % 4, "applied": 3,
                         "active_replicas": 2 + np.arange(ticks) % 2, "free_cpus_after": np.arange(ticks) % 3,
                         "outcome": outcome, "forecast_peak_rps": 20.0, "forecast_quantile": 0.95})


def _canvas_check(fig, max_blank: float = 0.3) -> None:
    """What a fixed-layout figure draws lies on its canvas (saved uncropped, nothing is cut) and
    leaves at most ``max_blank`` inches blank on each side (it looks cropped)."""
    from faro.plots.io import has_fixed_layout

    assert has_fixed_layout(fig)
    fig.canvas.draw()
    drawn, canvas = fig.get_tightbbox(), fig.bbox_inches
    assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01, (drawn, canvas)
    assert drawn.x1 <= canvas.x1 + 0.01 and drawn.y1 <= canvas.y1 + 0.01, (drawn, canvas)
    blanks = [drawn.x0, drawn.y0, canvas.x1 - drawn.x1, canvas.y1 - drawn.y1]
    assert max(blanks) <= max_blank, blanks
    plt.close(fig)


def test_per_cell_figures_fit_their_fixed_canvas():
    # the per-cell figures (one per quota x policy) skip the tight-bbox pass: their margins
    # must hold the longest title, labels and legends they can get
    from faro.plots.timeline import MAX_PANELS, fig_job_slo_timeline
    from faro.plots.why import fig_why

    title = f"Fig. 2: {style.label('faro_penalty_fair_sum')}, 100 CPUs, seed 12345 (k8s)"
    for n_jobs in (1, 2, 3, 10, MAX_PANELS, MAX_PANELS + 1):
        jobs = [f"serve-cluster{100 + k}" for k in range(n_jobs)]
        one = _binned(0.1)
        one = one[one["job"] == JOBS[0]]
        b = pd.concat([one.assign(job=j) for j in jobs], ignore_index=True)
        b.loc[b["job"] == jobs[0], "requests"] = 123456  # the widest panel label
        _canvas_check(fig_job_slo_timeline(b, title=title, jobs=jobs))
    b = _binned(0.1, minutes=360)
    why_title = (f"{style.label('faro_penalty_fair_sum')}, 100 CPUs, seed 12345: job 99 "
                 "(most SLO violations)")
    fig = fig_why(_decisions("j0"), b, "j0", unit_time=60.0, title=why_title)
    ax = fig.get_axes()[1]
    assert all(float(t).is_integer() for t in ax.get_yticks())  # replicas come in units
    assert fig.get_axes()[3].get_ylim() == (0.0, 100.0)  # SLO violation in %, as every figure
    _canvas_check(fig)


# --------------------------------------------------------------------------- ours vs the paper


REFS = [{
    "id": "sim5", "title": "sim, 5 seeds", "source": "s", "experiment": "x", "backends": ["sim"], "quota": 32,
    "n_seeds": 5,
    "tolerance": {"slo_rate": {"default": {"abs": 1.5, "sd": 2}, "faro": {"abs": 2.0}}},
    "cells": {"fairshare": {"slo_rate": [70.0, 1.0]}, "faro_sum": {"slo_rate": [90.0, 0.1]},
              "mark": {"slo_rate": [80.0, 0.1]}},
}, {
    "id": "real", "title": "real", "source": "s", "experiment": "x", "backends": ["sim", "k8s"], "quota": 32,
    "n_seeds": 5, "tolerance": {"slo_violation": {"default": {"rel": 0.2}}},
    "cells": {"fairshare": {"slo_violation": 0.25}},
}]


def test_tolerance_rule():
    rules = REFS[0]["tolerance"]["slo_rate"]
    assert tolerance(rules, "fairshare", 70.0, 1.0) == 2.0  # 2 sd > 1.5
    assert tolerance(rules, "mark", 80.0, 0.1) == 1.5
    assert tolerance(rules, "faro_sum", 90.0, 5.0) == 2.0  # Faro: 2 points whatever the sd
    assert tolerance(REFS[1]["tolerance"]["slo_violation"], "aiad", 0.25, math.nan) == pytest.approx(0.05)


def test_fidelity_table_hand_computed():
    rows = []
    for p, vals in {"fairshare": [71.0, 73.0], "faro_sum": [86.0, 87.0], "aiad": [50.0, 50.0]}.items():
        for s, v in zip((1, 2), vals):
            rows.append({"experiment": "x", "backend": "sim", "quota": 32, "policy": p, "seed": s,
                         "slo_rate": v, "avg_total_slo_rate": 0.79, "avg_total_utility": 1.0,
                         "avg_util_a": 0.5})
    runs = with_derived(pd.DataFrame(rows))
    t = fidelity_table(runs, REFS, experiment="x", backend="sim")
    sim = t[t["reference"] == "sim5"].set_index("policy")
    assert list(sim.index) == ["fairshare", "faro_sum"]  # mark not run, aiad has no reference
    fs = sim.loc["fairshare"]
    assert fs["ours"] == 72.0 and fs["ours_sd"] == pytest.approx(math.sqrt(2)) and fs["n_seeds_ours"] == 2
    assert fs["difference"] == pytest.approx(2.0) and fs["tolerance"] == 2.0 and fs["pass"]
    fa = sim.loc["faro_sum"]
    assert fa["difference"] == pytest.approx(-3.5) and not fa["pass"]
    real = t[t["reference"] == "real"].iloc[0]
    assert real["ours"] == pytest.approx(0.21) and real["tolerance"] == pytest.approx(0.05) and real["pass"]
    shown = display_fidelity(t)
    assert shown["result"].tolist() == ["pass", "FAIL", "pass"]
    assert shown.iloc[2]["ours"] == "21.0 ± 0.0" and shown.iloc[2]["difference"] == "-4.0"  # percent
    assert shown.iloc[0]["seeds ours / ref"] == "2 / 5"
    assert fidelity_table(runs, REFS, experiment="other", backend="sim").empty
    assert len(fidelity_table(runs, REFS, experiment="x", backend="k8s")) == 1  # real-cluster set only
    fig = fig_fidelity(t)
    assert len([a for a in fig.axes if a.collections]) == 2
    plt.close(fig)


def test_the_reference_file_has_sources_and_tolerances():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "config/reference/paper_numbers.yaml"
    refs = load_references(path)
    assert all(r["source"].strip() for r in refs)
    cells = applicable_cells(refs, experiment="twitter_10jobs", backend="sim", quotas=[32, 36],
                             policies=PAPER)
    assert {p for _, _, p in cells} == set(PAPER)
    assert applicable_cells(refs, experiment="twitter_10jobs", backend="sim", quotas=[36],
                            policies=PAPER) == []


def test_forecaster_figures_from_their_scripts_rows():
    from faro.plots.forecast import fig_forecast_selection, fig_forecasters

    rows = [{"policy": p, "forecaster": f, "quantile": qq, "quota": q, "seed": s,
             "slo_rate": 90 + k + 0.1 * s}
            for k, (f, qq) in enumerate([("default", 0.5), ("oracle", None)])
            for p in ("faro_sum", "faro_fair") for q in (32, 36) for s in (1, 2, 3)]
    fig = fig_forecasters(pd.DataFrame(rows))
    assert _legends(fig)[0].get_texts()[0].get_text() == "default, q 0.5"
    # per panel: 2 settings x 2 policies means, each with 3 seed dots
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)) == 12
    plt.close(fig)
    sel = pd.DataFrame([{"candidate": c, "day": d, "policy": "faro_sum", "quota": 32, "seed": 1,
                         "slo_rate": 95 + (0.5 if c == "q05" else 0) + 0.1 * d}
                        for c in ("q06", "q05") for d in range(1, 11)])
    fig = fig_forecast_selection(sel)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["q06", "q05"]
    filled = [line.get_markerfacecolor() for line in ax.get_lines() if line.get_marker() == "o"]
    assert filled == ["white", "black"]  # the best candidate (q05) is filled
    assert [t.get_text() for t in ax.texts] == ["95.55", "96.05"]
    plt.close(fig)
