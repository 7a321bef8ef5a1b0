"""Hand-computed cases for the compiled event core (faro.backends.sim.kernel, docs/model.md section 3).

Every case builds a :class:`KernelState` directly with fixed per-request times.  The
times are dyadic fractions (R = 2**-10 s ~ 1 ms router crossing, S = 2**-3 s = 125 ms
service, arrivals on a 1/64 s grid) so every sum below is exact in binary floating
point and the checks can use ``==``.

Request path: arrival -> router in (FIFO, shared with the way out) -> admission
(drop when the head queue already holds more than ``max_queued``, or by the admission
rate) -> head queue -> round robin over the dispatch list, skipping replicas holding
``max_held`` -> replica FIFO -> service -> router out.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from faro.backends.sim.kernel import (
    R_ACTIVE,
    R_DRAINING,
    R_FREE,
    S_DROP_ADMISSION,
    S_DROP_QUEUE,
    S_OK,
    S_PENDING,
    KernelState,
)

R = 2.0**-10  # router crossing, s
S = 2.0**-3  # service time, s
G = 1.0 / 64  # arrival grid, s (> R, so spaced arrivals never wait at the router)


def make_kernel(
    arrivals: list[list[float]],
    *,
    service: float | list[float] = S,
    router_in: float | list[float] = R,
    router_out: float | list[float] = R,
    admit_u: list[float] | None = None,
    n_slots: int = 4,
    max_queued: int = 50,
    max_held: int = 4,
    horizon_s: float = 100.0,
) -> KernelState:
    """A kernel for ``arrivals[job] = [times...]``; per-request values are flat over all jobs.

    The dtypes are the engine's (float64 arrivals, float32 draws, int64 offsets) so the
    compiled kernel is reused from numba's cache.
    """
    sizes = [len(a) for a in arrivals]
    n = sum(sizes)

    def per_request(v, dtype):
        arr = np.full(n, v, dtype) if np.isscalar(v) else np.asarray(v, dtype)
        assert arr.shape == (n,)
        return arr

    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    return KernelState.create(
        np.concatenate([np.asarray(a, np.float64) for a in arrivals]),
        per_request(service, np.float32),
        per_request(router_in, np.float32),
        per_request(router_out, np.float32),
        per_request(admit_u if admit_u is not None else 0.0, np.float32),
        offsets,
        n_slots=n_slots,
        horizon_s=horizon_s,
        max_queued=max_queued,
        max_held=max_held,
    )


def activate(k: KernelState, job: int, slots: list[int]) -> None:
    """What the engine does when replicas become active: mark slots, set the dispatch list."""
    for s in slots:
        k.r_state[job, s] = R_ACTIVE
    k.set_dispatch_order(job, np.array(slots, np.int64))


# --------------------------------------------------------------------------- one replica


def test_fifo_at_one_replica():
    # Arrivals 0, G, 2G; router R each way; service S; one replica.
    # req0: router in done at R -> admitted, dispatched, starts at R, service ends R+S,
    #       router out (free: the last router-in ended at 2G+R < R+S) -> end S+2R.
    # req1: admitted at G+R, waits in the replica's FIFO, starts when req0 leaves at R+S,
    #       service ends R+2S -> end 2S+2R.   req2: starts R+2S, ends 3S+2R.
    k = make_kernel([[0.0, G, 2 * G]])
    activate(k, 0, [0])
    assert k.advance(10.0) == 0
    assert k.start.tolist() == [R, R + S, R + 2 * S]
    assert k.end.tolist() == [S + 2 * R, 2 * S + 2 * R, 3 * S + 2 * R]
    assert k.status.tolist() == [S_OK] * 3
    assert k.rq_len[0, 0] == 0 and k.hq_len[0] == 0


def test_replica_holds_at_most_four_the_rest_waits_in_the_head_queue():
    # Six arrivals 0..5G, service S = 0.125 > 5G + R, so nothing completes before all are in.
    # The replica takes req0..req3 (1 in service + 3 waiting); req4 and req5 wait in the
    # head queue.  Later everything is served FIFO: req i starts at R + i*S.
    k = make_kernel([[i * G for i in range(6)]])
    activate(k, 0, [0])
    assert k.advance(6 * G) == 6  # all admitted (last at 5G+R < 6G), none finished
    assert k.rq_len[0, 0] == 4
    assert k.hq_len[0] == 2
    assert k.start[0] == R and np.isnan(k.start[1:]).all()
    assert k.advance(10.0) == 0
    assert k.start.tolist() == [R + i * S for i in range(6)]
    assert k.end.tolist() == [R + (i + 1) * S + R for i in range(6)]


def test_advance_processes_only_events_strictly_before_until():
    # One arrival at 1.0; router in ends at 1+R.  advance(T) handles events with time < T.
    k = make_kernel([[1.0]])
    activate(k, 0, [0])
    assert k.advance(1.0) == 1 and k.next_arrival[0] == 0  # the arrival itself is at T
    assert k.advance(1.0 + R) == 1 and np.isnan(k.start[0])  # router-in event at T: not yet
    assert k.advance(1.0 + 2 * R) == 1 and k.start[0] == 1.0 + R
    assert k.status[0] == S_PENDING
    assert k.advance(2.0) == 0 and k.end[0] == 1.0 + S + 2 * R


# --------------------------------------------------------------------------- router


def test_router_is_one_fifo_for_in_and_out_traffic_arrival_first():
    # Router crossings of 0.25 s each way, service 0.5 s.
    # req0: arrival 0, in done 0.25, service 0.25..0.75.
    # req1: arrival 0.75 = req0's service end.  At equal times the arrival is taken first
    #       and occupies the router 0.75..1.0; req0's way out queues behind it:
    #       req0 end = max(0.75, 1.0) + 0.25 = 1.25.
    #       req1 admitted at 1.0, replica idle -> start 1.0, service to 1.5,
    #       out max(1.5, 1.25) + 0.25 = 1.75.
    k = make_kernel([[0.0, 0.75]], service=0.5, router_in=0.25, router_out=0.25)
    activate(k, 0, [0])
    k.advance(10.0)
    assert k.start.tolist() == [0.25, 1.0]
    assert k.end.tolist() == [1.25, 1.75]


def test_router_is_one_fifo_for_in_and_out_traffic_departure_first():
    # As above but req1 arrives at 0.875, after req0's service ended at 0.75:
    # req0 out 0.75..1.0 (end 1.0); req1 in waits: max(0.875, 1.0) + 0.25 = 1.25,
    # starts 1.25, service to 1.75, out to 2.0.
    k = make_kernel([[0.0, 0.875]], service=0.5, router_in=0.25, router_out=0.25)
    activate(k, 0, [0])
    k.advance(10.0)
    assert k.start.tolist() == [0.25, 1.25]
    assert k.end.tolist() == [1.0, 2.0]


def test_burst_crosses_the_router_one_at_a_time():
    # Three arrivals at t = 0: router-in ends at R, 2R, 3R.  Three replicas, dispatch
    # list [0, 1, 2]: each request starts the moment it is admitted.
    k = make_kernel([[0.0, 0.0, 0.0]])
    activate(k, 0, [0, 1, 2])
    k.advance(10.0)
    assert k.start.tolist() == [R, 2 * R, 3 * R]
    # services end at (i+1)R + S; the router is free by then -> end = (i+1)R + S + R
    assert k.end.tolist() == [2 * R + S, 3 * R + S, 4 * R + S]


# --------------------------------------------------------------------------- dispatch


def test_round_robin_over_the_dispatch_list_skipping_full_replicas():
    # Two replicas, dispatch list [1, 0] (slot 1 first).  Nine arrivals at t = 0; req i is
    # admitted at (i+1)R.  Service: req0 0.5 s, all others S.
    # Admissions alternate slot1, slot0, slot1, ...: slot1 holds [0,2,4,6], slot0 [1,3,5,7];
    # both now hold 4, the pointer is back at list index 0 (slot 1); req8 waits in the
    # head queue.
    # First completion: req1 on slot 0 at 2R+S.  Pointer -> slot 1 (holds 4, full) is
    # skipped -> req8 goes to slot 0 (not slot 1).
    # slot 0 then serves 3, 5, 7, 8 back to back: starts 2R + kS, k = 1..4.
    # slot 1: req0 R..R+0.5, then 2, 4, 6 start at R+0.5, R+0.5+S, R+0.5+2S.
    service = [0.5] + [S] * 8
    k = make_kernel([[0.0] * 9], service=service)
    activate(k, 0, [1, 0])
    k.advance(9 * R + R / 2)  # after every router-in, before any completion
    assert k.rq_len[0, 1] == 4 and k.rq_len[0, 0] == 4 and k.hq_len[0] == 1
    k.advance(10.0)
    st = k.start
    assert st[0] == R and st[1] == 2 * R
    assert [st[3], st[5], st[7], st[8]] == [2 * R + S, 2 * R + 2 * S, 2 * R + 3 * S, 2 * R + 4 * S]
    assert [st[2], st[4], st[6]] == [R + 0.5, R + 0.5 + S, R + 0.5 + 2 * S]
    assert (k.status == S_OK).all()
    # every departure finds the router free (the closest pair, 0.5+R and 0.5+2R, is R apart)
    np.testing.assert_array_equal(k.end, st + np.array(service, np.float32) + R)


def test_new_replica_gets_no_work_until_the_dispatcher_runs():
    # Slot 0 holds req0..3 (arrivals 0..3G, service 1 s each) and req4 (arrival 4G) waits
    # in the head queue; at t = 0.5 slot 1 becomes active.  Activation alone does not dispatch:
    # req4 stays queued until the next admission (req5 arrives at 0.75, admitted 0.75+R),
    # when both req4 and req5 go out round robin over the new list [0, 1]:
    # pointer -> slot 0 (full, skipped) -> slot 1 gets req4 (starts 0.75+R), then
    # slot 0 is full again -> slot 1 gets req5 (waits behind req4: starts 0.75+R+S).
    arrivals = [i * G for i in range(5)] + [0.75]
    service = [1.0] * 4 + [S, S]
    k = make_kernel([arrivals], service=service)
    activate(k, 0, [0])
    k.advance(0.5)
    assert k.hq_len[0] == 1
    activate(k, 0, [0, 1])
    k.advance(0.75)
    assert k.hq_len[0] == 1 and np.isnan(k.start[4])
    k.advance(10.0)
    assert k.start[4] == 0.75 + R
    assert k.start[5] == 0.75 + R + S
    # slot 0 serves req0..3 back to back from R: 1+R, 2+R, 3+R
    assert k.start[:4].tolist() == [R, 1 + R, 2 + R, 3 + R]


def test_draining_replica_finishes_its_work_and_its_slot_is_freed_when_empty():
    # Slot 0 takes req0..2 (arrivals 0, G, 2G), serving them at R, R+S, R+2S.
    # At t = 0.0625 (= 4G) the engine removes it: state DRAINING, dispatch list [1].
    # req3 (arrival 4G) goes to slot 1: starts 4G+R.
    # Slot 0 empties when req2's service ends at R+3S = 0.3759765625 -> R_FREE.
    k = make_kernel([[0.0, G, 2 * G, 4 * G]])
    activate(k, 0, [0])
    k.advance(3 * G)
    assert k.rq_len[0, 0] == 3
    k.r_state[0, 0] = R_DRAINING
    activate(k, 0, [1])
    k.advance(R + 3 * S)  # req2's completion is at exactly this time: not processed yet
    assert k.r_state[0, 0] == R_DRAINING and k.rq_len[0, 0] == 1
    k.advance(10.0)
    assert k.r_state[0, 0] == R_FREE
    assert k.start.tolist() == [R, R + S, R + 2 * S, 4 * G + R]
    assert (k.status == S_OK).all()


# --------------------------------------------------------------------------- admission


@pytest.mark.parametrize(
    ("max_queued", "dropped"),
    [
        # the head queue admits while it holds <= max_queued, so it can reach max_queued + 1
        (0, [5, 6, 7]),  # req4 admitted (queue held 0), req5 finds 1 > 0 -> dropped
        (1, [6, 7]),  # req4 (held 0), req5 (held 1) admitted; req6 finds 2 > 1
        (2, [7]),  # req4, req5, req6 admitted; req7 finds 3 > 2
    ],
)
def test_head_queue_limit_drops_and_dropped_requests_go_back_through_the_router(max_queued, dropped):
    # One replica, service 1 s: it holds req0..3 for the whole burst (arrivals i*G).
    # Dispatched requests do not count towards the head queue.  A dropped request crosses
    # the router out at once (router free, spaced arrivals): end = arrival + R (in) + 2R (out).
    k = make_kernel([[i * G for i in range(8)]], service=1.0, router_out=2 * R, max_queued=max_queued)
    activate(k, 0, [0])
    k.advance(100.0)
    for i in range(8):
        if i in dropped:
            assert k.status[i] == S_DROP_QUEUE, i
            assert np.isnan(k.start[i])
            assert k.end[i] == i * G + R + 2 * R
        else:
            assert k.status[i] == S_OK, i
    # admitted ones are served FIFO, one per second from R
    admitted = [i for i in range(8) if i not in dropped]
    assert [k.start[i] for i in admitted] == [R + n for n in range(len(admitted))]


def test_dropped_request_waits_for_the_router_like_everyone_else():
    # max_queued 0, one replica, service 1 s, six arrivals all at t = 0.
    # All six router-ins are booked at t = 0: they end at R, 2R, ..., 6R.
    # req0..3 fill the replica, req4 is queued, req5 (admission check at 6R) is dropped;
    # its way out waits for nothing (router free after 6R): end 7R.
    k = make_kernel([[0.0] * 6], service=1.0, max_queued=0)
    activate(k, 0, [0])
    k.advance(100.0)
    assert k.status.tolist() == [S_OK] * 5 + [S_DROP_QUEUE]
    assert k.end[5] == 7 * R


def test_admission_rate_drops_requests_whose_uniform_is_at_or_above_the_rate():
    # Admission rate 0.5; uniforms 0.2, 0.7, 0.5, 0.49 -> req1 and req2 dropped (u >= 0.5),
    # even though the head queue is empty.  Drops: end = arrival + R + R.
    k = make_kernel([[0.0, 1.0, 2.0, 3.0]], admit_u=[0.2, 0.7, 0.5, 0.49])
    activate(k, 0, [0])
    k.admission[0] = 0.5
    k.advance(100.0)
    assert k.status.tolist() == [S_OK, S_DROP_ADMISSION, S_DROP_ADMISSION, S_OK]
    assert k.end[1] == 1.0 + 2 * R and k.end[2] == 2.0 + 2 * R
    assert k.end[0] == S + 2 * R and k.end[3] == 3.0 + S + 2 * R


def test_admission_rate_one_admits_everything():
    k = make_kernel([[0.0, 1.0]], admit_u=[0.99, 0.999])
    activate(k, 0, [0])
    k.advance(100.0)
    assert (k.status == S_OK).all()


# --------------------------------------------------------------------------- latency metric


def test_window_latency_counts_finished_requests_including_drops():
    # Job 0: OK requests arriving 0, 10, 35 (latency S + 2R = 126.953125 ms, ending in
    # 1-s buckets 0, 10, 35) and one admission drop arriving 36 (latency 2R = 1.953125 ms,
    # bucket 36).  Job 1: one request at 12 with service 0.25 (latency 251.953125 ms).
    # window_latency_ms(job, now, w) = mean over ends in [now - w, now).
    k = make_kernel([[0.0, 10.0, 35.0, 36.0], [12.0]], service=[S, S, S, S, 0.25],
                    admit_u=[0.0, 0.0, 0.0, 0.9, 0.0])
    activate(k, 0, [0])
    activate(k, 1, [0])
    k.advance(36.0)
    k.admission[0] = 0.5  # only req3 (u = 0.9) is affected
    k.advance(100.0)
    assert k.status[3] == S_DROP_ADMISSION
    ok_ms = (S + 2 * R) * 1000  # 126.953125
    drop_ms = 2 * R * 1000  # 1.953125
    # now 40, 30 s: buckets 10..39 -> 10, 35 (OK) and 36 (drop): (2*126.953125 + 1.953125) / 3
    assert k.window_latency_ms(0, 40.0, 30.0) == pytest.approx((2 * ok_ms + drop_ms) / 3, abs=1e-9)
    # now 41: buckets 11..40 -> 35 and 36
    assert k.window_latency_ms(0, 41.0, 30.0) == pytest.approx((ok_ms + drop_ms) / 2, abs=1e-9)
    # now 10: buckets 0..9 -> only the request that ended at 0.127
    assert k.window_latency_ms(0, 10.0, 30.0) == pytest.approx(ok_ms, abs=1e-9)
    # the request ending at 10.127 is not yet in [.., 10)
    assert k.window_latency_ms(0, 37.0, 1.0) == pytest.approx(drop_ms, abs=1e-9)
    # nothing finished in [15, 20): the metric reads 0
    assert k.window_latency_ms(0, 20.0, 5.0) == 0.0
    # job 1 sees only its own request
    assert k.window_latency_ms(1, 40.0, 30.0) == pytest.approx((0.25 + 2 * R) * 1000, abs=1e-9)


def test_jobs_are_independent():
    # Job 0 is swamped (eight arrivals at 0, service 1 s, max_queued 0) while job 1's
    # single request at 0 sees an idle router and replica of its own.
    k = make_kernel([[0.0] * 8, [0.0]], service=[1.0] * 8 + [S], max_queued=0)
    activate(k, 0, [0])
    activate(k, 1, [0])
    # job 0: req0..3 held + req4 queued are open, req5..7 dropped and out by 11R; job 1 done
    assert k.advance(0.5) == 5
    assert (k.status[5:8] == S_DROP_QUEUE).all()
    assert k.start[8] == R and k.end[8] == S + 2 * R
    assert math.isclose(k.window_latency_ms(1, 1.0, 30.0), (S + 2 * R) * 1000)


def test_create_rejects_limits_beyond_the_fixed_buffers():
    with pytest.raises(ValueError, match="max_held 9"):
        make_kernel([[0.0]], max_held=9)
    with pytest.raises(ValueError, match="max_queued 127"):
        make_kernel([[0.0]], max_queued=127)
    make_kernel([[0.0]], max_queued=120, max_held=8)  # the schema's maxima fit


def test_the_parse_stages_status_code_is_the_kernels():
    from faro.backends.sim import frames

    assert frames.S_OK == S_OK
