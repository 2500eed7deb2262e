"""Asynchronous Lambda events waiting for concurrency: one FIFO queue per function, no thread each.

Stock MiniStack starts a thread for every asynchronous event; when the function is at its reserved
(or the account's) concurrency, each of those threads polled on its own until a slot freed, so
thousands of queued choreography events meant thousands of sleeping threads, and an event could
sleep up to half a second after a slot freed. Here an event waits in its function's queue; one
drainer per function with waiting events takes a concurrency slot for the oldest event as soon as
one is released (the release wakes it) and hands event and slot to a thread that runs it.

An event leaves the queue only once it has a slot, so events of a function start in the order
they came; they are remembered until their run ends, so a save (``snapshot``) taken at any time
lists every event not yet done, started ones first: with ``--persist`` they are run again at the
next start (asynchronous delivery is at least once, on AWS too).

Runs on MiniStack's interpreter (imported by launcher.py): standard library only.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

WAKE_CHECK_S = 1.0  # a drainer looks again this often even without a release (a missed wake-up)


@dataclass(eq=False)
class Pending:
    """One asynchronous event: the function's queue it waits in, what runs it, what a save keeps."""

    key: Hashable
    take_slot: Callable[[], Any]  # a concurrency slot for it now, or None (never blocks)
    run: Callable[[Any], None]  # called with the slot taken for it (None once it is too old)
    saved: Any = None  # what ``snapshot`` lists for it (the function and the event)
    max_age_s: float = 21_600.0  # MaximumEventAgeInSeconds: past it, it runs without waiting
    enqueued: float = field(default_factory=time.time)
    number: int = 0


class AsyncQueues:
    """The per-function queues of asynchronous events, drained as concurrency frees up."""

    def __init__(self, start: Callable[[Callable[[], None]], None],
                 clock: Callable[[], float] = time.time) -> None:
        self._start = start  # runs a job on another thread now
        self._clock = clock
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)
        self._releases = 0  # counts releases, so a drainer never waits for one that happened
        self._queues: dict[Hashable, deque[Pending]] = {}
        self._running: dict[int, Pending] = {}
        self._numbers = itertools.count()

    def put(self, event: Pending) -> None:
        """Queue an event behind its function's earlier ones; start that queue's drainer if idle."""
        with self._lock:
            event.number = next(self._numbers)
            waiting = self._queues.get(event.key)
            if waiting is not None:
                waiting.append(event)
                return
            self._queues[event.key] = deque([event])
        self._start(partial(self._drain, event.key))

    def released(self) -> None:
        """A concurrency slot was released: wake the drainers."""
        with self._lock:
            self._releases += 1
            self._released.notify_all()

    def waiting(self) -> int:
        """How many events wait for a slot (started ones excluded)."""
        with self._lock:
            return sum(len(queue) for queue in self._queues.values())

    def snapshot(self) -> list[Any]:
        """What every event not yet done saves: started ones first, then each queue in order."""
        with self._lock:
            running = sorted(self._running.values(), key=lambda event: event.number)
            waiting = sorted((event for queue in self._queues.values() for event in queue),
                             key=lambda event: event.number)
        return [event.saved for event in running + waiting]

    def _drain(self, key: Hashable) -> None:
        while True:
            with self._lock:
                queue = self._queues[key]
                if not queue:
                    del self._queues[key]  # a later put starts a new drainer
                    return
                head, releases = queue[0], self._releases
            expired = self._clock() - head.enqueued > head.max_age_s
            slot = None if expired else head.take_slot()
            if slot is None and not expired:
                with self._lock:
                    if self._releases == releases:
                        self._released.wait(WAKE_CHECK_S)
                continue
            with self._lock:
                queue.popleft()
                self._running[head.number] = head
            # An expired event runs without a slot: the async invoke then gives up on it as its
            # maximum age says (to its failure destination), as it did before it was queued.
            self._start(partial(self._run, head, slot))

    def _run(self, event: Pending, slot: Any) -> None:
        try:
            event.run(slot)
        finally:
            with self._lock:
                self._running.pop(event.number, None)
