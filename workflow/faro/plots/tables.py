"""The paper's tables from stats tables: the main matrix, simulator vs real backend (Table 7)
and scale-out (Table 8); written as CSV (numbers), Markdown, LaTeX and HTML (for the report).

Table builders are pure (frames in, frames out); formatting turns numbers into "mean ± std"
strings when a cell has several seeds.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from faro.atomic import atomic_path
from faro.plots import style
from faro.plots.data import cell_summary


@dataclass(frozen=True)
class Metric:
    column: str
    header: str
    fmt: str  # format spec of the value, e.g. ".2f"
    scale: float = 1.0


MAIN_METRICS = [
    Metric("slo_rate", "SLO% (requests within the SLO, %)", ".1f"),
    Metric("slo_violation", "cluster SLO violation rate (%)", ".1f", 100.0),
    Metric("lost_utility", "lost cluster utility", ".2f"),
    Metric("p99", "p99 latency of successful requests (ms)", ".0f"),
    Metric("failed", "failed requests (thousands)", ".1f", 1e-3),
    Metric("avg_used_replicas", "time-averaged active replicas", ".1f"),
]
#: column names of the CSV with their unit (percentages as percent, like every table shown to people)
CSV_UNITS = {"slo_rate": "slo_rate_pct", "slo_violation": "slo_violation_pct"}
COMPARE_METRICS = [Metric("slo_rate", "SLO%", ".1f"), Metric("lost_utility", "lost utility", ".2f"),
                   Metric("slo_violation", "SLO violation (%)", ".1f", 100.0)]


def _policy_rank(policies: Sequence[str]) -> dict[str, int]:
    return {p: k for k, p in enumerate(style.ordered(list(dict.fromkeys(policies))))}


def sort_cells(df: pd.DataFrame) -> pd.DataFrame:
    """Rows by quota, then the paper's policy order."""
    rank = _policy_rank(df["policy"])
    return df.assign(_r=df["policy"].map(rank)).sort_values(["quota", "_r"], kind="stable").drop(columns="_r")


def main_matrix(runs: pd.DataFrame, metrics: Sequence[Metric] = MAIN_METRICS) -> pd.DataFrame:
    """Policy x quota: mean and std over seeds of each metric (``runs``: stats table with
    :func:`faro.plots.data.with_derived` columns; missing metrics, e.g. replicas of a real
    backend, are left out)."""
    cols = [m.column for m in metrics if m.column in runs.columns]
    out = cell_summary(runs, cols)
    return sort_cells(out).reset_index(drop=True)


def fmt_value(mean: float, std: float | None, metric: Metric, with_std: bool) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    s = format(mean * metric.scale, metric.fmt)
    if with_std and std is not None and not math.isnan(std):
        s += " ± " + format(std * metric.scale, metric.fmt)
    return s


def seeds_note(table: pd.DataFrame) -> str:
    """How a table's cells aggregate seeds, for its caption."""
    n = sorted({int(v) for v in table["n_seeds"]}) if "n_seeds" in table.columns else [1]
    if n == [1]:
        return "one seed per cell (no spread)"
    seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}"
    return f"mean ± sample standard deviation over {seeds} seeds per cell"


