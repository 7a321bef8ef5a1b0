"""What a policy may need besides metrics, for every backend: the run's context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from faro.model.experiment import Experiment


def policy_context(run: dict[str, Any], exp: Experiment,
                   trace_counts: np.ndarray | None = None) -> dict[str, Any]:
    """Time scale, trained-model locations, trace scale and seed (JSON-able), plus the trace's
    counts when given (the oracle forecaster's truth)."""
    derive = exp.trace_spec.get("derive") or {}
    data_dir = str(run.get("data_dir", "results/data"))
    ctx: dict[str, Any] = {
        "unit_time": float(run["unit_time"]),
        "data_dir": data_dir,
        "models_dir": str(run.get("models_dir", Path(data_dir) / "models")),
        "trace_scale": float(derive.get("scale", 1.0)),
        "seed": int(run["seed"]),
    }
    if trace_counts is not None:
        ctx["trace_counts"] = trace_counts
    return ctx
