"""The artifact's load history (docs/model.md section 2), checked before it is unpickled.

``top9_twitter_1_1600_avgproc_min_int5m_reduced_6hr_augmented.pkl`` is a pickled pandas
DataFrame with 440 rows and the columns ``hash_func`` (series id), ``day`` (1..11),
``sample`` (0..3, augmented copies) and ``counts`` (a 360-minute pandas Series).  A pickle can
run arbitrary code, so :func:`load_history` hashes the file first and refuses to unpickle it
unless the sha256 equals the expected one (from ``SHA256SUMS``).

Series id -> trace job (worked out by matching day 11, sample 0 against ``input.json``; every
one of the 10 series then equals its job's 360 trace counts exactly): the nine Azure Functions
series, whose ids are sha256 hex strings, sorted in ascending string order are
``serve-cluster0`` .. ``serve-cluster8``; the series ``twitter`` is ``serve-cluster9``.
:func:`job_order_from_trace` re-derives this order from a trace and
:func:`load_history` checks it when given the trace.

Day 11 is the replayed test day: :meth:`History.training_series` refuses it, so no
predictor can be fitted (or early-stopped) on it through this API.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HISTORY_FILENAME = "top9_twitter_1_1600_avgproc_min_int5m_reduced_6hr_augmented.pkl"
TRACE_FILENAME = "input.json"
SUMS_FILENAME = "SHA256SUMS"
#: the replayed day (the trace is day 11, sample 0): never for training
TEST_DAY = 11
TWITTER_ID = "twitter"


class ChecksumError(ValueError):
    """A data file's sha256 differs from the expected one."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def expected_sha256(sums_path: str | Path, filename: str) -> str:
    """The hash listed for ``filename`` in a ``sha256sum``-style file (``<hex>  <name>``)."""
    for line in Path(sums_path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-1].lstrip("*") == filename:
            return parts[0].lower()
    raise KeyError(f"{filename!r} is not listed in {sums_path}")


def verify_sha256(path: str | Path, expected: str) -> None:
    """Raise :class:`ChecksumError` (naming the file and both hashes) unless they match."""
    if not isinstance(expected, str) or len(expected.strip()) != 64:
        raise ValueError(f"expected sha256 for {path} must be 64 hex characters, got {expected!r}")
    actual = sha256_file(path)
    if actual != expected.strip().lower():
        raise ChecksumError(
            f"sha256 mismatch for {path}: expected {expected.strip().lower()}, got {actual}; "
            "refusing to parse it (re-download the file or fix SHA256SUMS)"
        )


def load_trace_counts(path: str | Path, jobs: Sequence[str] | None = None,
                      deployment: str = "classifier") -> np.ndarray:
    """Trace JSON Lines -> counts array of shape (n_jobs, n_minutes), rows in ``jobs`` order.

    ``jobs`` defaults to ``serve-cluster0..N-1`` (numeric order) as found on the first line.
    """
    lines = [json.loads(s) for s in Path(path).read_text().splitlines() if s.strip()]
    lines.sort(key=lambda d: d["ts"])
    if jobs is None:
        names = list(lines[0]["counts"])
        jobs = sorted(names, key=lambda n: (len(n), n))
    out = np.zeros((len(jobs), len(lines)), dtype=np.int64)
    for k, d in enumerate(lines):
        for j, name in enumerate(jobs):
            out[j, k] = int(d["counts"].get(name, {}).get(deployment, 0))
    return out


def default_series_order(series_ids: Sequence[str]) -> list[str]:
    """Documented job order: hash ids ascending, then ``twitter`` (see module docstring)."""
    return sorted(series_ids, key=lambda s: (s == TWITTER_ID, s))


def job_order_from_trace(test_counts: dict[str, np.ndarray], trace: np.ndarray) -> list[str]:
    """Series id for each trace job, by exact match of the test-day counts to the trace rows.

    ``test_counts`` maps series id -> day 11 sample 0 counts; ``trace`` is (n_jobs, minutes).
    Raises ValueError unless every job matches exactly one series.
    """
    order: list[str] = []
    for j in range(trace.shape[0]):
        hits = [sid for sid, c in test_counts.items()
                if len(c) == trace.shape[1] and np.array_equal(np.asarray(c), trace[j])]
        if len(hits) != 1:
            raise ValueError(f"trace job {j} matches {len(hits)} history series (expected 1)")
        order.append(hits[0])
    return order