def matrix_grid(table: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """One metric as a policy x quota grid of display strings (rows in the paper's order;
    "mean ± sd" when a cell has several seeds)."""
    quotas = sorted(int(q) for q in table["quota"].unique())
    policies = style.ordered(list(dict.fromkeys(table["policy"])))
    t = table.set_index(["policy", "quota"])
    rows = []
    for p in policies:
        row = {"policy": style.label(p) + ("" if style.is_paper_policy(p) else " †")}
        for q in quotas:
            if (p, q) not in t.index or metric.column not in t.columns:
                row[f"{q} CPUs"] = "–"
                continue
            c = t.loc[(p, q)]
            with_std = int(c.get("n_seeds", 1)) > 1
            row[f"{q} CPUs"] = fmt_value(float(c[metric.column]),
                                         float(c.get(f"{metric.column}_std", math.nan)), metric, with_std)
        rows.append(row)
    return pd.DataFrame(rows)


def matrix_csv(table: pd.DataFrame) -> pd.DataFrame:
    """The main matrix's numbers for the CSV: rates in percent, columns named with their unit."""
    out = table.copy()
    for col, name in CSV_UNITS.items():
        for suffix in ("", "_std"):
            if col + suffix in out.columns:
                scale = 1.0 if col == "slo_rate" else 100.0
                out[name + suffix] = out.pop(col + suffix) * scale
    return out


def kendall_distance(a: Sequence[float], b: Sequence[float]) -> tuple[float, int]:
    """(Kendall tau-b, number of discordant pairs) between two score vectors over the same items."""
    from scipy.stats import kendalltau

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = len(a)
    disc = sum(1 for i in range(n) for j in range(i + 1, n) if (a[i] - a[j]) * (b[i] - b[j]) < 0)
    if n < 2:
        return math.nan, 0
    tau = kendalltau(a, b).statistic
    return float(tau), int(disc)


def sim_vs_real(sim: pd.DataFrame, real: pd.DataFrame, metrics: Sequence[Metric] = COMPARE_METRICS,
                labels: tuple[str, str] = ("sim", "real")) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 7: per (quota, policy) in both tables, each metric's two means over seeds (with
    their sd and seed counts), the difference b - a and the relative error |a - b| / |b|; per
    quota the Kendall tau and discordant pairs of the policy rankings, and the mean and max
    relative error (also over all quotas, quota "all")."""
    a_lab, b_lab = labels
    cols = [m.column for m in metrics]
    keep = cols + [f"{c}_std" for c in cols] + ["n_seeds"]
    a = cell_summary(sim, cols).set_index(["quota", "policy"])[keep]
    b = cell_summary(real, cols).set_index(["quota", "policy"])[keep]
    common = a.index.intersection(b.index)
    if len(common) == 0:
        raise ValueError("the two stats tables have no (quota, policy) cell in common")
    det = pd.DataFrame(index=common)
    det[f"n_seeds_{a_lab}"] = a.loc[common, "n_seeds"].astype(int)
    det[f"n_seeds_{b_lab}"] = b.loc[common, "n_seeds"].astype(int)
    for c in cols:
        det[f"{c}_{a_lab}"] = a.loc[common, c]
        det[f"{c}_{b_lab}"] = b.loc[common, c]
        det[f"{c}_{a_lab}_std"] = a.loc[common, f"{c}_std"]
        det[f"{c}_{b_lab}_std"] = b.loc[common, f"{c}_std"]
        det[f"{c}_diff"] = det[f"{c}_{b_lab}"] - det[f"{c}_{a_lab}"]
        with np.errstate(divide="ignore", invalid="ignore"):
            va, vb = det[f"{c}_{a_lab}"], det[f"{c}_{b_lab}"]
            det[f"{c}_rel_err"] = (va - vb).abs() / vb.abs()
    det = sort_cells(det.reset_index()).reset_index(drop=True)
    summ = []
    for q, d in [*det.groupby("quota", sort=True), ("all", det)]:
        row: dict = {"quota": q, "n_policies": int(d["policy"].nunique())}
        for c in cols:
            if q != "all":
                row[f"{c}_tau"], row[f"{c}_discordant"] = kendall_distance(d[f"{c}_{a_lab}"],
                                                                           d[f"{c}_{b_lab}"])
            err = d[f"{c}_rel_err"].replace([np.inf, -np.inf], np.nan)
            row[f"{c}_mean_rel_err"] = float(err.mean())
            row[f"{c}_max_rel_err"] = float(err.max())
        summ.append(row)
    return det, pd.DataFrame(summ)


def display_sim_vs_real(det: pd.DataFrame, metrics: Sequence[Metric] = COMPARE_METRICS,
                        labels: tuple[str, str] = ("sim", "real")) -> pd.DataFrame:
    out = pd.DataFrame({"quota": det["quota"].astype(int).astype(str),
                        "policy": [style.label(p) for p in det["policy"]]})
    if all(f"n_seeds_{lab}" in det.columns for lab in labels):
        pairs = zip(det[f"n_seeds_{labels[0]}"], det[f"n_seeds_{labels[1]}"])
        out["seeds"] = [f"{a} / {b}" for a, b in pairs]
    for m in metrics:
        for lab in labels:
            stds = det.get(f"{m.column}_{lab}_std", pd.Series([math.nan] * len(det), index=det.index))
            out[f"{m.header} {lab}"] = [fmt_value(v, sd, m, True)
                                        for v, sd in zip(det[f"{m.column}_{lab}"], stds)]
        if f"{m.column}_diff" in det.columns:
            signed = Metric(m.column, m.header, "+" + m.fmt, m.scale)
            out[f"{m.header} diff"] = [fmt_value(v, None, signed, False) for v in det[f"{m.column}_diff"]]
        out[f"{m.header} rel. err (%)"] = [fmt_value(v, None, Metric("", "", ".1f", 100.0), False)
                                          for v in det[f"{m.column}_rel_err"]]
    return out


def display_summary(summ: pd.DataFrame, metrics: Sequence[Metric] = COMPARE_METRICS) -> pd.DataFrame:
    out = pd.DataFrame({"quota": summ["quota"].astype(str), "policies": summ["n_policies"].astype(str)})
    for m in metrics:
        c = m.column
        if f"{c}_tau" in summ.columns:
            out[f"{m.header}: Kendall tau"] = [("–" if pd.isna(v) else f"{v:.2f}") for v in summ[f"{c}_tau"]]
            out[f"{m.header}: discordant pairs"] = [("–" if pd.isna(v) else f"{int(v)}")
                                                    for v in summ[f"{c}_discordant"]]
        out[f"{m.header}: mean / max rel. err (%)"] = [
            f"{100 * a:.1f} / {100 * b:.1f}"
            for a, b in zip(summ[f"{c}_mean_rel_err"], summ[f"{c}_max_rel_err"])]
    return out


def scale_out(settings: Sequence[tuple[str, pd.DataFrame]],
              metrics: Sequence[Metric] = COMPARE_METRICS) -> pd.DataFrame:
    """Table 8: per setting (label, stats table) and cell: jobs, quota and each metric's mean/std
    over seeds; lost utility is also given per job (settings differ in N)."""
    cols = [m.column for m in metrics] + ["n_jobs"]
    parts = []
    for label, runs in settings:
        s = cell_summary(runs, cols)
        s.insert(0, "setting", label)
        s["lost_utility_per_job"] = s["lost_utility"] / s["n_jobs"]
        parts.append(s)
    df = pd.concat(parts, ignore_index=True)
    rank = _policy_rank(df["policy"])
    order = {lab: k for k, (lab, _) in enumerate(settings)}
    df = df.assign(_s=df["setting"].map(order), _r=df["policy"].map(rank))
    df = df.sort_values(["_s", "quota", "_r"], kind="stable")
    return df.drop(columns=["_s", "_r"]).reset_index(drop=True)


def display_scale_out(df: pd.DataFrame, metrics: Sequence[Metric] = COMPARE_METRICS) -> pd.DataFrame:
    with_std = bool((df["n_seeds"] > 1).any())
    out = pd.DataFrame({"setting": df["setting"], "jobs": df["n_jobs"].round().astype(int).astype(str),
                        "quota": df["quota"].astype(int).astype(str),
                        "policy": [style.label(p) for p in df["policy"]]})
    for m in metrics:
        out[m.header] = [fmt_value(v, s, m, with_std) for v, s in zip(df[m.column], df[f"{m.column}_std"])]
    out["lost utility / job"] = [f"{v:.3f}" for v in df["lost_utility_per_job"]]
    return out


# --------------------------------------------------------------------------- writers


def to_markdown(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    rows = [[str(v) for v in r] for r in df.itertuples(index=False)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(s: str) -> str:
    out = "".join(_TEX.get(ch, ch) for ch in str(s))
    return out.replace("±", r"$\pm$").replace("–", "--")


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "") -> str:
    """A booktabs table (first columns left-aligned text, the others right-aligned)."""
    n_text = sum(1 for c in df.columns if str(c) in ("setting", "quota", "policy", "jobs"))
    spec = "l" * n_text + "r" * (len(df.columns) - n_text)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(tex_escape(c) for c in df.columns) + r" \\", r"\midrule"]
    prev = None
    for r in df.itertuples(index=False):
        key = r[0]
        if prev is not None and key != prev:
            lines.append(r"\addlinespace")
        prev = key
        lines.append(" & ".join(tex_escape(v) for v in r) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{tex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_html(tables: Sequence[tuple[str, pd.DataFrame]], title: str, note: str = "") -> str:
    """A small self-contained HTML page of one or more tables (for the report)."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}"
             "td:nth-child(-n+2),th{text-align:left}"
             "th{background:#eee}</style></head><body>", f"<h3>{html.escape(title)}</h3>"]
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    for sub, df in tables:
        if sub:
            parts.append(f"<h4>{html.escape(sub)}</h4>")
        parts.append(df.to_html(index=False, escape=True, border=0))
    parts.append("</body></html>")
    return "\n".join(parts)


def _atomic_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_table(numbers: pd.DataFrame, display: pd.DataFrame, *, csv: str, md: str, tex: str, html_path: str,
                title: str, caption: str = "", label: str = "",
                extra: Sequence[tuple[str, pd.DataFrame]] = ()) -> None:
    """CSV of the numbers; Markdown, LaTeX and HTML of the display strings (``extra``: further
    (title, display frame) sections of the same table, e.g. a summary)."""
    _atomic_text(csv, numbers.to_csv(index=False))
    md_text = f"**{title}**\n\n" + to_markdown(display)
    tex_text = to_latex(display, caption or title, label)
    for sub, d in extra:
        md_text += f"\n**{sub}**\n\n" + to_markdown(d)
        tex_text += "\n" + to_latex(d, sub)
    _atomic_text(md, md_text)
    _atomic_text(tex, tex_text)
    _atomic_text(html_path, to_html([("", display), *extra], title, caption))
