"""Ours vs the paper: every cell with a published reference number (``config/reference/
paper_numbers.yaml``) beside our mean over seeds, the difference, the tolerance and pass/fail.

The numbers and tolerance rules live in the data file; this module only reads and applies them.
Pure functions except :func:`load_references` (reads the file); importing it is cheap (the
workflow's plot planner uses it), pyplot is imported by the figure function only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from faro.plots import style

if TYPE_CHECKING:
    import pandas as pd

#: metric -> (label shown to people, scale to display units, format)
METRICS = {
    "slo_rate": ("SLO% (requests within the SLO)", 1.0, ".2f"),
    "avg_total_utility": ("average cluster utility U", 1.0, ".2f"),
    "lost_utility": ("lost cluster utility", 1.0, ".2f"),
    "slo_violation": ("cluster SLO violation rate (%)", 100.0, ".1f"),
}
_REQUIRED = ("id", "title", "source", "experiment", "backends", "quota", "n_seeds", "tolerance", "cells")


def load_references(path: str | os.PathLike) -> list[dict]:
    """The reference sets of the data file, checked (every metric known, a tolerance rule per metric)."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    refs = doc.get("references")
    if not isinstance(refs, list) or not refs:
        raise ValueError(f"{path}: no `references` list")
    for r in refs:
        missing = [k for k in _REQUIRED if k not in r]
        if missing:
            raise ValueError(f"{path}: reference {r.get('id', '?')!r} lacks {', '.join(missing)}")
        for policy, cell in r["cells"].items():
            for metric in cell:
                if metric not in METRICS:
                    raise ValueError(f"{path}: {r['id']}/{policy}: unknown metric {metric!r}")
                if metric not in r["tolerance"]:
                    raise ValueError(f"{path}: {r['id']}: no tolerance rule for {metric!r}")
    return refs


def _mean_sd(value) -> tuple[float, float]:
    if isinstance(value, (list, tuple)):
        return float(value[0]), float(value[1]) if len(value) > 1 else math.nan
    return float(value), math.nan


def tolerance(rules: Mapping, policy: str, ref: float, ref_sd: float) -> float:
    """max(abs, sd x reference sd, rel x |reference|) of the rule for ``policy`` (by name, then
    family, then ``default``); keys a rule leaves out count 0."""
    fam = style.family(policy)
    rule = rules.get(policy) or rules.get(fam) or rules.get("default")
    if rule is None:
        raise ValueError(f"no tolerance rule for {policy!r} (nor {fam!r} nor default)")
    sd = 0.0 if math.isnan(ref_sd) else ref_sd
    return max(float(rule.get("abs", 0.0)), float(rule.get("sd", 0.0)) * sd,
               float(rule.get("rel", 0.0)) * abs(ref))


def applicable_cells(refs: Sequence[Mapping], *, experiment: str, backend: str, quotas: Sequence[int],
                     policies: Sequence[str]) -> list[tuple[str, int, str]]:
    """(reference id, quota, policy) of every reference cell this configuration produces."""
    out = []
    for r in refs:
        if (r["experiment"] != experiment or backend not in r["backends"]
                or int(r["quota"]) not in map(int, quotas)):
            continue
        out += [(r["id"], int(r["quota"]), p) for p in r["cells"] if p in policies]
    return out


def fidelity_table(runs: pd.DataFrame, refs: Sequence[Mapping], *, experiment: str,
                   backend: str) -> pd.DataFrame:
    """One row per (reference, policy, metric) that our stats table has: ours (mean and sample sd
    over seeds, number and list of seeds), the reference (mean, sd, number of seeds), the
    difference ours - reference, the tolerance and pass (|difference| <= tolerance); values in
    the metric's own unit (rates as fractions; :func:`display_fidelity` shows percent).

    ``runs``: a stats table with :func:`faro.plots.data.with_derived` columns.
    """
    import numpy as np
    import pandas as pd

    rows = []
    for r in refs:
        if r["experiment"] != experiment or backend not in r["backends"]:
            continue
        q = int(r["quota"])
        for policy, cell in r["cells"].items():
            ours = runs[(runs["quota"] == q) & (runs["policy"] == policy)]
            if ours.empty:
                continue
            for metric, value in cell.items():
                ref, ref_sd = _mean_sd(value)
                v = ours[metric].to_numpy(dtype=float)
                mean = float(np.mean(v))
                sd = float(np.std(v, ddof=1)) if v.size > 1 else math.nan
                tol = tolerance(r["tolerance"][metric], policy, ref, ref_sd)
                diff = mean - ref
                seeds = sorted(ours["seed"]) if "seed" in ours else []
                rows.append({"reference": r["id"], "reference_title": r["title"], "quota": q,
                             "policy": policy, "metric": metric, "ours": mean, "ours_sd": sd,
                             "n_seeds_ours": int(v.size), "seeds_ours": ",".join(str(int(s)) for s in seeds),
                             "reference_value": ref, "reference_sd": ref_sd,
                             "n_seeds_reference": int(r["n_seeds"]),
                             "difference": diff, "tolerance": tol, "pass": bool(abs(diff) <= tol)})
    cols = ["reference", "reference_title", "quota", "policy", "metric", "ours", "ours_sd", "n_seeds_ours",
            "seeds_ours", "reference_value", "reference_sd", "n_seeds_reference", "difference", "tolerance",
            "pass"]
    df = pd.DataFrame(rows, columns=cols)
    if df.empty:
        return df
    rank = {p: k for k, p in enumerate(style.ordered(list(dict.fromkeys(df["policy"]))))}
    ref_rank = {r["id"]: k for k, r in enumerate(refs)}
    met_rank = {m: k for k, m in enumerate(METRICS)}
    return (df.assign(_a=df["reference"].map(ref_rank), _m=df["metric"].map(met_rank),
                      _p=df["policy"].map(rank))
            .sort_values(["_a", "_m", "_p"], kind="stable")
            .drop(columns=["_a", "_m", "_p"]).reset_index(drop=True))


