"""Inputs of the figures and tables: stats tables, per-minute run metrics, replica steps.

Everything here reads the backend-neutral outputs of the workflow (``stats.parquet``,
``latency_stats.pkl``, ``requests.parquet``, ``replicas.parquet``) or the small
per-run ``binned.parquet`` written by :func:`faro.model.binned.write_binned`, so figures never care which
backend produced a run.  Functions that build frames from frames are pure.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

KEYS = ["experiment", "backend", "quota", "policy"]
UTIL_PREFIX = "avg_util_"
SLO_PREFIX = "avg_slo_rate_"
EFF_PREFIX = "avg_effective_util_"


# --------------------------------------------------------------------------- stats tables


def job_names(stats: Mapping | pd.Series | pd.DataFrame) -> list[str]:
    """Jobs of a stats dict / row / table, from its ``avg_util_<job>`` keys (NaN-only ones dropped)."""
    if isinstance(stats, pd.DataFrame):
        cols = [c for c in stats.columns if c.startswith(UTIL_PREFIX) and not c.endswith("_std")]
        return [c[len(UTIL_PREFIX):] for c in cols if stats[c].notna().any()]
    out = []
    for k, v in stats.items():
        if isinstance(k, str) and k.startswith(UTIL_PREFIX) and not k.endswith("_std"):
            if not (isinstance(v, float) and math.isnan(v)):
                out.append(k[len(UTIL_PREFIX):])
    return out


def with_derived(df: pd.DataFrame) -> pd.DataFrame:
    """Adds per-run ``n_jobs``, ``lost_utility`` (N - avg_total_utility), ``slo_violation``
    (1 - avg_total_slo_rate) and ``lost_effective_utility`` to a stats table (one row per run)."""
    out = df.copy()
    util_cols = [c for c in out.columns if c.startswith(UTIL_PREFIX) and not c.endswith("_std")]
    out["n_jobs"] = out[util_cols].notna().sum(axis=1).astype(int)
    out["lost_utility"] = out["n_jobs"] - out["avg_total_utility"]
    out["slo_violation"] = 1.0 - out["avg_total_slo_rate"]
    if "avg_total_effective_utility" in out.columns:
        out["lost_effective_utility"] = out["n_jobs"] - out["avg_total_effective_utility"]
    return out


def cell_summary(runs: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Mean and sample std (ddof 1; 0 with one seed) of ``metrics`` over seeds, per cell.

    ``runs`` is a stats table (one row per run); the result has one row per
    (experiment, backend, quota, policy) with ``<metric>`` and ``<metric>_std`` columns
    plus ``n_seeds``.
    """
    keys = [k for k in KEYS if k in runs.columns]
    g = runs.groupby(keys, sort=False, dropna=False)
    mean = g[list(metrics)].mean()
    std = g[list(metrics)].std(ddof=1).fillna(0.0).add_suffix("_std")
    n = g.size().rename("n_seeds")
    return pd.concat([mean, std, n], axis=1).reset_index()


def read_stats_table(path: str | os.PathLike) -> pd.DataFrame:
    """A results root's ``stats.parquet`` (or ``.csv``) with the derived columns."""
    p = Path(path)
    df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    return with_derived(df)


def job_long(runs: pd.DataFrame) -> pd.DataFrame:
    """Per-run, per-job rows: quota, policy, seed, job, slo_rate, slo_violation, utility,
    effective_utility."""
    jobs = job_names(runs)
    keys = [k for k in [*KEYS, "seed"] if k in runs.columns]
    rows = []
    for j in jobs:
        part = runs[keys].copy()
        part["job"] = j
        part["slo_rate"] = runs[f"{SLO_PREFIX}{j}"].to_numpy(dtype=float)
        part["slo_violation"] = 1.0 - part["slo_rate"]
        part["utility"] = runs[f"{UTIL_PREFIX}{j}"].to_numpy(dtype=float)
        eff = f"{EFF_PREFIX}{j}"
        part["effective_utility"] = runs[eff].to_numpy(dtype=float) if eff in runs.columns else np.nan
        rows.append(part)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=[*keys, "job"])


# --------------------------------------------------------------------------- per-minute metrics


def read_binned(path: str | os.PathLike, *, trim: bool = True) -> pd.DataFrame:
    """A run's ``binned.parquet``; ``trim`` drops the spill slot (see :func:`drop_spill_slot`)."""
    df = pd.read_parquet(path)
    df["job"] = df["job"].astype(str)
    return drop_spill_slot(df) if trim else df


