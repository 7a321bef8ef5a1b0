"""Optional N-HiTS forecaster (darts over torch), as the artifact used in its simulations.

Honest version (docs/model.md section 4): trained on days 1-8 of the history with early stopping
on days 9-10, never on day 11 (the artifact early-stopped on the test day).  One global model
per input length (15 minutes; 10 for jobs 2 and 8) over all jobs' series and augmented
samples, on log1p counts, quantile-regression likelihood, 100 samples per forecast drawn with a
fixed seed.  :func:`train_nhits` trains and saves the models to a directory (a Snakemake
rule's output); :func:`load_nhits` loads them back after checking their recorded sha256.

This module imports without torch; using it without the extra raises :class:`ImportError`
that says what to install.  Tested with torch 2.13.0 (CPU), darts 0.48.1, pytorch-lightning
2.6.6, numpy 2.4, pandas 3.1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from faro.forecast.base import (
    DEFAULT_INPUT_LEN,
    DEFAULT_INPUT_LEN_BY_JOB,
    Forecaster,
    check_history,
    check_quantiles,
    monotone_nonneg,
)
from faro.forecast.history import History, sha256_file

INSTALL_HINT = ("the N-HiTS forecaster needs the optional packages torch and darts: "
                "pip install torch==2.13.0 'darts[torch]==0.48.1'")
MANIFEST = "manifest.json"
#: quantiles the model is trained on (sampling draws from this quantile function)
TRAIN_QUANTILES = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def _require_darts():
    """Import darts' pieces lazily; a clear ImportError when the extra is missing."""
    try:
        import torch  # noqa: F401
        from darts import TimeSeries
        from darts.models import NHiTSModel
        from darts.utils.likelihood_models import QuantileRegression
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return TimeSeries, NHiTSModel, QuantileRegression


def _to_series(rows: np.ndarray):
    TimeSeries, _, _ = _require_darts()
    return [TimeSeries.from_values(np.log1p(np.maximum(r, 0.0)).astype(np.float32)[:, None])
            for r in np.atleast_2d(rows)]


def _input_lens(n_jobs: int, input_len: int, by_job: Mapping[int, int]) -> dict[int, int]:
    return {j: by_job.get(j, input_len) for j in range(n_jobs)}


def train_nhits(history: History, out_dir: str | Path, *, input_len: int = DEFAULT_INPUT_LEN,
                input_len_by_job: Mapping[int, int] | None = None, horizon: int = 7,
                train_max_day: int = 8, val_days: tuple[int, int] = (9, 10),
                max_epochs: int = 30, patience: int = 5, batch_size: int = 256,
                max_samples_per_ts: int | None = None, stride: int = 2,
                layer_widths: int = 256,
                seed: int = 0, num_threads: int | None = None,
                verbose: bool = False) -> Path:
    """Train one N-HiTS per distinct input length; save under ``out_dir`` with a manifest.

    Training windows: every ``stride``-th window of days 1..``train_max_day`` (a stride keeps
    windows from the whole day, where darts' ``max_samples_per_ts`` keeps only the latest);
    validation (early stopping on ``val_loss``): ``val_days``.  Both come from
    :meth:`History.training_series`, which refuses day 11.
    Returns the manifest path.
    """
    TimeSeries, NHiTSModel, QuantileRegression = _require_darts()
    import torch
    from pytorch_lightning.callbacks import EarlyStopping

    if num_threads:
        torch.set_num_threads(int(num_threads))
    if train_max_day >= val_days[0]:
        raise ValueError("validation days must come after the training days")
    by_job = dict(DEFAULT_INPUT_LEN_BY_JOB if input_len_by_job is None else input_len_by_job)
    lens = _input_lens(history.n_jobs, input_len, by_job)
    train = history.training_series(max_day=train_max_day)
    val = history.training_series(min_day=val_days[0], max_day=val_days[1])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # every job's series trains every model (global models); the length only sets the window
    tr = [s for j in range(history.n_jobs) for s in _to_series(train[j])]
    va = [s for j in range(history.n_jobs) for s in _to_series(val[j])]
    models = {}
    for L in sorted(set(lens.values())):
        stopper = EarlyStopping(monitor="val_loss", patience=patience, min_delta=1e-4,
                                mode="min")
        model = NHiTSModel(
            input_chunk_length=L, output_chunk_length=horizon, layer_widths=layer_widths,
            likelihood=QuantileRegression(quantiles=list(TRAIN_QUANTILES)),
            n_epochs=max_epochs, batch_size=batch_size, random_state=seed,
            model_name=f"nhits_in{L}", work_dir=str(out / "_work"), save_checkpoints=True,
            force_reset=True,
            pl_trainer_kwargs={"accelerator": "cpu", "callbacks": [stopper],
                               "enable_progress_bar": verbose, "logger": False},
        )
        model.fit(tr, val_series=va, max_samples_per_ts=max_samples_per_ts, stride=stride,
                  verbose=verbose)
        epochs_run = int(model.epochs_trained)
        # keep the weights of the best validation epoch (our own checkpoint, just written)
        model = NHiTSModel.load_from_checkpoint(f"nhits_in{L}", work_dir=str(out / "_work"),
                                                best=True, trusted=True)
        fname = f"nhits_in{L}.pt"
        model.save(str(out / fname))
        models[str(L)] = {"file": fname, "epochs_run": epochs_run,
                          "sha256": sha256_file(out / fname),
                          "ckpt_sha256": sha256_file(out / (fname + ".ckpt"))}
    manifest = {"input_lens": {str(j): L for j, L in lens.items()}, "horizon": horizon,
                "models": models, "seed": seed, "train_days": [1, train_max_day],
                "val_days": list(val_days), "max_epochs": max_epochs, "patience": patience,
                "layer_widths": layer_widths, "max_samples_per_ts": max_samples_per_ts,
                "stride": stride}
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(out / MANIFEST)
    return out / MANIFEST


