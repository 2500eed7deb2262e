"""An orchestrator invocation's hold on its continuation of a run: claimed, kept alive, released.

Asynchronous invocations are delivered at least once and retried after an error (on AWS 1 and
2 minutes later, with the same request id; in the local cloud 1 and 2 s later). So the same
continuation may arrive twice in two ways that must be told apart:

- a **twin** (a duplicated delivery) while its holder is alive and working: it must do nothing;
- a **retry** after its holder died (crashed, timed out): it must take the run over promptly,
  not leave it until someone redrives it.

A request id cannot tell them apart (a duplicated delivery may carry the same one, and the local
cloud gives each attempt a new one). Liveness can: the holder claims a *short* lease and renews
it from a heartbeat thread while it works (a dead holder renews nothing), and releases it when
its work is recorded. An invocation that finds the continuation held watches the lease: renewed,
the holder is alive and the newcomer is a twin (it returns); lapsed, the holder died and the
newcomer takes over. It waits a little over one lease (30 s), well within its budget.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol

from engines.runs import RunClaimed
from pipeline.observability import logger

LEASE_S = 30.0  # how long a claim lasts unless renewed
RENEWALS_PER_LEASE = 3  # a holder renews this often per lease: two renewals may fail in a row
POLLS_PER_LEASE = 6  # how often a newcomer looks at a held lease


class LeaseLog(Protocol):
    """The runs table's claim operations (engines.runs.RunsTable)."""

    def open_run(
        self, run_id: str, *, engine: str, total: int, started_at: datetime, continuation: int,
        lease_until: datetime | None = None,
    ) -> datetime: ...

    def meta(self, run_id: str) -> dict[str, Any] | None: ...

    def renew_lease(self, run_id: str, continuation: int, until: datetime) -> bool: ...

    def release(self, run_id: str, continuation: int) -> None: ...


class Lease:
    """One invocation's claim on continuation ``continuation`` of run ``run_id``."""

    def __init__(self, runs: LeaseLog, run_id: str, continuation: int, *,
                 now: Callable[[], datetime], sleep: Callable[[float], None],
                 lease_s: float = LEASE_S) -> None:
        self.runs, self.run_id, self.continuation = runs, run_id, continuation
        self.now, self.sleep, self.lease_s = now, sleep, lease_s
        self._stop = threading.Event()
        self._lost = threading.Event()

    @property
    def lost(self) -> bool:
        """True once a renewal found the continuation no longer ours: start nothing more."""
        return self._lost.is_set()

    def claim(self, *, engine: str, total: int, time_left_s: Callable[[], float]) -> datetime | None:
        """Claim the continuation, waiting for a dead holder's lease to lapse; when the run first
        started, or None when there is nothing to do (a live twin holds it, a later continuation
        or the run's end came, or ``time_left_s`` would not cover the wait)."""
        seen: object = _UNSEEN
        # Past one lease and a poll unchanged, a lease is not one a holder of ours renews (an
        # older release's, as long as its budget): leave it to lapse and `baton redrive`.
        for _ in range(POLLS_PER_LEASE + 2):
            now = self.now()
            try:
                return self.runs.open_run(
                    self.run_id, engine=engine, total=total, started_at=now,
                    continuation=self.continuation,
                    lease_until=now + timedelta(seconds=self.lease_s))
            except RunClaimed as claimed:
                reason = str(claimed)
            meta = self.runs.meta(self.run_id) or {}
            lease = meta.get("lease_until")
            if ("ended_at" in meta or int(meta.get("released", -1)) >= self.continuation
                    or int(meta.get("claimed", -1)) != self.continuation):
                logger.warning("continuation done or passed; nothing to do", run_id=self.run_id,
                               continuation=self.continuation, reason=reason)
                return None
            if seen is not _UNSEEN and lease != seen:
                logger.warning("duplicate invocation: the holder is alive; nothing to do",
                               run_id=self.run_id, continuation=self.continuation)
                return None
            if time_left_s() < 2 * self.lease_s:
                logger.warning("continuation held and too little time to wait for its lease",
                               run_id=self.run_id, continuation=self.continuation)
                return None
            seen = lease
            self.sleep(self.lease_s / POLLS_PER_LEASE)
        logger.warning("continuation held past a lease without renewal; nothing to do",
                       run_id=self.run_id, continuation=self.continuation)
        return None

    @contextmanager
    def kept(self) -> Iterator[Lease]:
        """Renew the lease from a heartbeat thread while the block runs."""
        self._stop.clear()
        beat = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        beat.start()
        try:
            yield self
        finally:
            self._stop.set()
            beat.join()

    def release(self) -> None:
        """The continuation ran to its end: a retry or a late twin of it does nothing."""
        self.runs.release(self.run_id, self.continuation)

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / RENEWALS_PER_LEASE):
            try:
                if not self.runs.renew_lease(self.run_id, self.continuation,
                                             self.now() + timedelta(seconds=self.lease_s)):
                    logger.warning("lease lost: another invocation holds the run",
                                   run_id=self.run_id, continuation=self.continuation)
                    self._lost.set()
                    return
            except Exception as error:  # the next beat tries again; the lease outlasts two misses
                logger.warning("lease renewal failed", run_id=self.run_id, error=str(error))


_UNSEEN = object()
