"""A trivial reactive policy for the ray backend tests (not a test module).

Every tick: +1 replica for a job whose mean latency exceeds its SLO, -1 for a job
below a quarter of it with more than one replica.
"""

from faro.control.types import Action
from faro.policies.base import Policy


class TinyReactive(Policy):
    interval_s = 10.0

    def decide(self, snapshot):
        out = []
        for j in snapshot.jobs:
            if j.avg_latency_ms > j.slo_ms:
                out.append(Action(j.name, delta=+1, source="tiny"))
            elif 0 < j.avg_latency_ms < j.slo_ms / 4 and j.replicas > 1:
                out.append(Action(j.name, delta=-1, source="tiny"))
        return out
