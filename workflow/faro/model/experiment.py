"""Experiment definitions (``experiments/<name>/experiment.yaml``), validated and resolved."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # numpy and the trace are imported where used: a stage that only reads the
    import numpy as np  # run spec's experiment stays cheap to start

    from faro.model.trace import Trace


class ExperimentError(ValueError):
    pass


@dataclass(frozen=True)
class LogNormal:
    shape: float
    loc: float
    scale: float

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.loc + self.scale * rng.lognormal(0.0, self.shape, n)

    @property
    def mean(self) -> float:
        import numpy as np

        return self.loc + self.scale * float(np.exp(self.shape**2 / 2))


@dataclass(frozen=True)
class Model:
    name: str
    processing_ms: float
    slo_ms: float
    service_time: LogNormal


@dataclass(frozen=True)
class ClusterSpec:
    cpu_per_replica: int = 1
    max_ongoing_requests: int = 4
    max_queued_requests: int = 50
    cold_start_s: float = 35.0
    warm_start_s: float = 3.0
    idle_timeout_s: float = 30.0
    monitor_interval_s: float = 5.0
    retry_s: float = 5.0
    min_replicas: int = 1
    max_replicas: int = 100
    overhead_cpus: int = 0


@dataclass(frozen=True)
class ControllerSpec:
    tick_s: float = 10.0
    downscale_busy_s: float = 3.0
    latency_window_s: float = 30.0
    upscale_order: str = "random"
    batch_upscale_order: str = "job"


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    jobs: tuple[str, ...]
    job_models: tuple[Model, ...]
    router: LogNormal
    cluster: ClusterSpec
    controller: ControllerSpec
    trace_spec: dict[str, Any]
    unit_time: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_jobs(self) -> int:
        return len(self.jobs)

    def slo_ms(self) -> np.ndarray:
        import numpy as np

        return np.array([m.slo_ms for m in self.job_models])

    def processing_ms(self) -> np.ndarray:
        import numpy as np

        return np.array([m.processing_ms for m in self.job_models])


@cache
def _schema() -> dict:
    text = resources.files("faro").joinpath("schemas/experiment.schema.yaml").read_text()
    return yaml.safe_load(text)


def _lognormal(d: dict) -> LogNormal:
    return LogNormal(float(d["shape"]), float(d["loc"]), float(d["scale"]))


def experiment_from_dict(raw: dict[str, Any], source: str = "<dict>", *, validate: bool = True) -> Experiment:
    """The experiment a definition describes; ``validate=False`` only for a definition that was
    validated already (a run spec's, which the workflow built from a checked experiment)."""
    if validate:
        import jsonschema

        try:
            jsonschema.validate(raw, _schema())
        except jsonschema.ValidationError as e:
            where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
            raise ExperimentError(f"{source}: at {where}: {e.message}") from None
    models = {
        name: Model(name, float(m["processing_ms"]), float(m["slo_ms"]), _lognormal(m["service_time"]))
        for name, m in raw["models"].items()
    }
    names = tuple(raw["jobs"]["names"])
    derive = raw["trace"].get("derive")
    if derive and derive.get("repeat", 1) > 1:
        base = derive.get("rename") or derive.get("jobs") or list(names)
        if len(names) != len(base) * derive["repeat"]:
            raise ExperimentError(
                f"{source}: jobs/names has {len(names)} names, trace/derive makes "
                f"{len(base) * derive['repeat']} ({len(base)} x repeat {derive['repeat']})"
            )
    if len(set(names)) != len(names):
        raise ExperimentError(f"{source}: jobs/names has duplicates")
    model = raw["jobs"]["model"]
    model_names = [model] * len(names) if isinstance(model, str) else list(model)
    if len(model_names) != len(names):
        raise ExperimentError(
            f"{source}: jobs/model lists {len(model_names)} models for {len(names)} jobs"
        )
    for m in model_names:
        if m not in models:
            raise ExperimentError(f"{source}: jobs/model names unknown model {m!r} (known: {sorted(models)})")
    cluster = ClusterSpec(**raw["cluster"])
    if cluster.max_replicas < cluster.min_replicas:
        raise ExperimentError(f"{source}: cluster/max_replicas < min_replicas")
    return Experiment(
        name=raw["name"],
        description=raw.get("description", ""),
        jobs=names,
        job_models=tuple(models[m] for m in model_names),
        router=_lognormal(raw["router"]),
        cluster=cluster,
        controller=ControllerSpec(**raw["controller"]),
        trace_spec=dict(raw["trace"]),
        unit_time=raw.get("unit_time"),
        raw=raw,
    )


def load_experiment(path: str | os.PathLike) -> Experiment:
    """Load ``experiments/<name>/experiment.yaml`` (or the folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "experiment.yaml"
    if not path.is_file():
        raise ExperimentError(f"{path}: experiment definition not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ExperimentError(f"{path}: invalid YAML: {e}") from None
    return experiment_from_dict(raw, str(path))


def derive_trace(trace: Trace, exp: Experiment) -> Trace:
    """Apply the experiment's ``trace.derive`` (job pick, window, scale, repeat) to ``trace``."""
    import numpy as np

    from faro.model.trace import Trace

    d = exp.trace_spec.get("derive")
    if not d:
        return trace.select(exp.jobs)
    src_jobs = d.get("jobs") or list(trace.jobs)
    missing = [j for j in src_jobs if j not in trace.jobs]
    if missing:
        raise ExperimentError(f"experiment {exp.name}: trace/derive/jobs not in the trace: {missing}")
    sub = trace.select(src_jobs)
    first = int(d.get("first_minute", 0))
    n = int(d.get("minutes", sub.n_minutes - first))
    if first + n > sub.n_minutes:
        raise ExperimentError(
            f"experiment {exp.name}: trace/derive window {first}+{n} "
            f"exceeds the trace's {sub.n_minutes} minutes"
        )
    counts = sub.counts[first : first + n].astype(float) * float(d.get("scale", 1.0))
    counts = np.rint(counts).astype(np.int64)
    counts = np.tile(counts, (1, int(d.get("repeat", 1))))
    return Trace(exp.jobs, counts)


def experiment_trace(exp: Experiment, path: str | os.PathLike) -> tuple[Trace, list[str]]:
    """The experiment's trace read from ``path``, checked against its jobs: ``(trace, warnings)``.

    A job of the experiment missing from the file is an error (:class:`TraceError` naming
    the file and line); jobs the file has beyond the experiment's are left out with a
    warning naming them (unless ``trace.derive.jobs`` picks jobs on purpose).  The same
    check runs before anything starts (:func:`faro.workflow.config.check_config`) and in the
    ``prepare_trace`` rule.
    """
    from faro.model.trace import parse_trace

    derive = exp.trace_spec.get("derive")
    trace = parse_trace(path, None if derive else exp.jobs)
    warnings = []
    if not derive and trace.extra_jobs:
        warnings.append(
            f"{path}: job(s) not in experiment {exp.name}, ignored: {', '.join(trace.extra_jobs)}"
        )
    return derive_trace(trace, exp), warnings
