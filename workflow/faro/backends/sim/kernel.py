"""Compiled event core of the simulator: the per-job request queues.

Between two global events (controller ticks, replica activations, pod timeouts)
every job's request path evolves on its own, so :func:`advance` moves all jobs
forward to a time ``T`` in compiled code; the Python control loop changes the
replica sets in between.  Per job (docs/model.md section 3):

arrival -> router (single FIFO server, crossed in and out) -> admission (drop
when the head queue already holds more than ``max_queued``, or by the
admission rate) -> head queue (FIFO) -> round-robin dispatch over the shuffled
replica list, skipping replicas that hold ``max_held`` -> replica FIFO ->
service -> router -> done.  The dispatcher runs on admissions and completions
only.

All random draws (arrival times, router delays, service times, admission
uniforms) are made up front, one per request, from independent streams; the
kernel itself is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

K_ROUTER_IN = 1
K_SERVICE = 2
K_ROUTER_OUT = 3

R_FREE = 0
R_ACTIVE = 1
R_DRAINING = 2

S_PENDING = 0
S_OK = 1  # also faro.backends.sim.frames.S_OK (tests/test_sim_kernel.py checks they agree)
S_DROP_QUEUE = 2
S_DROP_ADMISSION = 3

HEAP_CAP = 1 << 15
HQ_CAP = 128  # power of two, > max_queued + 1
HELD_CAP = 8  # power of two, >= max_held


@dataclass
class KernelState:
    """All mutable state of the event core, as arrays indexed by job (and slot)."""

    # per request (global index, grouped by job)
    arrival: np.ndarray
    service: np.ndarray
    router_in: np.ndarray
    router_out: np.ndarray
    admit_u: np.ndarray
    start: np.ndarray
    end: np.ndarray
    status: np.ndarray
    # per job
    offsets: np.ndarray
    next_arrival: np.ndarray
    router_free: np.ndarray
    remaining: np.ndarray
    admission: np.ndarray
    seq: np.ndarray
    # event heap per job
    h_time: np.ndarray
    h_seq: np.ndarray
    h_req: np.ndarray
    h_kind: np.ndarray
    h_slot: np.ndarray
    h_size: np.ndarray
    # head queue ring per job
    hq: np.ndarray
    hq_head: np.ndarray
    hq_len: np.ndarray
    # replica slots per job
    rq: np.ndarray
    rq_head: np.ndarray
    rq_len: np.ndarray
    r_state: np.ndarray
    d_order: np.ndarray
    d_len: np.ndarray
    d_cur: np.ndarray
    # completion buckets (1 s) for the latency metric
    cb_n: np.ndarray
    cb_ms: np.ndarray
    # per job: cumulative busy seconds of its replicas (service times completed), a CPU-time counter
    busy: np.ndarray
    max_queued: int
    max_held: int

    @classmethod
    def create(
        cls,
        arrival: np.ndarray,
        service: np.ndarray,
        router_in: np.ndarray,
        router_out: np.ndarray,
        admit_u: np.ndarray,
        offsets: np.ndarray,
        *,
        n_slots: int,
        horizon_s: float,
        max_queued: int,
        max_held: int,
    ) -> KernelState:
        n_jobs = len(offsets) - 1
        n_req = len(arrival)
        if max_held > HELD_CAP:
            raise ValueError(f"max_held {max_held} > {HELD_CAP}")
        if max_queued + 2 > HQ_CAP:
            raise ValueError(f"max_queued {max_queued} too large (limit {HQ_CAP - 2})")
        n_buckets = int(np.ceil(horizon_s)) + 2
        return cls(
            arrival=arrival,
            service=service,
            router_in=router_in,
            router_out=router_out,
            admit_u=admit_u,
            start=np.full(n_req, np.nan),
            end=np.full(n_req, np.nan),
            status=np.zeros(n_req, np.int8),
            offsets=offsets.astype(np.int64),
            next_arrival=offsets[:-1].astype(np.int64).copy(),
            router_free=np.zeros(n_jobs),
            remaining=np.diff(offsets).astype(np.int64),
            admission=np.ones(n_jobs),
            seq=np.zeros(n_jobs, np.int64),
            h_time=np.zeros((n_jobs, HEAP_CAP)),
            h_seq=np.zeros((n_jobs, HEAP_CAP), np.int64),
            h_req=np.zeros((n_jobs, HEAP_CAP), np.int64),
            h_kind=np.zeros((n_jobs, HEAP_CAP), np.int8),
            h_slot=np.zeros((n_jobs, HEAP_CAP), np.int32),
            h_size=np.zeros(n_jobs, np.int64),
            hq=np.zeros((n_jobs, HQ_CAP), np.int64),
            hq_head=np.zeros(n_jobs, np.int64),
            hq_len=np.zeros(n_jobs, np.int64),
            rq=np.zeros((n_jobs, n_slots, HELD_CAP), np.int64),
            rq_head=np.zeros((n_jobs, n_slots), np.int64),
            rq_len=np.zeros((n_jobs, n_slots), np.int64),
            r_state=np.zeros((n_jobs, n_slots), np.int8),
            d_order=np.zeros((n_jobs, n_slots), np.int64),
            d_len=np.zeros(n_jobs, np.int64),
            d_cur=np.zeros(n_jobs, np.int64),
            cb_n=np.zeros((n_jobs, n_buckets), np.int64),
            cb_ms=np.zeros((n_jobs, n_buckets)),
            busy=np.zeros(n_jobs),
            max_queued=int(max_queued),
            max_held=int(max_held),
        )

    def advance(self, until: float) -> int:
        """Process every request event with time < ``until``; returns requests still open."""
        return _advance_all(
            until,
            self.arrival, self.service, self.router_in, self.router_out, self.admit_u,
            self.start, self.end, self.status,
            self.offsets, self.next_arrival, self.router_free, self.remaining, self.admission, self.seq,
            self.h_time, self.h_seq, self.h_req, self.h_kind, self.h_slot, self.h_size,
            self.hq, self.hq_head, self.hq_len,
            self.rq, self.rq_head, self.rq_len, self.r_state,
            self.d_order, self.d_len, self.d_cur,
            self.cb_n, self.cb_ms, self.busy, self.max_queued, self.max_held,
        )

    def set_dispatch_order(self, job: int, slots: np.ndarray) -> None:
        n = len(slots)
        self.d_order[job, :n] = slots
        self.d_len[job] = n
        self.d_cur[job] = 0

    def window_latency_ms(self, job: int, now: float, window_s: float) -> float:
        """Mean latency (ms) of requests that finished in [now - window, now); 0 if none."""
        hi = min(int(now), self.cb_n.shape[1])
        lo = max(0, int(now - window_s))
        n = self.cb_n[job, lo:hi].sum()
        return float(self.cb_ms[job, lo:hi].sum() / n) if n else 0.0


@nb.njit(cache=True, inline="always")
def _less(ht, hs, j, a, b):
    return ht[j, a] < ht[j, b] or (ht[j, a] == ht[j, b] and hs[j, a] < hs[j, b])


@nb.njit(cache=True)
def _swap(ht, hs, hr, hk, ha, j, a, b):
    ht[j, a], ht[j, b] = ht[j, b], ht[j, a]
    hs[j, a], hs[j, b] = hs[j, b], hs[j, a]
    hr[j, a], hr[j, b] = hr[j, b], hr[j, a]
    hk[j, a], hk[j, b] = hk[j, b], hk[j, a]
    ha[j, a], ha[j, b] = ha[j, b], ha[j, a]


@nb.njit(cache=True)
def _push(ht, hs, hr, hk, ha, hn, seq, j, t, kind, req, slot):
    n = hn[j]
    if n >= ht.shape[1]:
        raise RuntimeError("simulator event heap overflow")
    ht[j, n] = t
    hs[j, n] = seq[j]
    seq[j] += 1
    hr[j, n] = req
    hk[j, n] = kind
    ha[j, n] = slot
    hn[j] = n + 1
    while n > 0:
        p = (n - 1) >> 1
        if _less(ht, hs, j, n, p):
            _swap(ht, hs, hr, hk, ha, j, n, p)
            n = p
        else:
            break


@nb.njit(cache=True)
def _pop(ht, hs, hr, hk, ha, hn, j):
    n = hn[j] - 1
    hn[j] = n
    if n > 0:
        _swap(ht, hs, hr, hk, ha, j, 0, n)
        i = 0
        while True:
            left = 2 * i + 1
            if left >= n:
                break
            m = left
            right = left + 1
            if right < n and _less(ht, hs, j, right, left):
                m = right
            if _less(ht, hs, j, m, i):
                _swap(ht, hs, hr, hk, ha, j, m, i)
                i = m
            else:
                break
    return n  # index of the popped element


@nb.njit(cache=True)
def _advance_all(
    until, arrival, service, router_in, router_out, admit_u, start, end, status,
    offsets, next_arrival, router_free, remaining, admission, seq,
    ht, hs, hr, hk, ha, hn, hq, hq_head, hq_len, rq, rq_head, rq_len, r_state,
    d_order, d_len, d_cur, cb_n, cb_ms, busy, max_queued, max_held,
):
    hq_mask = hq.shape[1] - 1
    held_mask = rq.shape[2] - 1
    n_buckets = cb_n.shape[1]
    open_total = 0
    for j in range(len(offsets) - 1):
        stop = offsets[j + 1]
        while True:
            ta = arrival[next_arrival[j]] if next_arrival[j] < stop else np.inf
            th = ht[j, 0] if hn[j] > 0 else np.inf
            if ta <= th:
                if ta >= until:
                    break
                i = next_arrival[j]
                next_arrival[j] = i + 1
                d = max(ta, router_free[j]) + router_in[i]
                router_free[j] = d
                _push(ht, hs, hr, hk, ha, hn, seq, j, d, K_ROUTER_IN, i, -1)
                continue
            if th >= until:
                break
            k = _pop(ht, hs, hr, hk, ha, hn, j)
            t = ht[j, k]
            i = hr[j, k]
            kind = hk[j, k]
            slot = ha[j, k]
            dispatch = False
            if kind == K_ROUTER_IN:
                if admission[j] < 1.0 and admit_u[i] >= admission[j]:
                    status[i] = S_DROP_ADMISSION
                elif hq_len[j] > max_queued:
                    status[i] = S_DROP_QUEUE
                else:
                    hq[j, (hq_head[j] + hq_len[j]) & hq_mask] = i
                    hq_len[j] += 1
                    dispatch = True
                if status[i] != S_PENDING:
                    d = max(t, router_free[j]) + router_out[i]
                    router_free[j] = d
                    _push(ht, hs, hr, hk, ha, hn, seq, j, d, K_ROUTER_OUT, i, -1)
            elif kind == K_SERVICE:
                rq_head[j, slot] = (rq_head[j, slot] + 1) & held_mask
                rq_len[j, slot] -= 1
                status[i] = S_OK
                busy[j] += service[i]
                d = max(t, router_free[j]) + router_out[i]
                router_free[j] = d
                _push(ht, hs, hr, hk, ha, hn, seq, j, d, K_ROUTER_OUT, i, -1)
                if rq_len[j, slot] > 0:
                    nxt = rq[j, slot, rq_head[j, slot]]
                    start[nxt] = t
                    _push(ht, hs, hr, hk, ha, hn, seq, j, t + service[nxt], K_SERVICE, nxt, slot)
                elif r_state[j, slot] == R_DRAINING:
                    r_state[j, slot] = R_FREE
                dispatch = True
            else:  # K_ROUTER_OUT
                end[i] = t
                remaining[j] -= 1
                b = int(t)
                if b >= n_buckets:
                    b = n_buckets - 1
                cb_n[j, b] += 1
                cb_ms[j, b] += (t - arrival[i]) * 1000.0
            if dispatch:
                n = d_len[j]
                while hq_len[j] > 0 and n > 0:
                    found = -1
                    for step in range(n):
                        idx = (d_cur[j] + step) % n
                        s = d_order[j, idx]
                        if rq_len[j, s] < max_held:
                            found = idx
                            break
                    if found < 0:
                        break
                    d_cur[j] = (found + 1) % n
                    s = d_order[j, found]
                    r = hq[j, hq_head[j]]
                    hq_head[j] = (hq_head[j] + 1) & hq_mask
                    hq_len[j] -= 1
                    rq[j, s, (rq_head[j, s] + rq_len[j, s]) & held_mask] = r
                    rq_len[j, s] += 1
                    if rq_len[j, s] == 1:
                        start[r] = t
                        _push(ht, hs, hr, hk, ha, hn, seq, j, t + service[r], K_SERVICE, r, s)
        open_total += remaining[j]
    return open_total
