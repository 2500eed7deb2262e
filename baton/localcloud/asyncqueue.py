"""Asynchronous Lambda events waiting for concurrency: one FIFO queue per function, no thread each.

Stock MiniStack starts a thread for every asynchronous event; when the function is at its reserved
(or the account's) concurrency, each of those threads polled on its own until a slot freed, so
thousands of queued choreography events meant thousands of sleeping threads, and an event could
sleep up to half a second after a slot freed. Here an event waits in its function's queue, and one
dispatcher (a thread only while events wait) starts them: woken by each released concurrency
slot, it takes a slot for the oldest event of the function with the fewest of its queued events
running, and hands event and slot to a thread that runs it. Fewest running first shares the
account's concurrency fairly between functions: a long backlog of one (a run's first step) cannot
take every slot released by the later steps, which would leave each item waiting to its end.

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

WAKE_CHECK_S = 1.0  # the dispatcher looks again this often even without a release


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
        self._releases = 0  # counts releases and puts, so the dispatcher never misses one
        self._queues: dict[Hashable, deque[Pending]] = {}
        self._running: dict[int, Pending] = {}
        self._started: dict[Hashable, int] = {}  # per function: its events running now
        self._dispatching = False
        self._numbers = itertools.count()

    def put(self, event: Pending) -> None:
        """Queue an event behind its function's earlier ones; start the dispatcher if idle."""
        with self._lock:
            event.number = next(self._numbers)
            self._queues.setdefault(event.key, deque()).append(event)
            self._releases += 1  # a new head may be startable now
            self._released.notify_all()
            if self._dispatching:
                return
            self._dispatching = True
        self._start(self._dispatch)

    def released(self) -> None:
        """A concurrency slot was released: wake the dispatcher."""
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

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if not self._queues:
                    self._dispatching = False  # a later put starts it again
                    return
                releases = self._releases
                heads = sorted(((self._started.get(key, 0), queue[0].number, key)
                                for key, queue in self._queues.items()), key=lambda head: head[:2])
            if not any(self._start_head(key) for _, _, key in heads):
                with self._lock:  # every head waits for a slot: sleep until one is released
                    if self._releases == releases:
                        self._released.wait(WAKE_CHECK_S)

    def _start_head(self, key: Hashable) -> bool:
        """Start the oldest event of the function if it gets a slot (or is too old to wait)."""
        with self._lock:
            head = self._queues[key][0]
        expired = self._clock() - head.enqueued > head.max_age_s
        slot = None if expired else head.take_slot()
        if slot is None and not expired:
            return False
        with self._lock:
            queue = self._queues[key]
            queue.popleft()
            if not queue:
                del self._queues[key]
            self._running[head.number] = head
            self._started[key] = self._started.get(key, 0) + 1
        # An expired event runs without a slot: the async invoke then gives up on it as its
        # maximum age says (to its failure destination), as it did before it was queued.
        self._start(partial(self._run, head, slot))
        return True

    def _run(self, event: Pending, slot: Any) -> None:
        try:
            event.run(slot)
        finally:
            with self._lock:
                self._running.pop(event.number, None)
                if self._started[event.key] > 1:
                    self._started[event.key] -= 1
                else:
                    del self._started[event.key]
