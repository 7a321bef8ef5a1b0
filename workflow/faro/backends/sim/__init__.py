"""The ``sim`` backend: the built-in discrete-event simulator.

- :mod:`.backend` the adapter behind the workflow's stage rules (``get_backend("sim")``)
- :mod:`.engine` a run: arrivals, dispatch, the control loop's ticks, the logs
- :mod:`.kernel` the compiled event loop (numba)
- :mod:`.random` the run's random streams
- :mod:`.inprocess` many runs in one process (sweeps, selection, benchmarks)
- :mod:`.golden` the golden checksums of short runs (tests/golden)
"""
