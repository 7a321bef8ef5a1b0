"""The ray backend's metrics store under concurrent use (the actor runs methods in threads)."""

from __future__ import annotations

import threading
import time

from faro.serving.metrics import MetricsStore


def test_record_and_snapshot_from_many_threads():
    store = MetricsStore()
    t0 = time.time()
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(2000):
                now = t0 + i * 0.001
                store.record([("job", f"r{k}", now - 0.2, now, 200)])
                store.report_held("job", f"r{k}", i % 4, now)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def reader() -> None:
        try:
            for _ in range(300):
                store.snapshot(t0 + 2.0, t0, 1.0, 30.0)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)] + [
        threading.Thread(target=reader) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    snap = store.snapshot(t0 + 2.0, t0, 1.0, 30.0)["job"]
    assert snap["n_window"] == 8000 and abs(snap["avg_latency_ms"] - 200.0) < 1e-3
