"""A named Ray actor that collects per-request records from the replicas.

Why an actor and not Serve's Prometheus metrics: Serve's histograms are pushed
every few seconds, carry bucketed latencies only, and measure from the proxy,
while the autoscaler needs (a) the mean end-to-end latency of requests that
finished in the last window, (b) arrivals binned by *send* time into trace
minutes and (c) what every replica holds right now.  Every replica pushes its
finished requests (job, replica, send epoch, end epoch, status) and its held
count here; the autoscaler asks for a :meth:`FaroMetrics.snapshot` each tick.

The send epoch comes from the replayer's ``x-faro-sent`` header (same machine,
same clock), so latency = end - send covers the proxy, the head queue and the
replica.  Requests that Serve itself rejects (HTTP 503 when the head queue is
full) never reach a replica and are therefore missing here; their count comes
from Serve's own Prometheus counter (see :mod:`faro.backends.ray.promscrape`).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict, deque

import numpy as np

ACTOR_NAME = "faro_metrics"
NAMESPACE = "faro"


class MetricsStore:
    """Plain-Python state of the metrics actor (testable without Ray)."""

    def __init__(self, keep_s: float = 3600.0) -> None:
        self.keep_s = float(keep_s)
        #: job -> deque of (end_epoch, latency_s, status)
        self.finished: dict[str, deque] = defaultdict(deque)
        #: job -> sorted list of send epochs
        self.sent: dict[str, list[float]] = defaultdict(list)
        #: job -> replica -> (held, epoch of report)
        self.held: dict[str, dict[str, tuple[int, float]]] = defaultdict(dict)
        #: job -> replica -> its cumulative busy seconds (kept after the replica is gone)
        self.busy: dict[str, dict[str, float]] = defaultdict(dict)
        #: job -> requests answered 503 by the replica's admission control (cumulative)
        self.admission_drops: dict[str, int] = defaultdict(int)
        #: the actor runs methods in concurrent threads (max_concurrency): one at a time here
        self._lock = threading.Lock()

    def record(self, batch: list[tuple[str, str, float, float, int]]) -> None:
        with self._lock:
            self._record(batch)

    def _record(self, batch: list[tuple[str, str, float, float, int]]) -> None:
        for job, _replica, sent, end, status in batch:
            self.finished[job].append((float(end), float(end) - float(sent), int(status)))
            bisect.insort(self.sent[job], float(sent))
            if int(status) == 503:
                self.admission_drops[job] += 1

    def report_held(self, job: str, replica: str, held: int, epoch: float,
                    busy_s: float | None = None) -> None:
        with self._lock:
            self.held[job][replica] = (int(held), float(epoch))
            if busy_s is not None:
                self.busy[job][replica] = float(busy_s)

    def forget_replica(self, job: str, replica: str) -> None:
        with self._lock:
            self.held[job].pop(replica, None)

    def snapshot(
        self,
        now: float,
        t0: float,
        minute_s: float,
        window_s: float,
        stale_s: float = 5.0,
        max_bins: int = 60,
    ) -> dict[str, dict]:
        """Per job: mean latency (ms) of requests finished in ``[now - window_s, now]``,
        held counts of replicas that reported within ``stale_s``, and arrivals in
        complete ``minute_s`` bins counted back from ``now`` (oldest first, at most
        ``max_bins``, none before ``t0``)."""
        with self._lock:
            return self._snapshot(now, t0, minute_s, window_s, stale_s, max_bins)

    def _snapshot(self, now, t0, minute_s, window_s, stale_s, max_bins) -> dict[str, dict]:
        out: dict[str, dict] = {}
        jobs = set(self.finished) | set(self.sent) | set(self.held)
        n_bins = max(0, min(max_bins, int(np.floor((now - t0) / minute_s + 1e-9))))
        edges = now - minute_s * np.arange(n_bins, -1, -1, dtype=float)
        for job in jobs:
            fin = self.finished[job]
            while fin and fin[0][0] < now - self.keep_s:
                fin.popleft()
            lat = [lat_s for (e, lat_s, _s) in fin if now - window_s <= e <= now]
            avg = 1000.0 * float(np.mean(lat)) if lat else 0.0
            sent = np.asarray(self.sent[job], dtype=float)
            counts = np.histogram(sent, bins=edges)[0] if n_bins > 0 else np.zeros(0, dtype=int)
            queues = {r: h for r, (h, e) in self.held[job].items() if now - e <= stale_s}
            out[job] = {
                "avg_latency_ms": avg,
                "n_window": len(lat),
                "replica_queues": queues,
                "arrivals_per_min": [int(c) for c in counts],
                "bin_edges": [float(e) for e in edges],
                "admission_drops_total": int(self.admission_drops[job]),
                "busy_s": float(sum(self.busy[job].values())) if self.busy[job] else float("nan"),
            }
        return out


try:  # the actor class only exists where Ray is installed
    import ray

    @ray.remote(num_cpus=0, max_concurrency=64)
    class FaroMetrics:
        def __init__(self) -> None:
            self.store = MetricsStore()

        def record(self, batch):
            self.store.record(batch)

        def report_held(self, job, replica, held, epoch, busy_s=None):
            self.store.report_held(job, replica, held, epoch, busy_s)

        def forget_replica(self, job, replica):
            self.store.forget_replica(job, replica)

        def snapshot(self, now, t0, minute_s, window_s, stale_s=5.0, max_bins=60):
            return self.store.snapshot(now, t0, minute_s, window_s, stale_s, max_bins)

        def ping(self) -> float:
            return time.time()

except ImportError:  # pragma: no cover
    FaroMetrics = None  # type: ignore[assignment]


def get_or_create_metrics_actor(on_head: bool = False):
    """The run's metrics actor (detached, so it outlives the driver that made it). ``on_head``:
    pinned to the cluster's head node (k8s: a worker pod may be scaled down under it)."""
    import ray

    opts: dict = {}
    if on_head:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        head = next(n["NodeID"] for n in ray.nodes()
                    if n.get("Alive") and "node:__internal_head__" in n["Resources"])
        opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=head, soft=False)
    return FaroMetrics.options(  # type: ignore[union-attr]
        name=ACTOR_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, **opts
    ).remote()
