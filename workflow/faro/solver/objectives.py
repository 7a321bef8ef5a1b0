"""Cluster objectives of the Faro variants (docs/model.md section 4).

Each objective maps the vector of job utilities ``u`` (shape ``(..., n_jobs)``)
to one number to maximise:

- ``sum``:       U = sum u
- ``fair``:      fair_weight * U + (min u - max u)   (Faro-Fair: weight 0, the spread alone,
                 as in the artifact's simulator runs and its cluster configuration)
- ``fair_sum``:  U + N (min u - max u + 1)
- ``penalty_sum`` / ``penalty_fair_sum``: as ``sum`` / ``fair_sum`` after
  ``u_i *= 1 - pen(1 - a_i)`` for per-job admission rates ``a_i`` in [0, 1].

U is summed over the jobs in index order with one elementwise addition per job, never by
numpy's reduction (whose grouping may depend on the build), so objective values are the same
bits on every machine (see :mod:`faro.numerics`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from faro.solver.utility import admission_penalty

BASE_KINDS: tuple[str, ...] = ("sum", "fair", "fair_sum")


@dataclass(frozen=True, slots=True)
class Objective:
    """A parsed objective: its base combination and whether admission rates are optimised."""

    kind: str
    penalty: bool = False
    fair_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in BASE_KINDS:
            raise ValueError(f"unknown objective kind {self.kind!r}; expected one of {BASE_KINDS}")

    def value(self, u: ArrayLike, admission: ArrayLike | None = None) -> NDArray[np.float64]:
        """Objective of utilities ``u`` (``(..., n_jobs)``), penalised by ``admission`` if set."""
        u = np.asarray(u, dtype=np.float64)
        if self.penalty and admission is not None:
            u = apply_admission(u, admission)
        return combine(u, self.kind, fair_weight=self.fair_weight)


def parse_objective(name: str, *, fair_weight: float = 0.0) -> Objective:
    """Objective from a policy name: ``sum``, ``fair``, ``fair_sum``, ``penalty_sum``,
    ``penalty_fair_sum`` (a ``faro_`` prefix and ``-`` for ``_`` are accepted)."""
    key = name.strip().lower().replace("-", "_")
    key = key.removeprefix("faro_")
    penalty = key.startswith("penalty_")
    key = key.removeprefix("penalty_")
    return Objective(kind=key, penalty=penalty, fair_weight=fair_weight)


def combine(u: ArrayLike, kind: str, *, fair_weight: float = 0.0) -> NDArray[np.float64]:
    """Cluster objective of job utilities ``u`` (last axis = jobs)."""
    u = np.asarray(u, dtype=np.float64)
    total = total_utility(u)
    if kind == "sum":
        return total
    spread = u.min(axis=-1) - u.max(axis=-1)
    if kind == "fair":
        return fair_weight * total + spread
    if kind == "fair_sum":
        return total + u.shape[-1] * (spread + 1.0)
    raise ValueError(f"unknown objective kind {kind!r}")


def total_utility(u: ArrayLike) -> NDArray[np.float64]:
    """U = sum over the last axis, added job by job in index order (machine-independent)."""
    u = np.asarray(u, dtype=np.float64)
    total = np.zeros(u.shape[:-1])
    for i in range(u.shape[-1]):
        total = total + u[..., i]
    return total


def apply_admission(u: ArrayLike, admission: ArrayLike) -> NDArray[np.float64]:
    """``u_i * (1 - pen(1 - a_i))``: utility lost to dropping a fraction ``1 - a_i``."""
    a = np.asarray(admission, dtype=np.float64)
    return np.asarray(u, dtype=np.float64) * (1.0 - admission_penalty(1.0 - a))
