"""One simulated run in this process, policy config to stats, for analysis scripts.

The workflow runs a cell as a chain of stages with records; scripts that sweep many
variants (forecasters, validation days) need only the stats, so they call
:func:`run_stats` instead of repeating the policy -> simulate -> stats steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from faro.backends.sim.engine import simulate
from faro.model.experiment import Experiment
from faro.model.stats import latency_stats
from faro.model.trace import Trace
from faro.policies import make_policy


def load_policy_spec(policy_dir: str | Path, name: str) -> dict[str, Any]:
    """``<policy_dir>/<name>.yaml`` as ``{"class": ..., "params": {...}}``."""
    return yaml.safe_load((Path(policy_dir) / f"{name}.yaml").read_text())


def run_stats(exp: Experiment, trace: Trace, spec: Mapping[str, Any], quota: int, seed: int, *,
              context: Mapping[str, Any], params: Mapping[str, Any] | None = None,
              unit_time: float = 60.0) -> dict[str, Any]:
    """Simulate ``spec`` (with ``params`` overriding its own) and return its ``latency_stats``."""
    pol = make_policy(spec["class"], {**spec.get("params", {}), **(params or {})}, jobs=exp.jobs,
                      quota=quota, context=dict(context))
    res = simulate(exp, trace, pol, quota, seed, unit_time=unit_time)
    slo = {j: m.slo_ms for j, m in zip(exp.jobs, exp.job_models, strict=True)}
    return latency_stats(res.requests_frame(), jobs=exp.jobs, slo_ms=slo, unit_time=unit_time,
                         n_minutes=trace.n_minutes, replicas=res.replicas_frame())
