"""A ``coordination.k8s.io/v1`` Lease used as the session lock of one cluster.

Only one session (quota setup .. teardown of one run) may hold the lease.  The holder
identity is stable across the stage processes of one run, so every stage can renew it;
another holder's lease that has not expired (``renewTime + leaseDurationSeconds`` in the
future) makes :meth:`LeaseLock.acquire` wait, then fail with a clear error.  Writes are
compare-and-swap on ``resourceVersion`` (a 409 means someone else moved first: re-read).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from faro.backends.k8s.client import ApiError, KubeClient
from faro.backends.k8s.config import K8sSettings
from faro.backends.k8s.manifests import lease as lease_manifest
from faro.backends.k8s.manifests import micro_time

API = "coordination.k8s.io/v1"


class LockTimeout(TimeoutError):
    """Another session still holds the lease after the wait."""


class LockLost(RuntimeError):
    """The lease this session relied on is held by someone else (or gone)."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_time(s: str | None) -> dt.datetime | None:
    if not s:
        return None
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def expiry(lease: dict[str, Any]) -> dt.datetime | None:
    """When the lease lapses (None: it never had a holder/renewal)."""
    spec = lease.get("spec") or {}
    renew = parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    if renew is None:
        return None
    return renew + dt.timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0))


class LeaseLock:
    """Acquire / renew / release one Lease for ``holder``."""

    def __init__(self, kc: KubeClient, s: K8sSettings, holder: str, *,
                 now: Callable[[], dt.datetime] = _utcnow, sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic):
        self.kc, self.s, self.holder = kc, s, holder
        self.now, self.sleep, self.monotonic = now, sleep, monotonic

    def _get(self) -> dict[str, Any] | None:
        return self.kc.get(API, "Lease", self.s.lock_name, self.s.lock_namespace)

    def holder_of(self, lease: dict[str, Any] | None) -> str | None:
        if lease is None:
            return None
        return (lease.get("spec") or {}).get("holderIdentity") or None

    def _free_or_mine(self, lease: dict[str, Any]) -> bool:
        h = self.holder_of(lease)
        if h is None or h == self.holder:
            return True
        exp = expiry(lease)
        return exp is None or exp <= self.now()

    def _write(self, current: dict[str, Any], took_over: bool) -> dict[str, Any]:
        spec = dict(current.get("spec") or {})
        now = micro_time(self.now())
        if took_over:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update({"holderIdentity": self.holder, "leaseDurationSeconds": int(self.s.lease_duration_s),
                     "renewTime": now})
        body = {"apiVersion": API, "kind": "Lease", "metadata": dict(current["metadata"]), "spec": spec}
        return self.kc.replace(body)

    def acquire(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Hold the lease (create, take over an expired one, or renew our own). Returns a record."""
        timeout_s = self.s.lock_timeout_s if timeout_s is None else timeout_s
        t0 = self.monotonic()
        waited_for: str | None = None
        while True:
            cur = self._get()
            try:
                if cur is None:
                    got = self.kc.create(lease_manifest(self.s, self.holder, self.now()))
                    return self._record("created", got, t0, waited_for)
                if self._free_or_mine(cur):
                    mine = self.holder_of(cur) == self.holder
                    got = self._write(cur, took_over=not mine)
                    return self._record("renewed" if mine else "taken-over", got, t0, waited_for)
            except ApiError as e:
                if e.status != 409:  # 409: someone wrote in between; read again
                    raise
                continue
            waited_for = self.holder_of(cur)
            if self.monotonic() - t0 >= timeout_s:
                exp = expiry(cur)
                raise LockTimeout(
                    f"lease {self.s.lock_namespace}/{self.s.lock_name} is held by {waited_for!r} "
                    f"(expires {exp.isoformat() if exp else '?'}); waited {timeout_s:.0f} s for it. "
                    f"Another faro session is running on this cluster; if it died, wait for the lease to "
                    f"expire or delete it: "
                    f"kubectl -n {self.s.lock_namespace} delete lease {self.s.lock_name}")
            self.sleep(self.s.poll_s)

    def renew(self) -> dict[str, Any]:
        """Extend our lease; LockLost if another holder has it or it is gone."""
        for _ in range(3):  # a 409 after a retried PUT may be our own earlier write: read again
            cur = self._get()
            if cur is None or self.holder_of(cur) != self.holder:
                raise LockLost(f"lease {self.s.lock_namespace}/{self.s.lock_name} is held by "
                               f"{self.holder_of(cur)!r}, not {self.holder!r}")
            try:
                return self._write(cur, took_over=False)
            except ApiError as e:
                if e.status != 409:
                    raise
        return cur

    def release(self) -> bool:
        """Delete the lease if we hold it (compare-and-swap on resourceVersion); True if released."""
        cur = self._get()
        if cur is None or self.holder_of(cur) != self.holder:
            return False
        meta = cur["metadata"]
        pre = {"resourceVersion": meta["resourceVersion"]} if meta.get("resourceVersion") else None
        try:
            return self.kc.delete(API, "Lease", self.s.lock_name, self.s.lock_namespace, preconditions=pre)
        except ApiError as e:
            if e.status == 409:
                return False
            raise

    def _record(self, action: str, lease: dict[str, Any], t0: float,
                waited_for: str | None) -> dict[str, Any]:
        return {"lease": f"{self.s.lock_namespace}/{self.s.lock_name}", "holder": self.holder,
                "action": action, "uid": lease.get("metadata", {}).get("uid"),
                "transitions": (lease.get("spec") or {}).get("leaseTransitions"),
                "waited_s": round(self.monotonic() - t0, 3), "waited_for": waited_for}
