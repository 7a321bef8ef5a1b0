"""Faro's cluster-wide optimisation (docs/model.md section 4) as pure functions.

- :mod:`faro.solver.latency`: Erlang C and the capped M/D/c p99 latency estimate.
- :mod:`faro.solver.utility`: relaxed/step utilities, admission penalty, cold start.
- :mod:`faro.solver.objectives`: Faro-Sum, -Fair, -FairSum and the Penalty variants.
- :mod:`faro.solver.solve`: relaxation + rounding + adjust, hierarchy, slack escalation.
"""

from faro.solver.latency import erlang_c, mdc_p99_latency
from faro.solver.objectives import Objective, combine, parse_objective
from faro.solver.solve import (
    SolveResult,
    evaluate,
    solve,
    solve_auto,
    solve_hierarchical,
    solve_with_slack,
)
from faro.solver.utility import admission_penalty, job_utilities, relaxed_utility, step_utility

__all__ = [
    "erlang_c", "mdc_p99_latency", "Objective", "combine", "parse_objective", "SolveResult",
    "evaluate", "solve", "solve_auto", "solve_hierarchical", "solve_with_slack",
    "admission_penalty", "job_utilities", "relaxed_utility", "step_utility",
]
