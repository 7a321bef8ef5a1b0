"""Load forecasters for the predictive policies (docs/model.md sections 2 and 4).

``history`` loads the artifact's checked history; ``base`` defines :class:`Forecaster` with
:class:`LastValue` and :class:`Oracle`; ``light`` is the default probabilistic forecaster;
``nhits`` the optional darts N-HiTS (imported lazily); ``evaluate`` scores them on day 11.
"""
