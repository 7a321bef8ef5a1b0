"""Training data and trained models of the forecasters.

The training data are days 1-10 of the artifact's history (never day 11, the replayed
day), read only after its sha256 is checked.  A fitted forecaster is saved once per
data directory by the ``train_forecaster`` rule and loaded by every run that uses it.
"""

from __future__ import annotations

import pickle
from functools import cache
from pathlib import Path

import numpy as np

from faro.atomic import atomic_path
from faro.forecast.history import load_history
from faro.model.data import HISTORY_FILE, lookup

#: forecasters with a training step, and the file name of their saved model
TRAINED = {"default": "light.pkl", "light": "light.pkl"}


@cache
def _history(path: str):
    return load_history(path, lookup("faro-artifact", HISTORY_FILE).sha256)


def history_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "faro-artifact" / HISTORY_FILE


def model_path(data_dir: str | Path, name: str) -> Path:
    return Path(data_dir) / "models" / TRAINED[name.lower()]


def history(data_dir: str | Path):
    """The verified history of the artifact (see :class:`faro.forecast.history.History`)."""
    return _history(str(history_path(data_dir)))


def training_data(data_dir: str | Path, *, max_day: int = 10) -> list[np.ndarray]:
    """Per history series, its (days x samples, minutes) counts of days 1..``max_day``."""
    return history(data_dir).training_series(max_day=max_day)


def train_and_save(name: str, data_dir: str | Path, out: str | Path) -> None:
    """Fit forecaster ``name`` on days 1-10 and pickle it to ``out`` (atomically)."""
    from faro.forecast.registry import make_forecaster

    model = make_forecaster(name, train=training_data(data_dir))
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        pickle.dump(model, fh)


def load_trained(path: str | Path):
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: trained forecaster missing; run `snakemake {path}`")
    with open(path, "rb") as fh:
        return pickle.load(fh)
