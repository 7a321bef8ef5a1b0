"""Hybrid policies: a predictive step every 300 s plus the AI reactive layer in between.

* **MArk** (MArk/Cocktail/Barista): each job to ceil(lambda x processing/SLO) with
  lambda the largest rate of a 7-minute point forecast.
* **Faro** (all variants): one cluster-wide optimisation of the replica vector
  (:mod:`faro.solver`) on probabilistic forecasts, with slack escalation.

docs/model.md section 4.  The predictive step first runs at 60 s; when it runs, the AI
layer's counters are cleared; AI only acts on jobs whose executor is idle.  Predictive
actions carry 5 trials.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faro.control.types import Action, Snapshot
from faro.forecast.registry import NAMES as FORECASTER_NAMES
from faro.policies.base import Policy, ceil_int
from faro.policies.reactive import AI
from faro.solver.names import METHODS

if TYPE_CHECKING:
    from faro.forecast.base import Forecaster

log = logging.getLogger("faro.policies.hybrid")

HORIZON = 7
#: per-series input windows (minutes): 15, but 10 for series 2 and 8 (docs/model.md section 4)
INPUT_LEN = 15
INPUT_LEN_BY_SERIES = {2: 10, 8: 10}


class _Predictive:
    """The predictive layer of a hybrid policy (calls back into its owner)."""

    def __init__(self, owner: Hybrid, interval_s: float) -> None:
        self.owner = owner
        self.interval_s = float(interval_s)
        self.first_at_s = self.interval_s if self.interval_s <= 60 else 60.0

    def decide(self, snapshot: Snapshot) -> list[Action]:
        self.owner.ai.reset()
        actions = self.owner.predictive_step(snapshot)
        for a in actions:
            a.batch = True
        return actions


class Hybrid(Policy):
    """Base of MArk and Faro: forecasting plumbing, the AI layer, the schedule."""

    PARAMS = {
        "interval_s": {"type": "number", "exclusiveMinimum": 0, "default": 300,
                       "description": "seconds between predictive steps (the first at min(interval, 60 s))"},
        "trials": {"type": "integer", "minimum": 1, "default": 5,
                   "description": "attempts of a predictive action the controller makes"},
        "forecaster": {"enum": list(FORECASTER_NAMES), "default": "default",
                       "description": "load forecaster (faro.forecast)"},
        "forecaster_params": {"type": "object", "default": {},
                              "description": "keyword arguments of the forecaster "
                                             "(nhits: num_samples, seed)"},
        "series": {"type": "array", "items": {"type": "integer", "minimum": 0},
                   "description": "history series of each job "
                                  "(default: the trailing number of its name, mod 10)"},
        "input_len": {"type": "integer", "minimum": 1,
                      "description": "forecast input window in minutes (default 15; 10 for series 2 and 8)"},
        "horizon": {"type": "integer", "minimum": 0, "default": HORIZON,
                    "description": "forecast horizon in minutes (0: current rates)"},
        "reactive": {"type": "boolean", "default": True,
                     "description": "run the AI layer between predictive steps"},
        "reactive_interval_s": {"type": "number", "exclusiveMinimum": 0, "default": 10,
                                "description": "seconds between AI ticks"},
        "upscale_ticks": {"type": "integer", "minimum": 1, "default": 3,
                          "description": "AI: ticks above the SLO before an upscale"},
        "downscale_ticks": {"type": "integer", "minimum": 1, "default": 60,
                            "description": "AI: downscale signal period (AI never downscales)"},
    }

    def __init__(self, params: Mapping[str, Any] | None = None, *, jobs: Sequence[str] = (), quota: int = 0):
        super().__init__(params, jobs=jobs, quota=quota)
        p = self.params
        self.trials = int(p["trials"])
        self.forecaster_name = str(p["forecaster"])
        self.forecaster_params = dict(p["forecaster_params"])
        if "series" in p:
            self.series = [int(s) for s in p["series"]]
        else:
            self.series = [_series_of(j, k) for k, j in enumerate(self.jobs)]
        self.unit_time = 60.0
        self.ai = AI(
            {"interval_s": p["reactive_interval_s"], "only_idle_executors": True,
             "upscale_ticks": p["upscale_ticks"], "downscale_ticks": p["downscale_ticks"]},
            jobs=jobs, quota=quota,
        )
        self.reactive = bool(p["reactive"])
        self._predictive = _Predictive(self, float(p["interval_s"]))
        self.interval_s = self._predictive.interval_s
        self.forecaster: Forecaster | None = None
        self.steps_log: list[dict] = []

    def layers(self):
        return [self._predictive, self.ai] if self.reactive else [self._predictive]

    @staticmethod
    def data_inputs(params: Mapping[str, Any], data_dir: str) -> list[str]:
        """Files a run of this policy reads (Snakemake inputs): the history for trained forecasters."""
        from faro.forecast.training import TRAINED, model_path

        name = str(params.get("forecaster", "default")).lower()
        if name in TRAINED:
            return [str(model_path(data_dir, name))]
        if name == "nhits":
            return [f"{data_dir}/models/nhits/manifest.json"]
        return []

    # -- context -------------------------------------------------------------
    def bind(self, context: Mapping[str, Any]) -> None:
        """Receive the run's context: unit_time, data_dir (history), trace counts (oracle).

        In-process callers may pass a fitted forecaster instance as ``context["forecaster"]``
        (forecaster selection scores candidates that way); otherwise it is built by name.
        """
        self.unit_time = float(context.get("unit_time", 60.0))
        self.trace_scale = float(context.get("trace_scale", 1.0))
        given = context.get("forecaster")
        self.forecaster = (given if given is not None
                           else build_forecaster(self.forecaster_name, self.forecaster_params, context))

    def _ensure_forecaster(self) -> Forecaster:
        if self.forecaster is None:
            raise RuntimeError(
                f"{type(self).__name__}: no forecaster bound; the backend must call bind(context) "
                "(with data_dir for trained forecasters)"
            )
        return self.forecaster

    # -- inputs of the predictive step ---------------------------------------
    def input_len(self, k: int) -> int:
        return int(self.params.get("input_len", INPUT_LEN_BY_SERIES.get(self.series[k], INPUT_LEN)))

    def rates(self, snapshot: Snapshot, quantile: float | None) -> np.ndarray:
        """Rates (req/s), shape (n_jobs, steps): forecasts where enough history exists,
        else the observed counts (docs/model.md section 4)."""
        forecaster = self._ensure_forecaster()
        hists = [np.asarray(j.arrivals_per_min, dtype=float) for j in snapshot.jobs]
        n_obs = min(len(h) for h in hists)
        steps = HORIZON if n_obs >= HORIZON else max(1, n_obs)
        horizon = int(self.params["horizon"])
        rows = []
        for k, h in enumerate(hists):
            if len(h) >= self.input_len(k) and horizon > 0:
                q = 0.5 if quantile is None else quantile
                if forecaster.name == "oracle":
                    f = forecaster.predict(h, horizon, (q,), job=k)[0]
                else:  # trained on the artifact's counts: forecast in its scale
                    s = self.trace_scale
                    f = forecaster.predict(h / s, horizon, (q,), job=self.series[k])[0] * s
                rows.append(f[:steps] if horizon >= steps else np.resize(f, steps))
            elif len(h) == 0:
                rows.append(np.zeros(steps))
            else:
                rows.append(h[-steps:] if len(h) >= steps else np.resize(h, steps))
        return np.vstack(rows) / self.unit_time

    def predictive_step(self, snapshot: Snapshot) -> list[Action]:  # pragma: no cover - abstract
        raise NotImplementedError


class MArk(Hybrid):
    """Per job: ceil(lambda_max x processing / SLO), lambda_max from a point forecast."""

    def predictive_step(self, snapshot: Snapshot) -> list[Action]:
        lam = self.rates(snapshot, None).max(axis=1)
        out = []
        for k, job in enumerate(snapshot.jobs):
            n = max(1, ceil_int(lam[k] * job.processing_ms / job.slo_ms))
            out.append(Action(job.name, target=n, trials=self.trials, source="mark"))
        return out


class Faro(Hybrid):
    """Cluster-wide utility optimisation (Faro-Sum/Fair/FairSum/PenaltySum/PenaltyFairSum)."""

    _unit = {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}
    #: the solver's keys have no default here: faro.solver.solve.solve's own apply
    PARAMS = {
        "objective": {"enum": ["sum", "fair", "fair_sum", "penalty_sum", "penalty_fair_sum"],
                      "default": "sum",
                      "description": "cluster objective (Faro-Sum, -Fair, -FairSum, -PenaltySum, "
                                     "-PenaltyFairSum)"},
        "quantile": {**_unit, "default": 0.6, "description": "forecast quantile the plan starts from"},
        "slack_escalation": {"type": "boolean", "default": True,
                             "description": "raise the quantile while the plan leaves CPUs free"},
        "max_quantile": {**_unit, "default": 0.9, "description": "highest quantile of slack escalation"},
        "quantile_step": {**_unit, "default": 0.1, "description": "quantile step of slack escalation"},
        "probabilistic": {"type": "boolean", "default": True,
                          "description": "plan on a quantile forecast (false: the point forecast)"},
        "method": {"enum": list(METHODS), "description": "solver (default cobyla)"},
        "rhobeg": {"type": "number", "exclusiveMinimum": 0,
                   "description": "COBYLA's initial step (default 3.0)"},
        "relaxed": {"type": "boolean", "description": "relaxed (inverse) utility (default true)"},
        "adjust": {"type": "boolean", "description": "adjust pass after rounding (default true)"},
        "mdc": {"type": "boolean", "description": "M/D/c latency estimate (default true; false: M/M/c)"},
        "rho_cap": {"type": "number", "exclusiveMinimum": 0,
                    "description": "utilisation cap of the latency model"},
        "fair_weight": {"type": "number", "minimum": 0,
                        "description": "weight of U in the fair objective "
                                       "(default 0: Faro-Fair is the spread alone)"},
        "admission_round_up": {"type": "boolean", "default": False,
                               "description": "Penalty variants: round admission rates up to whole percents "
                                              "(default false: enforced as the solver returns them)"},
        "groups": {"type": "integer", "minimum": 1,
                   "description": "hierarchical solving above this many jobs (default 10)"},
    }

    def __init__(self, params=None, *, jobs=(), quota=0):
        super().__init__(params, jobs=jobs, quota=quota)
        p = self.params
        self.objective = str(p["objective"])
        self.quantile = float(p["quantile"])
        self.slack = bool(p["slack_escalation"])
        self.max_quantile = float(p["max_quantile"])
        self.quantile_step = float(p["quantile_step"])
        self.probabilistic = bool(p["probabilistic"])
        self.admission_round_up = bool(p["admission_round_up"])
        solver_keys = ("method", "rhobeg", "relaxed", "adjust", "mdc", "rho_cap", "fair_weight", "groups")
        self.solver_kw = {k: p[k] for k in solver_keys if k in p}
        from faro.solver.objectives import parse_objective

        self.penalty = parse_objective(self.objective).penalty

    def predictive_step(self, snapshot: Snapshot) -> list[Action]:
        from faro.solver.solve import solve_auto, solve_with_slack

        current = np.array([j.replicas for j in snapshot.jobs])
        kw = dict(
            objective=self.objective,
            slo_s=np.array([j.slo_ms for j in snapshot.jobs]) / 1000.0,
            proc_s=np.array([j.processing_ms for j in snapshot.jobs]) / 1000.0,
            cold_start=snapshot.free_cpus <= 0,
            **self.solver_kw,
        )
        if self.penalty:
            kw["current_admission"] = np.array([j.admission_rate for j in snapshot.jobs])
        q0 = self.quantile if self.probabilistic else None
        if self.slack and self.probabilistic:
            res = solve_with_slack(
                lambda q: self.rates(snapshot, q), current, snapshot.quota,
                start_quantile=self.quantile, step=self.quantile_step, max_quantile=self.max_quantile,
                solver=solve_auto, **kw,
            )
        else:
            res = solve_auto(self.rates(snapshot, q0), current, snapshot.quota, **kw)
        self.steps_log.append({"time": snapshot.time, "replicas": res.replicas.tolist(),
                               "objective": float(res.objective), "quantile": getattr(res, "quantile", q0),
                               "seconds": float(res.seconds), "n_evals": int(res.n_evals)})
        out = []
        for k, job in enumerate(snapshot.jobs):
            adm = None
            if self.penalty and res.admission is not None:
                adm = float(res.admission[k])
                if self.admission_round_up:
                    # option: whole percents, rounded up like the replica counts (not in the
                    # artifact's description; the README shows what it changes)
                    adm = min(1.0, ceil_int(adm * 100.0) / 100.0)
            out.append(Action(job.name, target=int(res.replicas[k]), trials=self.trials, admission_rate=adm,
                              source=f"faro_{self.objective}"))
        return out


def _series_of(job: str, index: int) -> int:
    """History series of a job: the trailing number of serve-clusterK (mod 10), else its index."""
    m = re.search(r"(\d+)$", job)
    return (int(m.group(1)) if m else index) % 10


def build_forecaster(name: str, params: Mapping[str, Any], context: Mapping[str, Any]):
    """Make (or load the trained) forecaster ``name`` for a run with ``context``."""
    from faro.forecast.registry import make_forecaster
    from faro.forecast.training import TRAINED, load_trained, model_path

    key = name.lower().replace("-", "_")
    if key == "oracle":
        counts = context.get("trace_counts")
        if counts is None:
            raise ValueError("the oracle forecaster needs the trace (context['trace_counts'])")
        return make_forecaster("oracle", truth=[np.asarray(c, float) for c in np.asarray(counts).T])
    if key in ("last_value", "lastvalue", "persistence"):
        return make_forecaster("last_value")
    if key == "nhits":
        return make_forecaster("nhits", model_dir=str(Path(context["data_dir"]) / "models" / "nhits"),
                               **dict(params))
    if key in TRAINED:
        return load_trained(model_path(context["data_dir"], key))
    raise ValueError(f"unknown forecaster {name!r}")
