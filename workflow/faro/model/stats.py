"""Per-run stats (``latency_stats.pkl``), as docs/model.md section 5 defines them.

Input is the backend-neutral Parquet data of :mod:`faro.model.schema` (one row per request,
one row per change of a job's active replica count), so the same numbers come out of
the simulator, a local Ray cluster or Kubernetes.  The output dict keeps the Faro
artifact's keys so its plots and tables compare one to one:

===============================  ==========================================================
``avg min max p90 p95 p99``      latency (ms) of successful requests (linear percentiles)
``failed``                       number of failed requests (latency NaN)
``slo_rate``                     100 x #(latency < SLO) / #requests, failures are misses
``target_slo``                   the SLO (ms); with per-job SLOs, the largest one
``utility``                      ``"latency"``
``avg_slo_rate_<job>``           mean over the job's bins of #(latency <= SLO) / #requests
``avg_total_slo_rate``           per slot mean over jobs, then mean over slots (NaN skipped)
``avg_util_<job>``               mean over the job's bins of min(1, SLO / p99)
``avg_total_utility``            mean over all slots of the per-slot sum over jobs
``avg_effective_util_<job>``     same with p99 of successes x (1 - drop-fraction penalty)
``avg_total_effective_utility``  mean over all slots of the per-slot sum over jobs
``avg_used_replicas``            simulation only: time-weighted total active replicas
``max_used_replicas``            simulation only: the largest total active replica count
===============================  ==========================================================

A *bin* is one trace minute: request ``r`` falls in bin ``floor(arrival_s / unit_time)``.
There are ``n_minutes + 1`` *slots* (the artifact's 361 for its 360-minute trace; the
last one normally holds no or almost no arrivals), or more if arrivals spill further.
Per-job means run over the bins where that job has data; the ``avg_total_slo_rate``
skips slots where no job has data; the two ``avg_total_*utility`` keys average the
per-slot *sum* over jobs over **all** slots, so an empty slot counts 0 and the maximum
is slightly below N, as in the artifact.
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from faro.atomic import atomic_path

__all__ = [
    "BinnedMetrics",
    "average_over_seeds",
    "binned_metrics",
    "drop_penalty",
    "grouped_quantile",
    "latency_stats",
    "read_stats",
    "stats_row",
    "to_jsonable",
    "used_replicas",
    "write_stats",
]

#: stands in for a failed request's latency in the utility's p99: the largest finite
#: float, not +inf, whose linear interpolation would give NaN (inf - inf)
FAILED_LATENCY = float(np.finfo(float).max)
UTILITY_QUANTILE = 0.99
SUPPORTED_UTILITIES = ("latency",)


# --------------------------------------------------------------------------- helpers


def drop_penalty(drop_fraction: np.ndarray | float) -> np.ndarray:
    """Step penalty of a bin's drop fraction: <=1% -> 0, <=5% -> 0.25, <=10% -> 0.5, else 1.

    The thresholds are inclusive; ``k / n`` is computed by division so that e.g. 5 drops
    out of 100 compare equal to the literal 0.05.
    """
    f = np.asarray(drop_fraction, dtype=float)
    return np.select([f <= 0.01, f <= 0.05, f <= 0.10], [0.0, 0.25, 0.5], default=1.0)


def grouped_quantile(
    sorted_values: np.ndarray, starts: np.ndarray, counts: np.ndarray, q: float
) -> np.ndarray:
    """Quantile ``q`` (0..1) of each group ``sorted_values[start : start + count]``.

    Each group must be sorted ascending.  Reproduces ``np.quantile(..., method="linear")``
    bit for bit (same virtual index ``(n - 1) q`` and the same two-sided lerp), so a
    single global sort replaces one ``np.percentile`` call per group.  Empty groups -> NaN.
    """
    starts = np.asarray(starts, dtype=np.intp)
    counts = np.asarray(counts, dtype=np.intp)
    out = np.full(counts.shape, np.nan)
    has = counts > 0
    if not has.any():
        return out
    s, n = starts[has], counts[has]
    virtual = (n - 1) * float(q)
    prev = np.floor(virtual)
    gamma = virtual - prev
    lo = prev.astype(np.intp)
    hi = lo + 1
    top = virtual >= n - 1
    lo[top] = n[top] - 1
    hi[top] = n[top] - 1
    a = sorted_values[s + lo]
    b = sorted_values[s + hi]
    diff = b - a
    res = a + diff * gamma
    upper = gamma >= 0.5
    res[upper] = (b - diff * (1.0 - gamma))[upper]
    out[has] = res
    return out


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Row-wise mean over finite entries, NaN for a row without any (no warning)."""
    ok = ~np.isnan(x)
    n = ok.sum(axis=1)
    s = np.where(ok, x, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else math.nan


def _job_codes(column: pd.Series, jobs: Sequence[str], what: str) -> np.ndarray:
    """Index into ``jobs`` of every row's job (fast for str, object and categorical)."""
    index = {str(j): i for i, j in enumerate(jobs)}
    if isinstance(column.dtype, pd.CategoricalDtype):
        raw = column.cat.codes.to_numpy()
        cats = column.cat.categories
    else:
        raw, cats = pd.factorize(column, use_na_sentinel=True)
    if (raw < 0).any():
        raise ValueError(f"{what}: job is missing in {(raw < 0).sum()} rows")
    lookup = np.array([index.get(str(c), -1) for c in cats], dtype=np.int64)
    codes = lookup[raw] if len(lookup) else np.zeros(0, dtype=np.int64)
    if (codes < 0).any():
        unknown = sorted({str(c) for c, i in zip(cats, lookup) if i < 0} & set(map(str, column.unique())))
        raise ValueError(f"{what}: jobs {unknown} are not in jobs={list(jobs)}")
    return codes


def _slo_array(slo_ms: float | Mapping[str, float], jobs: Sequence[str]) -> np.ndarray:
    if isinstance(slo_ms, Mapping):
        missing = [j for j in jobs if j not in slo_ms]
        if missing:
            raise ValueError(f"slo_ms has no SLO for jobs {missing}")
        slo = np.array([float(slo_ms[j]) for j in jobs])
    else:
        slo = np.full(len(jobs), float(slo_ms))
    if not (np.isfinite(slo).all() and (slo > 0).all()):
        raise ValueError(f"SLOs must be finite and positive, got {slo.tolist()}")
    return slo


# --------------------------------------------------------------------------- binning


@dataclass(frozen=True)
class BinnedMetrics:
    """Per job (rows, in ``jobs`` order) and slot (columns) metrics; NaN = no data.

    ``slo_frac``: fraction of the bin's requests with latency <= SLO.
    ``util``: min(1, SLO / p99) with failures counted as :data:`FAILED_LATENCY`.
    ``effective_util``: min(1, SLO / p99 of successes) x (1 - drop_penalty(failed
    fraction)); NaN where the bin has requests but no success (see
    :func:`latency_stats`).
    """

    jobs: tuple[str, ...]
    unit_time: float
    requests: np.ndarray  # int, (J, S)
    failed: np.ndarray  # int, (J, S)
    slo_frac: np.ndarray
    util: np.ndarray
    effective_util: np.ndarray

    @property
    def n_slots(self) -> int:
        return int(self.requests.shape[1])


def binned_metrics(
    requests: pd.DataFrame,
    *,
    jobs: Sequence[str],
    slo_ms: float | Mapping[str, float],
    unit_time: float,
    n_minutes: int,
) -> BinnedMetrics:
    """Group requests by (job, arrival bin) and compute the per-bin SLO and utility terms."""
    jobs = _check_jobs(jobs)
    codes = _job_codes(requests["job"], jobs, "requests")
    return _binned(codes, requests["arrival_s"].to_numpy(dtype=float), _failed_as_nan(requests),
                   jobs=jobs, slo=_slo_array(slo_ms, jobs), unit_time=unit_time, n_minutes=n_minutes)


def _check_jobs(jobs: Sequence[str]) -> tuple[str, ...]:
    out = tuple(str(j) for j in jobs)
    if len(set(out)) != len(out) or not out:
        raise ValueError(f"jobs must be non-empty and unique, got {list(out)}")
    return out


def _binned(
    codes: np.ndarray,
    arrival: np.ndarray,
    lat: np.ndarray,
    *,
    jobs: tuple[str, ...],
    slo: np.ndarray,
    unit_time: float,
    n_minutes: int,
) -> BinnedMetrics:
    """The work of :func:`binned_metrics` on arrays (``lat`` NaN = failed).

    One stable two-pass sort (latency, then the (job, bin) group id, as uint16 radix keys
    when it fits) orders every group by latency with failures (``FAILED_LATENCY``) last,
    so both p99s (all requests; successes only = the group's prefix) come from it.
    """
    if not (unit_time > 0 and math.isfinite(unit_time)):
        raise ValueError(f"unit_time must be positive, got {unit_time}")
    if int(n_minutes) != n_minutes or n_minutes < 0:
        raise ValueError(f"n_minutes must be a non-negative integer, got {n_minutes}")
    if not np.isfinite(arrival).all() or (arrival < 0).any():
        raise ValueError("requests.arrival_s must be finite and >= 0")
    n_jobs = len(jobs)
    failed = np.isnan(lat)

    bins = np.floor(arrival / unit_time).astype(np.int64)
    n_slots = max(int(n_minutes) + 1, int(bins.max()) + 1 if bins.size else 0)
    n_groups = n_jobs * n_slots
    gid = codes * n_slots + bins

    cnt = np.bincount(gid, minlength=n_groups)
    n_fail = np.bincount(gid, weights=failed, minlength=n_groups).astype(np.int64)
    with np.errstate(invalid="ignore"):
        n_ok = np.bincount(gid, weights=lat <= slo[codes], minlength=n_groups)

    filled = np.where(failed, FAILED_LATENCY, lat)
    order = np.argsort(filled)
    key_dtype = np.uint16 if n_groups <= np.iinfo(np.uint16).max + 1 else np.int64
    order = order[np.argsort(gid.astype(key_dtype)[order], kind="stable")]
    sorted_vals = filled[order]
    starts = np.cumsum(cnt) - cnt

    p99_all = grouped_quantile(sorted_vals, starts, cnt, UTILITY_QUANTILE)
    p99_succ = grouped_quantile(sorted_vals, starts, cnt - n_fail, UTILITY_QUANTILE)

    shape = (n_jobs, n_slots)
    cnt2, fail2 = cnt.reshape(shape), n_fail.reshape(shape)
    slo_col = slo[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        slo_frac = np.where(cnt2 > 0, n_ok.reshape(shape) / cnt2, np.nan)
        util = np.minimum(1.0, slo_col / p99_all.reshape(shape))  # NaN (no requests) stays NaN
        fail_frac = fail2 / cnt2
        eff = np.minimum(1.0, slo_col / p99_succ.reshape(shape)) * (1.0 - drop_penalty(fail_frac))
    return BinnedMetrics(
        jobs=jobs,
        unit_time=float(unit_time),
        requests=cnt2,
        failed=fail2,
        slo_frac=slo_frac,
        util=util,
        effective_util=eff,
    )


def _failed_as_nan(requests: pd.DataFrame) -> np.ndarray:
    """Latencies (ms) with NaN for every failed request (NaN latency or succeeded False)."""
    lat = requests["latency_ms"].to_numpy(dtype=float, na_value=np.nan).copy()
    if "succeeded" in requests.columns:
        succ = requests["succeeded"].to_numpy(dtype=bool)
        lat[~succ] = np.nan
    return lat


# --------------------------------------------------------------------------- replicas


def used_replicas(replicas: pd.DataFrame, *, jobs: Sequence[str], t_end: float) -> tuple[float, int]:
    """(time-weighted mean, max) of the total active replica count over ``[0, t_end]``.

    ``replicas`` rows are changes: ``replicas`` is the job's active count from ``time_s``
    on; a job counts 0 before its first row.  Changes at the same instant are applied
    together (only the resulting total is a state).  The max runs over the states in
    effect at some instant of ``[0, t_end]``.  ``t_end <= 0`` -> (NaN, count at 0).
    """
    if replicas.empty:
        return (0.0 if t_end > 0 else math.nan), 0
    codes = _job_codes(replicas["job"], jobs, "replicas")
    t = replicas["time_s"].to_numpy(dtype=float)
    r = replicas["replicas"].to_numpy(dtype=np.int64)
    if not np.isfinite(t).all():
        raise ValueError("replicas.time_s must be finite")
    order = np.argsort(t, kind="stable")
    t, r, codes = t[order], r[order], codes[order]
    prev = pd.Series(r).groupby(codes).shift(1, fill_value=0).to_numpy(dtype=np.int64)
    total = np.cumsum(r - prev)
    last_at_time = np.r_[t[1:] != t[:-1], True]
    t, total = t[last_at_time], total[last_at_time]

    # state in effect at 0: the last change at or before 0 (0 replicas if none)
    k0 = np.searchsorted(t, 0.0, side="right")
    start_val = total[k0 - 1] if k0 > 0 else 0
    inside = (t > 0) & (t <= t_end)
    times = np.r_[0.0, t[inside]]
    values = np.r_[start_val, total[inside]]
    if t_end <= 0:
        return math.nan, int(start_val)
    mx = int(values.max())
    durations = np.diff(np.r_[times, t_end])
    return float((values * durations).sum() / t_end), mx


# --------------------------------------------------------------------------- one run


def latency_stats(
    requests: pd.DataFrame,
    *,
    jobs: Sequence[str],
    slo_ms: float | Mapping[str, float],
    unit_time: float,
    n_minutes: int,
    replicas: pd.DataFrame | None = None,
    utility: str = "latency",
) -> dict[str, Any]:
    """The ``latency_stats.pkl`` dict of one run (docs/model.md section 5); see :func:`run_metrics`."""
    return run_metrics(requests, jobs=jobs, slo_ms=slo_ms, unit_time=unit_time, n_minutes=n_minutes,
                       replicas=replicas, utility=utility)[0]


def run_metrics(
    requests: pd.DataFrame,
    *,
    jobs: Sequence[str],
    slo_ms: float | Mapping[str, float],
    unit_time: float,
    n_minutes: int,
    replicas: pd.DataFrame | None = None,
    utility: str = "latency",
) -> tuple[dict[str, Any], BinnedMetrics]:
    """(the ``latency_stats.pkl`` dict, the per-minute bins it was computed from) of one run
    (docs/model.md section 5): the bins are the figures' ``binned.parquet`` too, computed once.

    ``requests`` / ``replicas`` follow :mod:`faro.model.schema`.  A request failed when its
    ``latency_ms`` is NaN (or ``succeeded`` is False); failures are SLO misses and, in the
    utility's p99, count as the largest finite float.  ``slo_ms`` is one SLO or a per-job
    mapping (mixed setting); every comparison uses the request's own job's SLO, and
    ``target_slo`` stores the largest one (= the SLO when uniform).  Note the two SLO
    tests: ``slo_rate`` counts ``latency < SLO``, the per-bin rates ``latency <= SLO``.

    Bins, slots and how empty ones count: see the module docstring.  The drop fraction
    of the effective utility is the bin's failed fraction (in the simulator every failure
    is an admission drop).

    Bins with requests but no success (an all-failure bin): the artifact leaves them out
    of the successes-only utility array and then pairs that shorter array with the
    penalty array by position.  Here the pairing is by bin index; such bins are NaN for
    the job (left out of ``avg_effective_util_<job>``, as in the artifact) and add 0 to
    the per-slot sum of ``avg_total_effective_utility`` (their penalty is 1 anyway).
    The per-job mean equals the artifact's whenever its positional pairing is not shifted,
    i.e. always unless an all-failure bin precedes a bin with successes.

    ``replicas`` given (simulation): adds ``avg_used_replicas`` (time-weighted over
    ``[0, last end_s]``) and ``max_used_replicas``.
    """
    if utility not in SUPPORTED_UTILITIES:
        raise ValueError(f"utility {utility!r} not supported (only {SUPPORTED_UTILITIES})")
    if len(requests) == 0:
        raise ValueError("no requests: cannot compute stats of an empty run")
    jobs = _check_jobs(jobs)
    slo = _slo_array(slo_ms, jobs)
    codes = _job_codes(requests["job"], jobs, "requests")
    lat = _failed_as_nan(requests)
    binned = _binned(codes, requests["arrival_s"].to_numpy(dtype=float), lat,
                     jobs=jobs, slo=slo, unit_time=unit_time, n_minutes=n_minutes)
    failed = np.isnan(lat)
    succ = lat[~failed]
    with np.errstate(invalid="ignore"):
        n_within = int(np.count_nonzero(lat < slo[codes]))

    out: dict[str, Any] = {}
    if succ.size:
        p90, p95, p99 = np.percentile(succ, [90, 95, 99])
        out.update(avg=float(succ.mean()), min=float(succ.min()), max=float(succ.max()),
                   p90=float(p90), p95=float(p95), p99=float(p99))
    else:
        out.update({k: math.nan for k in ("avg", "min", "max", "p90", "p95", "p99")})
    out["failed"] = int(failed.sum())
    out["slo_rate"] = 100.0 * n_within / len(lat)
    out["target_slo"] = float(slo.max())
    out["utility"] = utility

    per_job_slo = _nanmean_rows(binned.slo_frac)
    for j, v in zip(jobs, per_job_slo):
        out[f"avg_slo_rate_{j}"] = float(v)
    out["avg_total_slo_rate"] = _nanmean(_nanmean_rows(binned.slo_frac.T))

    for key, arr in (("util", binned.util), ("effective_util", binned.effective_util)):
        for j, v in zip(jobs, _nanmean_rows(arr)):
            out[f"avg_{key}_{j}"] = float(v)
        total_key = "avg_total_utility" if key == "util" else "avg_total_effective_utility"
        out[total_key] = float(np.nansum(arr, axis=0).mean())

    if replicas is not None:
        t_end = float(np.nanmax(requests["end_s"].to_numpy(dtype=float)))
        avg_rep, max_rep = used_replicas(replicas, jobs=jobs, t_end=t_end)
        out["avg_used_replicas"] = avg_rep
        out["max_used_replicas"] = max_rep
    return out, binned


# --------------------------------------------------------------------------- seeds


def _is_number(v: Any) -> bool:
    return isinstance(v, (Real, np.number)) and not isinstance(v, (bool, np.bool_))


def average_over_seeds(per_seed: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """A cell's stats: every key of the runs' dicts averaged over the seeds.

    Numbers: mean over the seeds' non-NaN values (NaN if all are NaN), plus
    ``<key>_std``: the *sample* standard deviation (ddof=1) of those values, 0.0 when
    only one is non-NaN, NaN when none.  Other values (``utility``) must agree across
    seeds and are copied.  Adds ``seeds`` (list of int).  With one seed every value is
    that run's own (ints stay ints), so the cell dict equals the run's plus ``seeds``
    and the ``*_std`` keys.
    """
    if len(per_seed) != len(seeds) or not per_seed:
        raise ValueError(f"need one stats dict per seed: {len(per_seed)} dicts, {len(seeds)} seeds")
    keys = list(per_seed[0].keys())
    for s, d in zip(seeds, per_seed):
        if set(d.keys()) != set(keys):
            diff = sorted(set(d.keys()) ^ set(keys))
            raise ValueError(f"seed {s}: keys differ from seed {seeds[0]}'s: {diff}")
    out: dict[str, Any] = {}
    stds: dict[str, float] = {}
    for k in keys:
        vals = [d[k] for d in per_seed]
        if all(_is_number(v) for v in vals):
            x = np.array(vals, dtype=float)
            x = x[~np.isnan(x)]
            if len(vals) == 1:
                out[k] = vals[0] if isinstance(vals[0], (int, float)) else vals[0].item()
            else:
                out[k] = float(x.mean()) if x.size else math.nan
            stds[f"{k}_std"] = float(x.std(ddof=1)) if x.size > 1 else (0.0 if x.size else math.nan)
        else:
            first = vals[0]
            if any(v != first for v in vals[1:]):
                raise ValueError(f"key {k!r} is not numeric and differs across seeds: {vals}")
            out[k] = first
    out["seeds"] = [int(s) for s in seeds]
    out.update(stds)
    return out


# --------------------------------------------------------------------------- files


def to_jsonable(stats: Mapping[str, Any]) -> dict:
    """A JSON-safe copy: NaN/inf -> None, numpy scalars/arrays -> Python, keys -> str."""

    def conv(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, np.ndarray):
            return [conv(x) for x in v.tolist()]
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v

    return conv(stats)


def _atomic_write(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_stats(stats: Mapping[str, Any], pkl_path: str | os.PathLike, json_path: str | os.PathLike) -> None:
    """Write the pickle (the artifact-compatible dict) and its JSON twin, each atomically."""
    as_dict = dict(stats)
    js = json.dumps(to_jsonable(as_dict), indent=2, allow_nan=False) + "\n"
    _atomic_write(Path(json_path), js.encode())
    _atomic_write(Path(pkl_path), pickle.dumps(as_dict, protocol=pickle.HIGHEST_PROTOCOL))


def read_stats(pkl_path: str | os.PathLike) -> dict:
    """Load a ``latency_stats.pkl`` written by :func:`write_stats` (trusted, our own output)."""
    with open(pkl_path, "rb") as fh:
        obj = pickle.load(fh)
    if not isinstance(obj, dict):
        raise ValueError(f"{pkl_path}: expected a dict, got {type(obj).__name__}")
    return obj


def stats_row(stats: Mapping[str, Any]) -> dict:
    """The scalar entries (numbers and strings) of a stats dict, numpy scalars as Python.

    Drops lists such as ``seeds``; NaN stays NaN so the rows stack into a DataFrame.
    """
    row: dict[str, Any] = {}
    for k, v in stats.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, (Integral, Real, str)):
            row[k] = v
    return row