def _fmt(v: float, sd: float, fmt: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    s = format(v, fmt)
    return s if sd is None or math.isnan(sd) else f"{s} ± {format(sd, fmt)}"


def display_fidelity(df: pd.DataFrame) -> pd.DataFrame:
    """Display strings: metric (rates in percent), policy, ours and reference as "mean ± sd",
    seeds on each side, difference, tolerance and pass/fail."""
    import pandas as pd

    out = []
    for _, r in df.iterrows():
        name, scale, fmt = METRICS[r["metric"]]
        out.append({"reference": r["reference_title"], "metric": name, "policy": style.label(r["policy"]),
                    "ours": _fmt(r["ours"] * scale, r["ours_sd"] * scale, fmt),
                    "reference value": _fmt(r["reference_value"] * scale, r["reference_sd"] * scale, fmt),
                    "seeds ours / ref": f"{r['n_seeds_ours']} / {r['n_seeds_reference']}",
                    "difference": format(r["difference"] * scale, "+" + fmt),
                    "tolerance": "± " + format(r["tolerance"] * scale, fmt),
                    "result": "pass" if r["pass"] else "FAIL"})
    return pd.DataFrame(out, columns=["reference", "metric", "policy", "ours", "reference value",
                                      "seeds ours / ref", "difference", "tolerance", "result"])


def fig_fidelity(df: pd.DataFrame):
    """One panel per (reference, metric), two per row: per policy the difference ours - reference
    (dot; error bar = our sd over seeds when there are several) inside its tolerance band (grey:
    ± tolerance); green = within tolerance, red = outside.  Tick labels give ours vs the
    reference value, titles the reference set, metric and seeds on each side."""
    import matplotlib.pyplot as plt
    import numpy as np

    groups = list(dict.fromkeys(zip(df["reference"], df["metric"])))
    cols = 2 if len(groups) > 1 else 1
    nrows = (len(groups) + cols - 1) // cols
    sizes = [len(df[(df["reference"] == a) & (df["metric"] == m)]) for a, m in groups]
    row_n = [max(sizes[r * cols:(r + 1) * cols]) for r in range(nrows)]
    with plt.rc_context(style.paper_rc()):
        fig, axes = plt.subplots(nrows, cols, squeeze=False,
                                 figsize=(style.TEXT_WIDTH * (1.0 if cols == 2 else 0.6),
                                          sum(0.75 + 0.2 * n for n in row_n)),
                                 gridspec_kw={"height_ratios": [0.6 + 0.2 * n for n in row_n]})
        for ax, (ref, metric) in zip(axes.flat, groups):
            d = df[(df["reference"] == ref) & (df["metric"] == metric)].reset_index(drop=True)
            name, scale, fmt = METRICS[metric]
            y = np.arange(len(d))[::-1]
            tol = d["tolerance"].to_numpy(dtype=float) * scale
            diff = d["difference"].to_numpy(dtype=float) * scale
            sd = d["ours_sd"].to_numpy(dtype=float) * scale
            ax.barh(y, 2 * tol, left=-tol, height=0.6, color="0.88", edgecolor="0.7", lw=0.4, zorder=1)
            ok = d["pass"].to_numpy(dtype=bool)
            ax.errorbar(diff, y, xerr=np.where(np.isnan(sd), 0, sd), fmt="none", ecolor="black",
                        elinewidth=0.6, capsize=1.5, zorder=2)
            ax.scatter(diff, y, c=["tab:green" if v else "tab:red" for v in ok], s=16, zorder=3,
                       edgecolors="black", linewidths=0.4)
            ax.axvline(0, color="black", lw=0.6)
            lim = 1.15 * float(np.nanmax(np.r_[np.abs(diff) + np.nan_to_num(sd), tol]))
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-0.6, len(d) - 0.4)
            ax.set_yticks(y, [f"{style.label(p)}  {format(o * scale, fmt)} vs {format(r * scale, fmt)}"
                              for p, o, r in zip(d["policy"], d["ours"], d["reference_value"])], fontsize=6)
            seeds = sorted({f"{a} / {b}" for a, b in zip(d["n_seeds_ours"], d["n_seeds_reference"])})
            ax.set_title(f"{d['reference_title'].iloc[0]}\n{name}; seeds ours / ref: {', '.join(seeds)}; "
                         f"{int(ok.sum())} of {len(d)} within", fontsize=6.5)
            unit = "points" if metric in ("slo_rate", "slo_violation") else "utility"
            ax.set_xlabel(f"ours - reference ({unit})", fontsize=6.5)
            ax.tick_params(axis="x", labelsize=6)
        for ax in axes.flat[len(groups):]:
            ax.set_visible(False)
        fig.tight_layout(h_pad=0.8, w_pad=1.0)
    return fig
