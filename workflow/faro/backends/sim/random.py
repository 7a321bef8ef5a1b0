"""Independent random streams of one run, all derived from its seed.

Arrivals, service times, router delays, admission draws, dispatch order and the
controller's tie-breaking each get their own stream (``SeedSequence`` spawn
keys), per job where it matters, so changing one (say, a policy that drops
requests) never shifts another's draws.  One seed fixes a run completely.
The arrival streams (spawn key ``(0, job)``) are drawn by :mod:`faro.model.arrivals`,
which the live replayer shares, so a seed gives the same arrival times everywhere.
"""

from __future__ import annotations

import numpy as np

from faro.model.arrivals import ARRIVALS_KEY

# the spawn keys after the arrivals' (faro.model.arrivals.arrival_stream)
_SERVICE, _ROUTER, _ADMISSION, _DISPATCH, _CONTROLLER = range(ARRIVALS_KEY + 1, ARRIVALS_KEY + 6)


class RunStreams:
    def __init__(self, seed: int, n_jobs: int) -> None:
        self.seed = int(seed)
        self.n_jobs = int(n_jobs)

    def _gen(self, *key: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=key)))

    def service(self, job: int) -> np.random.Generator:
        return self._gen(_SERVICE, job)

    def router(self, job: int, direction: int) -> np.random.Generator:
        return self._gen(_ROUTER, job, direction)

    def admission(self, job: int) -> np.random.Generator:
        return self._gen(_ADMISSION, job)

    def dispatch(self) -> np.random.Generator:
        return self._gen(_DISPATCH)

    def controller(self) -> np.random.Generator:
        return self._gen(_CONTROLLER)