@dataclass(frozen=True)
class History:
    """Per-minute counts indexed [job, day - 1, sample, minute] (jobs in trace order)."""

    counts: np.ndarray  # (n_jobs, n_days, n_samples, n_minutes), float64
    series_ids: tuple[str, ...]  # series id of each job
    days: tuple[int, ...] = field(default=tuple(range(1, TEST_DAY + 1)))

    @property
    def n_jobs(self) -> int:
        return self.counts.shape[0]

    @property
    def n_samples(self) -> int:
        return self.counts.shape[2]

    def series(self, job: int, day: int, sample: int = 0) -> np.ndarray:
        """360 per-minute counts of one job, day and augmented sample."""
        return self.counts[job, self.days.index(day), sample]

    def training_series(self, max_day: int = TEST_DAY - 1,
                        samples: Sequence[int] | None = None,
                        min_day: int = 1) -> list[np.ndarray]:
        """Per job, a (n_days * n_samples, minutes) array of days ``min_day..max_day``.

        Rows are ordered day-major (day 1 samples 0..3, day 2 ...).  Refuses the test day.
        """
        if max_day >= TEST_DAY:
            raise ValueError(f"day {TEST_DAY} is the replayed test day and may not be used for "
                             f"training (got max_day={max_day}; use max_day <= {TEST_DAY - 1})")
        if not 1 <= min_day <= max_day:
            raise ValueError(f"need 1 <= min_day <= max_day, got {min_day}..{max_day}")
        di = [self.days.index(d) for d in range(min_day, max_day + 1)]
        si = list(range(self.n_samples)) if samples is None else list(samples)
        return [self.counts[j][np.ix_(di, si)].reshape(-1, self.counts.shape[3])
                for j in range(self.n_jobs)]

    def test_series(self, sample: int = 0) -> np.ndarray:
        """(n_jobs, minutes) counts of the test day (sample 0 is the replayed trace)."""
        return self.counts[:, self.days.index(TEST_DAY), sample]

    def to_frame(self):
        """Long tidy DataFrame: job, series_id, day, sample, minute, count."""
        import pandas as pd

        J, D, S, M = self.counts.shape
        j, d, s, m = np.meshgrid(np.arange(J), np.arange(D), np.arange(S), np.arange(M),
                                 indexing="ij")
        return pd.DataFrame({
            "job": j.ravel(),
            "series_id": np.asarray(self.series_ids)[j.ravel()],
            "day": np.asarray(self.days)[d.ravel()],
            "sample": s.ravel(),
            "minute": m.ravel(),
            "count": self.counts.ravel(),
        })


def load_history(path: str | Path, expected_sha256: str, *,
                 trace_path: str | Path | None = None,
                 trace_sha256: str | None = None) -> History:
    """Verify the pickle's sha256, unpickle it and return a :class:`History`.

    The sha256 check happens before anything is parsed.  With ``trace_path`` (and its
    ``trace_sha256``), the documented job order is checked against the trace's counts.
    """
    verify_sha256(path, expected_sha256)
    import pandas as pd

    df = pd.read_pickle(path)
    need = {"hash_func", "day", "sample", "counts"}
    if not need <= set(df.columns):
        raise ValueError(f"{path}: expected columns {sorted(need)}, got {list(df.columns)}")
    ids = default_series_order(df["hash_func"].unique().tolist())
    days = tuple(sorted(int(d) for d in df["day"].unique()))
    samples = sorted(int(s) for s in df["sample"].unique())
    n_min = {len(c) for c in df["counts"]}
    if len(n_min) != 1 or TEST_DAY not in days or samples != list(range(len(samples))):
        raise ValueError(f"{path}: unexpected layout (days {days}, samples {samples}, "
                         f"series lengths {sorted(n_min)})")
    counts = np.full((len(ids), len(days), len(samples), n_min.pop()), np.nan)
    for sid, day, sample, c in zip(df["hash_func"], df["day"], df["sample"], df["counts"]):
        counts[ids.index(sid), days.index(int(day)), int(sample)] = np.asarray(c, dtype=float)
    if np.isnan(counts).any():
        raise ValueError(f"{path}: some (series, day, sample) combinations are missing")
    hist = History(counts=counts, series_ids=tuple(ids), days=days)
    if trace_path is not None:
        if trace_sha256 is None:
            raise ValueError("trace_sha256 is required with trace_path")
        verify_sha256(trace_path, trace_sha256)
        trace = load_trace_counts(trace_path)
        test = {sid: hist.test_series(0)[i] for i, sid in enumerate(ids)}
        order = job_order_from_trace(test, trace)
        if order != list(ids):
            raise ValueError(f"history series order {ids} does not match the trace: {order}")
    return hist


def load_history_from_dir(data_dir: str | Path, *, check_trace: bool = True) -> History:
    """:func:`load_history` with hashes from ``<data_dir>/SHA256SUMS`` (the artifact layout)."""
    d = Path(data_dir)
    sums = d / SUMS_FILENAME
    kw: dict[str, Any] = {}
    if check_trace and (d / TRACE_FILENAME).exists():
        kw = {"trace_path": d / TRACE_FILENAME,
              "trace_sha256": expected_sha256(sums, TRACE_FILENAME)}
    return load_history(d / HISTORY_FILENAME, expected_sha256(sums, HISTORY_FILENAME), **kw)
