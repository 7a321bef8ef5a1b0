"""Request arrival times of a run: the one generator the simulator and the replayer share.

Replay (docs/model.md section 2): trace minute ``k`` starts at ``k * unit_time``;
within it a job's ``count`` requests go out with exponential gaps of mean
``unit_time / count``, the first at once; minutes may overlap.

Each job draws from its own stream, seeded by the run's seed and the job's index
(its position in the experiment's job list, which is the trace's column order):
``SeedSequence(seed, spawn_key=(ARRIVALS_KEY, job))``.  The simulator's other
streams (service, router, admission, ...; :mod:`faro.backends.sim.random`) use the
other spawn keys, so one seed gives the same arrival times in the simulator and
on a live backend, and a job's arrivals do not depend on which other jobs run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

#: first spawn-key element of the arrival streams (the simulator's other streams use 1..5)
ARRIVALS_KEY = 0


def arrival_stream(seed: int, job: int) -> np.random.Generator:
    """The random stream job ``job``'s arrivals are drawn from under ``seed``."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(ARRIVALS_KEY, int(job)))
    return np.random.Generator(np.random.PCG64(ss))


def poisson_arrivals(
    counts: np.ndarray, unit_time: float, rng: np.random.Generator
) -> np.ndarray:
    """Open-loop arrival times of one job (docs/model.md section 2, "Replay").

    Minute ``k``'s ``counts[k]`` requests start at ``k * unit_time`` (the first at
    once) with exponential gaps of mean ``unit_time / counts[k]``; minutes may
    overlap.  Returned sorted.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    if n == 0:
        return np.zeros(0)
    minute = np.repeat(np.arange(len(counts)), counts)
    mean_gap = unit_time / np.repeat(np.maximum(counts, 1), counts)
    gaps = rng.exponential(1.0, n) * mean_gap
    # offset within the minute: sum of the previous gaps of the same minute
    csum = np.cumsum(gaps)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))[counts > 0]
    starts = np.repeat(first, counts[counts > 0])
    before = np.where(starts > 0, csum[starts - 1], 0.0)
    offset = csum - gaps - before
    offset[first] = 0.0  # exactly at the minute's start, whatever the rounding above
    t = minute * unit_time + offset
    return np.sort(t, kind="stable")


def job_arrivals(
    counts: np.ndarray, unit_time: float, seed: int, jobs: Iterable[int] | None = None
) -> list[np.ndarray]:
    """Arrival times (s from the start of the replay, sorted) of each job.

    ``counts[minute, job]`` are the trace's counts (:attr:`faro.model.trace.Trace.counts`);
    ``jobs`` picks columns (default: all); the result has one array per picked job, in
    that order.  A job's times depend only on ``seed``, its index and its own counts.
    """
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise ValueError(f"counts must be (minutes, jobs), got shape {counts.shape}")
    idx = range(counts.shape[1]) if jobs is None else jobs
    return [poisson_arrivals(counts[:, j], unit_time, arrival_stream(seed, j)) for j in idx]


def merge_arrivals(per_job: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All jobs' arrivals in one time order: ``(times, who)``, ``who[i]`` the position in
    ``per_job`` of request ``i``'s job; ties keep job order (a stable sort)."""
    if not per_job:
        return np.zeros(0), np.zeros(0, dtype=np.int32)
    t = np.concatenate([np.asarray(a, dtype=float) for a in per_job])
    w = np.concatenate([np.full(len(a), i, dtype=np.int32) for i, a in enumerate(per_job)])
    order = np.argsort(t, kind="stable")
    return t[order], w[order]
