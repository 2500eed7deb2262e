"""Asynchronous events queued per function: started in order as slots free, none lost, none saved twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from baton.localcloud.asyncqueue import AsyncQueues, Pending


class Slots:
    """A function's concurrency: ``limit`` slots; the queue takes them, finished events give them back."""

    def __init__(self, limit: int) -> None:
        self.free = limit
        self.lock = threading.Lock()

    def take(self) -> Any:
        with self.lock:
            if self.free == 0:
                return None
            self.free -= 1
            return "slot"

    def give_back(self, queues: AsyncQueues) -> None:
        with self.lock:
            self.free += 1
        queues.released()


def on_threads() -> tuple[Callable[[Callable[[], None]], None], list[threading.Thread]]:
    started: list[threading.Thread] = []

    def start(job: Callable[[], None]) -> None:
        thread = threading.Thread(target=job, daemon=True)
        started.append(thread)
        thread.start()

    return start, started


def test_events_start_in_order_one_slot_at_a_time_and_none_is_lost():
    start, _ = on_threads()
    queues = AsyncQueues(start)
    slots = Slots(limit=1)
    ran: list[int] = []
    finished = threading.Event()
    count = 200

    def run(number: int, slot: Any) -> None:
        assert slot == "slot"
        ran.append(number)
        slots.give_back(queues)
        if len(ran) == count:
            finished.set()

    for number in range(count):
        queues.put(Pending(key="fn", take_slot=slots.take, run=partial(run, number)))

    assert finished.wait(20), f"only {len(ran)} of {count} ran"
    assert ran == list(range(count))
    assert queues.waiting() == 0


def test_a_full_function_does_not_hold_up_another():
    start, _ = on_threads()
    queues = AsyncQueues(start)
    other_ran = threading.Event()

    queues.put(Pending(key="busy", take_slot=lambda: None, run=lambda slot: None))
    queues.put(Pending(key="free", take_slot=lambda: "slot", run=lambda slot: other_ran.set()))

    assert other_ran.wait(5)
    assert queues.waiting() == 1  # the busy function's event still waits


def test_an_event_waits_for_a_release_then_runs():
    start, _ = on_threads()
    queues = AsyncQueues(start)
    slots = Slots(limit=0)
    ran = threading.Event()

    queues.put(Pending(key="fn", take_slot=slots.take, run=lambda slot: ran.set()))
    assert not ran.wait(0.2)
    slots.give_back(queues)

    assert ran.wait(5)


def test_a_snapshot_lists_running_then_waiting_events_and_forgets_finished_ones():
    start, _ = on_threads()
    queues = AsyncQueues(start)
    slots = Slots(limit=1)
    release_first = threading.Event()
    first_running = threading.Event()

    def first(slot: Any) -> None:
        first_running.set()
        release_first.wait(5)

    queues.put(Pending(key="fn", take_slot=slots.take, run=first, saved="first"))
    assert first_running.wait(5)
    queues.put(Pending(key="fn", take_slot=slots.take, run=lambda slot: None, saved="second"))
    queues.put(Pending(key="other", take_slot=lambda: None, run=lambda slot: None, saved="third"))

    assert queues.snapshot() == ["first", "second", "third"]
    release_first.set()
    slots.give_back(queues)  # the first ends; the second takes its slot and ends at once
    for _ in range(100):
        if queues.snapshot() == ["third"]:
            break
        threading.Event().wait(0.05)
    assert queues.snapshot() == ["third"]


def test_an_event_past_its_maximum_age_runs_without_a_slot():
    start, _ = on_threads()
    now = [1000.0]
    queues = AsyncQueues(start, clock=lambda: now[0])
    given: list[Any] = []
    ran = threading.Event()

    def run(slot: Any) -> None:
        given.append(slot)
        ran.set()

    now[0] += 61
    queues.put(Pending(key="fn", take_slot=lambda: None, run=run, max_age_s=60, enqueued=1000.0))

    assert ran.wait(5)
    assert given == [None]


def test_a_released_slot_goes_to_the_function_with_the_fewest_events_running():
    start, _ = on_threads()
    queues = AsyncQueues(start)
    account = Slots(limit=2)  # shared by both functions, as the account limit is
    started: list[str] = []
    finish = {name: threading.Event() for name in ("first-1", "first-2", "first-3", "later-1")}

    def run(name: str, slot: Any) -> None:
        started.append(name)
        finish[name].wait(5)
        account.give_back(queues)

    for name in ("first-1", "first-2", "first-3"):  # a backlog queued first
        queues.put(Pending(key="first", take_slot=account.take, run=partial(run, name)))
    for _ in range(100):
        if len(started) == 2:
            break
        threading.Event().wait(0.02)
    queues.put(Pending(key="later", take_slot=account.take, run=partial(run, "later-1")))
    finish["first-1"].set()  # one slot frees: "later" has none running, "first" still has one
    for _ in range(100):
        if len(started) == 3:
            break
        threading.Event().wait(0.02)

    assert started == ["first-1", "first-2", "later-1"]
    for event in finish.values():
        event.set()
