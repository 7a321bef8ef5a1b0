"""Faro's cluster-wide optimisation (docs/model.md section 4) as pure functions.

- :mod:`faro.solver.latency`: Erlang C and the capped M/D/c p99 latency estimate.
- :mod:`faro.solver.utility`: relaxed/step utilities, admission penalty, cold start.
- :mod:`faro.solver.objectives`: Faro-Sum, -Fair, -FairSum and the Penalty variants.
- :mod:`faro.solver.solve`: relaxation + rounding + adjust, hierarchy, slack escalation.
"""
