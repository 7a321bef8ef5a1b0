"""Forecasters by name: ``make_forecaster("default" | "light" | "last_value" | "oracle" | "nhits")``."""

from __future__ import annotations

from typing import Any

import numpy as np

from faro.forecast.base import Forecaster, LastValue, Oracle

NAMES = ("default", "light", "last_value", "oracle", "nhits")


def make_forecaster(name: str, *, train: list[np.ndarray] | None = None,
                    **params: Any) -> Forecaster:
    """Build a forecaster; with ``train`` (per-job series of days 1-10) it is fitted too.

    - ``default`` / ``light``: :class:`LogARForecaster` (``params``: its constructor's).
    - ``last_value``: :class:`LastValue`.
    - ``oracle``: :class:`Oracle`, ``truth=`` the true series (per job).
    - ``nhits``: loads :func:`faro.forecast.nhits.load_nhits`'s ``model_dir=`` (train it first
      with :func:`faro.forecast.nhits.train_nhits`); ``num_samples``, ``seed`` optional.
    """
    key = name.lower().replace("-", "_")
    if key in ("default", "light"):
        from faro.forecast.light import LogARForecaster  # numba: imported when used

        f: Forecaster = LogARForecaster(**params)
    elif key in ("last_value", "lastvalue", "persistence"):
        f = LastValue(**params)
    elif key == "oracle":
        if "truth" not in params:
            raise ValueError("the oracle forecaster needs truth= (the true per-job series)")
        f = Oracle(**params)
    elif key == "nhits":
        from faro.forecast.nhits import load_nhits

        if "model_dir" not in params:
            raise ValueError("the nhits forecaster needs model_dir= (see train_nhits)")
        return load_nhits(params.pop("model_dir"), **params)
    else:
        raise ValueError(f"unknown forecaster {name!r}; choose one of {', '.join(NAMES)}")
    return f.fit(train) if train is not None else f