class NHiTSForecaster(Forecaster):
    """Quantiles of ``num_samples`` N-HiTS sample paths (fixed ``seed`` per darts call: the
    same windows asked the same way give the same draws).

    ``models`` maps input length -> a fitted darts ``NHiTSModel``; ``input_lens`` maps job ->
    input length (``job=None`` uses ``default_len``).  Samples are cached per (job, window), so
    asking again at other quantiles costs nothing.
    """

    name = "nhits"

    def __init__(self, models: Mapping[int, Any], input_lens: Mapping[int, int],
                 default_len: int = DEFAULT_INPUT_LEN, horizon: int = 7,
                 num_samples: int = 100, seed: int = 0) -> None:
        _require_darts()
        self.models = dict(models)
        self.input_lens = dict(input_lens)
        self.default_len = int(default_len)
        self.horizon = int(horizon)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self._cache: dict[bytes, np.ndarray] = {}

    def fit(self, train):
        raise NotImplementedError("train N-HiTS with faro.forecast.nhits.train_nhits(history, "
                                  "out_dir) and load it with load_nhits(out_dir)")

    def _window(self, h: np.ndarray, job: int | None) -> np.ndarray:
        L = self.input_lens.get(job, self.default_len) if job is not None else self.default_len
        w = h[-L:]
        if w.size < L:
            w = np.concatenate([np.full(L - w.size, w[0]), w])
        return w

    def _samples(self, windows: list[np.ndarray]) -> list[np.ndarray]:
        """(horizon, num_samples) count samples per window; one darts call per input length."""
        out: list[np.ndarray | None] = [None] * len(windows)
        todo: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            hit = self._cache.get(w.tobytes())
            if hit is not None:
                out[i] = hit
            else:
                todo.setdefault(len(w), []).append(i)
        for L, idx in todo.items():
            if L not in self.models:
                raise ValueError(f"no N-HiTS model for input length {L}")
            series = _to_series(np.stack([windows[i] for i in idx]))
            preds = self.models[L].predict(n=self.horizon, series=series,
                                           num_samples=self.num_samples,
                                           random_state=self.seed, verbose=False,
                                           show_warnings=False)
            for i, p in zip(idx, preds):
                s = np.expm1(p.all_values(copy=False)[:, 0, :].astype(float))
                if len(self._cache) > 512:
                    self._cache.clear()
                self._cache[windows[i].tobytes()] = s
                out[i] = s
        return out  # type: ignore[return-value]

    def _quantiles(self, s: np.ndarray, q: np.ndarray, horizon: int) -> np.ndarray:
        return monotone_nonneg(np.quantile(s[:horizon], q, axis=1), q)

    def predict(self, history, horizon=7, quantiles=(0.5,), *, job=None):
        q = check_quantiles(quantiles)
        if not 1 <= int(horizon) <= self.horizon:
            raise ValueError(f"horizon must be in 1..{self.horizon}, got {horizon}")
        s = self._samples([self._window(check_history(history), job)])[0]
        return self._quantiles(s, q, int(horizon))

    def predict_batch(self, histories, horizon=7, quantiles=(0.5,), jobs=None):
        q = check_quantiles(quantiles)
        jobs = list(range(len(histories))) if jobs is None else list(jobs)
        ws = [self._window(check_history(h), j) for h, j in zip(histories, jobs)]
        return np.stack([self._quantiles(s, q, int(horizon)) for s in self._samples(ws)])


def load_nhits(model_dir: str | Path, *, num_samples: int = 100, seed: int = 0,
               verify: bool = True) -> NHiTSForecaster:
    """Load :func:`train_nhits`'s output (checks each file's sha256 against the manifest)."""
    _, NHiTSModel, _ = _require_darts()
    import logging

    # Lightning logs tips and device info at INFO on every predict call
    for name in ("pytorch_lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    d = Path(model_dir)
    man = json.loads((d / MANIFEST).read_text())
    models = {}
    for L, info in man["models"].items():
        f = d / info["file"]
        if verify:
            for path, key in ((f, "sha256"), (Path(str(f) + ".ckpt"), "ckpt_sha256")):
                if sha256_file(path) != info[key]:
                    raise ValueError(f"sha256 mismatch for {path}: expected {info[key]}, "
                                     f"got {sha256_file(path)}; retrain the N-HiTS models")
        # the files are our own (hashes just checked): full unpickling is safe here
        models[int(L)] = NHiTSModel.load(str(f), pl_trainer_kwargs={
            "accelerator": "cpu", "enable_progress_bar": False, "logger": False}, trusted=True)
    lens = {int(j): int(L) for j, L in man["input_lens"].items()}
    return NHiTSForecaster(models, lens, horizon=int(man["horizon"]),
                           num_samples=num_samples, seed=seed)
