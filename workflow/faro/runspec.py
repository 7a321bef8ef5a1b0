"""One run, fully specified and typed: :class:`RunSpec`.

The workflow builds it once per run from the config (``rules/common.smk:get_run_spec``, as
a JSON-able dict in the rule's params, so that it is also the run's rerun trigger) and every
stage turns that dict back into this object once (:meth:`RunSpec.from_dict`).  Every backend
and the live autoscaler process read the same object: the experiment (carried whole, so a
pod needs no file of the project), the resolved policy (class and parameters, never a file
name to re-read), quota, seed, time scale, trace, backend options.  Nothing downstream
reshapes it into per-backend dicts; a process that must hand it on writes
:meth:`RunSpec.to_dict` as JSON and the other side reads it back with :meth:`RunSpec.from_dict`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from faro.model.experiment import Experiment, experiment_from_dict


class RunSpecError(ValueError):
    pass


def policy_context(exp: Experiment, *, unit_time: float, data_dir: str | os.PathLike, seed: int,
                   trace_counts: Any = None) -> dict[str, Any]:
    """What a policy binds to besides metrics, on every backend (JSON-able): time scale,
    trained-model locations, trace scale and seed; plus the trace's counts when given (the
    oracle forecaster's truth)."""
    derive = exp.trace_spec.get("derive") or {}
    ctx: dict[str, Any] = {
        "unit_time": float(unit_time),
        "data_dir": str(data_dir),
        "models_dir": str(Path(data_dir) / "models"),
        "trace_scale": float(derive.get("scale", 1.0)),
        "seed": int(seed),
    }
    if trace_counts is not None:
        ctx["trace_counts"] = trace_counts
    return ctx


@dataclass(frozen=True)
class PolicySpec:
    """A policy as configured: its config name (the cell's folder), its class (a built-in name,
    ``module:Class`` or ``file.py:Class``) and its parameters."""

    name: str
    cls: str
    params: Mapping[str, Any] = field(default_factory=dict)
    #: files under the data folder it reads (e.g. a trained forecaster), relative to the project
    data: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSpec:
    """Everything one run of (experiment, backend, quota, policy, seed) needs."""

    experiment: Mapping[str, Any]  # the experiment definition as loaded (experiment.yaml)
    backend: str
    quota: int
    seed: int
    policy: PolicySpec
    unit_time: float  # seconds (wall or simulated) per trace minute
    trace_file: str  # the experiment's prepared trace (artifact JSON Lines)
    results: str = "results"
    data_dir: str = "results/data"
    project_root: str = "."
    config_hash: str = ""  # the run's identity (provenance)
    backend_options: Mapping[str, Any] = field(default_factory=dict)

    # -- derived, computed once per object ------------------------------------------
    @cached_property
    def exp(self) -> Experiment:
        # validated where the spec was made (make_run_spec, read_json): a stage does not redo it
        return experiment_from_dict(dict(self.experiment), f"run spec of {self.label}", validate=False)

    @property
    def experiment_name(self) -> str:
        return str(self.experiment["name"])

    @property
    def jobs(self) -> tuple[str, ...]:
        return self.exp.jobs

    @property
    def label(self) -> str:
        name = self.experiment.get("name")
        return f"{name}/{self.backend}/{self.quota} CPUs/{self.policy.name}/seed {self.seed}"

    @property
    def native(self) -> bool:
        """The policy is Ray Serve's own autoscaler (``native: true``): the ``ray`` backend gives
        the deployments Serve's ``autoscaling_config`` and the autoscaler process only observes."""
        return bool(self.policy.params.get("native", False))

    def job_specs(self) -> list:
        """The control loop's view of the jobs (name, SLO, processing time)."""
        from faro.control.controller import JobSpec

        return [JobSpec(j, float(m.slo_ms), float(m.processing_ms))
                for j, m in zip(self.exp.jobs, self.exp.job_models, strict=True)]

    def services(self) -> dict[str, dict[str, float]]:
        """Each job's service-time model (the emulated Serve app's, the simulator's)."""
        return {j: dict(vars(m.service_time)) for j, m in zip(self.exp.jobs, self.exp.job_models,
                                                              strict=True)}

    def controller_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`faro.control.controller.Controller` besides the policy."""
        c, k = self.exp.controller, self.exp.cluster
        return {"downscale_busy_s": c.downscale_busy_s, "upscale_order": c.upscale_order,
                "batch_upscale_order": c.batch_upscale_order, "min_replicas": k.min_replicas,
                "max_replicas": k.max_replicas}

    def policy_context(self, trace_counts: Any = None) -> dict[str, Any]:
        """What this run's policy binds to (:func:`policy_context`)."""
        return policy_context(self.exp, unit_time=self.unit_time, data_dir=self.data_dir, seed=self.seed,
                              trace_counts=trace_counts)

    def build_policy(self, trace_counts: Any = None, *, bind: bool = True):
        """The run's policy object (bound to :meth:`policy_context` unless ``bind`` is false)."""
        from faro.policies.registry import make_policy

        context = self.policy_context(trace_counts) if bind else None
        return make_policy(self.policy.cls, self.policy.params, jobs=self.jobs, quota=self.quota,
                           base_dir=self.project_root, context=context)

    def initial_replicas(self, policy: Any = None) -> dict[str, int]:
        """Replicas per job at deployment: the policy's starting allocation (missing jobs: 1)."""
        init = (policy or self.build_policy(bind=False)).initial_replicas()
        return {j: int(init.get(j, 1)) for j in self.jobs}

    def option(self, key: str, default: Any = None) -> Any:
        """One of the backend's options (the config's ``ray:`` / ``k8s:`` / ``sim:`` section)."""
        return self.backend_options.get(key, default)

    def replace(self, **changes: Any) -> RunSpec:
        return dataclasses.replace(self, **changes)

    def with_backend_options(self, **options: Any) -> RunSpec:
        return self.replace(backend_options={**self.backend_options, **options})

    # -- (de)serialisation ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["policy"] = {"name": self.policy.name, "class": self.policy.cls, "params": dict(self.policy.params),
                       "data": list(self.policy.data)}
        d["experiment"] = json.loads(json.dumps(self.experiment))
        d["backend_options"] = json.loads(json.dumps(dict(self.backend_options)))
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        missing = sorted(f.name for f in dataclasses.fields(cls)
                         if f.name not in d and f.default is dataclasses.MISSING
                         and f.default_factory is dataclasses.MISSING)
        if unknown or missing:
            raise RunSpecError(f"run spec: unknown keys {unknown}, missing keys {missing}")
        p = d["policy"]
        if not isinstance(p, Mapping) or "name" not in p or "class" not in p:
            raise RunSpecError("run spec: policy must be {name, class, params}")
        policy = PolicySpec(str(p["name"]), str(p["class"]), dict(p.get("params") or {}),
                            tuple(p.get("data") or ()))
        kw = {k: v for k, v in d.items() if k in names}
        kw.update(policy=policy, quota=int(d["quota"]), seed=int(d["seed"]), unit_time=float(d["unit_time"]),
                  experiment=dict(d["experiment"]), backend_options=dict(d.get("backend_options") or {}))
        return cls(**kw)

    def write_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")
        return path

    @classmethod
    def read_json(cls, path: str | os.PathLike) -> RunSpec:
        """A run spec from a file (by-hand tools, a pod): its experiment is validated here."""
        spec = cls.from_dict(json.loads(Path(path).read_text()))
        experiment_from_dict(dict(spec.experiment), str(path))
        return spec
