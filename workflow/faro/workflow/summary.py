"""What a run found: one compact table of cells, printed at the end of every successful run.

Per cell (``<results>/<quota>_cpus/<policy>/latency_stats.pkl``): its seeds and the
headline keys of ``latency_stats`` -- ``slo_rate`` (SLO%: requests within their SLO),
lost cluster utility (number of jobs - ``avg_total_utility``) and the cluster SLO violation
rate (1 - ``avg_total_slo_rate``), both defined once in :func:`faro.plots.data.with_derived`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

#: the keys of latency_stats a reader needs first (README, "Reading a cell")
HEADLINE_KEYS = ("slo_rate", "avg_total_utility", "avg_total_slo_rate", "avg_used_replicas", "seeds")


def cell_rows(root: str | os.PathLike, cells: Iterable[tuple[int, str]]) -> pd.DataFrame:
    """One row per cell: quota, policy, seeds, slo_rate, lost_utility, slo_violation, folder
    (NaN where the cell has no stats yet)."""
    from faro.model.stats import read_stats, stats_row
    from faro.plots.data import with_derived

    rows = []
    for quota, policy in cells:
        folder = Path(root) / f"{quota}_cpus" / policy
        row: dict = {"quota": int(quota), "policy": str(policy), "folder": str(folder)}
        pkl = folder / "latency_stats.pkl"
        try:
            stats = read_stats(pkl)
        except Exception:  # noqa: BLE001 - absent or unreadable: shown as such
            rows.append({**row, "seeds": "-", "found": pkl.is_file()})
            continue
        row.update(stats_row(stats))
        row["seeds"] = ",".join(str(s) for s in stats.get("seeds", []))
        row["found"] = True
        rows.append(row)
    df = pd.DataFrame(rows)
    if "avg_total_utility" in df.columns:
        df = with_derived(df)
    for col in ("slo_rate", "lost_utility", "slo_violation"):
        if col not in df.columns:
            df[col] = math.nan
    return df


def _fmt(v: float, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def summary_table(
    root: str | os.PathLike, cells: Sequence[tuple[int, str]], *, experiment: str = "", backend: str = ""
) -> str:
    """The table printed after a run, with a pointer to the figures and the report."""
    if not cells:
        return ""
    df = cell_rows(root, cells)
    head = ["quota", "policy", "seeds", "SLO%", "lost utility", "violation", "folder"]
    body = []
    for r in df.itertuples(index=False):
        folder = r.folder if r.found else f"{r.folder} (no stats)"
        body.append([str(r.quota), r.policy, r.seeds, _fmt(r.slo_rate, ".2f"), _fmt(r.lost_utility, ".3f"),
                     _fmt(r.slo_violation, ".3f"), folder])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    right = {0, 3, 4, 5}

    def line(cols):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c,
                                                                          w) in enumerate(zip(cols,
                                                                                              widths))).rstrip()

    what = ", ".join(x for x in (f"experiment {experiment}" if experiment else "",
                                 f"backend {backend}" if backend else "") if x)
    out = [f"faro: {len(body)} cell(s) in {root}" + (f" ({what})" if what else ""), line(head)]
    out += [line(b) for b in body]
    out.append(
        "SLO% = slo_rate; lost utility = jobs - avg_total_utility; violation = 1 - avg_total_slo_rate "
        "(each cell's latency_stats.json)"
    )
    plots = Path(root) / "plots"
    out.append(f"figures: {plots}/; report: snakemake --report report.html "
               "(with this run's --config/--configfile)")
    return "\n".join(out)
