"""Load forecasters for the predictive policies (docs/model.md section s 2 and 4).

``history`` loads the artifact's checked history; ``base`` defines :class:`Forecaster` with
:class:`LastValue` and :class:`Oracle`; ``light`` is the default probabilistic forecaster;
``nhits`` the optional darts N-HiTS (imported lazily); ``evaluate`` scores them on day 11.
"""

from faro.forecast.base import Forecaster, LastValue, Oracle
from faro.forecast.history import (
    ChecksumError,
    History,
    load_history,
    load_history_from_dir,
)
from faro.forecast.light import LogARForecaster
from faro.forecast.registry import NAMES, make_forecaster

__all__ = [
    "ChecksumError",
    "Forecaster",
    "History",
    "LastValue",
    "LogARForecaster",
    "NAMES",
    "Oracle",
    "load_history",
    "load_history_from_dir",
    "make_forecaster",
]
