"""Choosing a forecaster configuration honestly: leave one history day out, never day 11.

A forecaster matters to Faro only through the decisions it leads to, and its forecast error
(sMAPE, coverage) does not rank configurations the way Faro's SLO attainment does.  So each
candidate is scored the way it is used: for every validation day d in days 1-10, fit it on the
other days of 1-10 (all augmented samples; day d and day 11 never), replay day d's own counts
(sample 0) in the simulator under the Faro policies, and average the SLO attainment over days,
policies and seeds.  Day 11, the replayed test day, is touched neither for fitting nor for
choosing.  ``scripts/select_forecaster.py`` runs it and writes the scores.

A candidate is a forecaster *and* how Faro reads it: ``policy_params`` (e.g. ``{quantile:
0.5}``) override the Faro policies' own parameters for that candidate, because the quantile
worth planning at depends on how sharp and how well calibrated the forecaster is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from faro.forecast.history import TEST_DAY, History
from faro.model.trace import Trace


def leave_day_out(history: History, day: int, *, max_day: int = TEST_DAY - 1) -> list[np.ndarray]:
    """Per job, the (episodes, minutes) training rows of days 1..``max_day`` except ``day``."""
    if not 1 <= day <= max_day:
        raise ValueError(f"validation day must be in 1..{max_day}, got {day}")
    parts = []
    if day > 1:
        parts.append(history.training_series(min_day=1, max_day=day - 1))
    if day < max_day:
        parts.append(history.training_series(min_day=day + 1, max_day=max_day))
    return [np.concatenate([p[j] for p in parts]) for j in range(history.n_jobs)]


def day_trace(history: History, day: int, jobs: Sequence[str], sample: int = 0) -> Trace:
    """A history day as a trace (minutes x jobs, integer counts); refuses the test day."""
    if day >= TEST_DAY:
        raise ValueError(f"day {TEST_DAY} is the test day: it is not a validation day")
    if len(jobs) != history.n_jobs:
        raise ValueError(f"{len(jobs)} job names for {history.n_jobs} history series")
    counts = history.counts[:, history.days.index(day), sample]
    return Trace(tuple(jobs), np.rint(counts.T).astype(np.int64))


@dataclass(frozen=True)
class Fold:
    day: int
    train: list[np.ndarray]
    trace: Trace


def folds(history: History, jobs: Sequence[str], days: Sequence[int]) -> Iterator[Fold]:
    for d in days:
        yield Fold(int(d), leave_day_out(history, int(d)), day_trace(history, int(d), jobs))


#: Faro parameters a candidate may override (how the policy reads the forecast)
POLICY_KEYS = frozenset({"quantile", "slack_escalation", "max_quantile", "quantile_step"})


def policy_overrides(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A candidate's ``policy_params``, checked: only :data:`POLICY_KEYS`, quantiles in (0, 1)."""
    over = spec.get("policy_params") or {}
    if not isinstance(over, Mapping):
        raise ValueError(f"candidate {name!r}: policy_params must be a mapping, got {over!r}")
    unknown = set(over) - POLICY_KEYS
    if unknown:
        raise ValueError(f"candidate {name!r}: unknown policy_params {sorted(unknown)}; "
                         f"allowed: {sorted(POLICY_KEYS)}")
    for k in ("quantile", "max_quantile"):
        if k in over and not 0.0 < float(over[k]) < 1.0:
            raise ValueError(f"candidate {name!r}: policy_params.{k} must be in (0, 1), got {over[k]}")
    return dict(over)


def make_candidate(spec: Mapping[str, Any], train: list[np.ndarray]):
    """``{"forecaster": name, "params": {...}}`` -> a forecaster fitted on ``train``."""
    from faro.forecast.registry import make_forecaster

    return make_forecaster(str(spec.get("forecaster", "light")), train=train,
                           **dict(spec.get("params") or {}))
