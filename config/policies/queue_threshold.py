"""An example user policy: scale on queue length instead of latency.

Run it as a cell of the matrix by naming it in the config:
    snakemake --cores 8 all --config 'policies=[aiad,queue_threshold]'
"""

from faro.control.types import Action
from faro.policies.base import Policy


class QueueThreshold(Policy):
    """+1 replica when a job's requests per replica exceed ``high``; -1 below ``low``."""

    interval_s = 10.0
    #: its parameters: names, types, ranges, defaults (an unknown or out-of-range one fails up front)
    PARAMS = {
        "high": {"type": "number", "exclusiveMinimum": 0, "default": 3.0,
                 "description": "upscale above this many held requests per replica"},
        "low": {"type": "number", "minimum": 0, "default": 0.5,
                "description": "downscale below this many held requests per replica"},
    }

    def __init__(self, params=None, *, jobs=(), quota=0):
        super().__init__(params, jobs=jobs, quota=quota)  # checks params, fills the defaults
        self.high = float(self.params["high"])
        self.low = float(self.params["low"])

    def decide(self, snapshot):
        actions = []
        for job in snapshot.jobs:
            if job.executor_busy or job.active_replicas == 0:
                continue
            held = job.head_queue + sum(job.replica_queues)
            per_replica = held / job.active_replicas
            if per_replica > self.high and snapshot.free_cpus > 0:
                actions.append(Action(job.name, delta=+1, source="queue_threshold"))
            elif per_replica < self.low and job.replicas > 1:
                actions.append(Action(job.name, delta=-1, source="queue_threshold"))
        return actions