def drop_spill_slot(binned: pd.DataFrame, fraction: float = 0.5) -> pd.DataFrame:
    """Without the last slot when it holds fewer than ``fraction`` x the median requests per slot.

    The stats have trace minutes + 1 slots; the last one only catches the final minute's
    spill-over (docs/model.md section 5), so in a timeline it shows up as a spurious drop.
    """
    if binned.empty:
        return binned
    per = binned.groupby("minute")["requests"].sum()
    last = per.index.max()
    if len(per) > 1 and per.loc[last] < fraction * per.median():
        return binned[binned["minute"] != last]
    return binned


def wide(binned: pd.DataFrame, column: str, jobs: Sequence[str] | None = None) -> pd.DataFrame:
    """minute x job table of one per-minute column (jobs in the given or first-seen order)."""
    w = binned.pivot(index="minute", columns="job", values=column)
    order = list(jobs) if jobs is not None else list(dict.fromkeys(binned["job"]))
    return w[order]


def cluster_series(binned: pd.DataFrame) -> pd.DataFrame:
    """Per minute: total requests, cluster utility (sum over jobs, empty = 0), cluster SLO violation
    (1 - mean over jobs with data of the SLO fraction), as the stats define them."""
    g = binned.groupby("minute", sort=True)
    util = g["util"].sum(min_count=0)
    slo = g["slo_frac"].mean()
    return pd.DataFrame({
        "requests": g["requests"].sum(),
        "utility": util,
        "effective_utility": g["effective_util"].sum(min_count=0),
        "slo_violation": 1.0 - slo,
    })


# --------------------------------------------------------------------------- replicas


def replica_steps(replicas: pd.DataFrame, jobs: Sequence[str], grid_s: np.ndarray) -> pd.DataFrame:
    """Active replicas of every job at each time of ``grid_s`` (a job counts 0 before its first row).

    ``replicas`` rows are changes (time_s, job, replicas); changes at the same instant keep the last.
    """
    out = {}
    for j in jobs:
        r = replicas[replicas["job"] == j].sort_values("time_s", kind="stable")
        t = r["time_s"].to_numpy(dtype=float)
        v = r["replicas"].to_numpy(dtype=float)
        k = np.searchsorted(t, grid_s, side="right")
        out[j] = np.where(k > 0, v[np.maximum(k - 1, 0)] if len(v) else 0.0, 0.0)
    return pd.DataFrame(out, index=pd.Index(grid_s, name="time_s"))


# --------------------------------------------------------------------------- Cilantro


def read_cilantro(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Cilantro's per-job CSVs as one frame: job, time_s (since the run's first window), load,
    alloc, reward, events, successes (one row per reporting window)."""
    frames = []
    for p in paths:
        d = pd.read_csv(p, index_col=0)
        name = Path(p).name.split("--", 1)[-1].split("_", 1)[0]
        frames.append(pd.DataFrame({
            "job": name,
            "t": d.index.to_numpy(dtype=float),
            "load": d["load"].to_numpy(dtype=float),
            "alloc": d["alloc"].to_numpy(dtype=float),
            "reward": d["reward"].to_numpy(dtype=float),
            "events": d["num_events"].to_numpy(dtype=float),
            "successes": d["num_successes"].to_numpy(dtype=float),
        }))
    df = pd.concat(frames, ignore_index=True)
    t = df.pop("t")
    df["time_s"] = t - t.min()
    return df


def cilantro_minutes(df: pd.DataFrame, unit_s: float = 60.0) -> pd.DataFrame:
    """Per minute: cluster SLO violation (1 - mean over jobs of the job's successes/events in that
    minute, as our ``avg_total_slo_rate``), total requests and total allocation (mean per job)."""
    m = (df["time_s"] // unit_s).astype(int)
    per = df.assign(minute=m).groupby(["minute", "job"]).agg(
        events=("events", "sum"), successes=("successes", "sum"), alloc=("alloc", "mean"))
    with np.errstate(invalid="ignore", divide="ignore"):
        per["frac"] = np.where(per["events"] > 0, per["successes"] / per["events"], np.nan)
    g = per.groupby("minute")
    out = pd.DataFrame({"slo_violation": 1.0 - g["frac"].mean(), "requests": g["events"].sum(),
                        "alloc": g["alloc"].sum()})
    if len(out) > 1 and out["requests"].iloc[-1] < 0.5 * out["requests"].median():
        out = out.iloc[:-1]  # the run's last, partial minute (as drop_spill_slot)
    return out
