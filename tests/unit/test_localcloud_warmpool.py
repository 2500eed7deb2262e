"""The cap on warm workers in total: only idle workers are stopped, a function's extra ones before
its last one, least recently used first."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest

from baton.localcloud.warmpool import (
    MIN_IDLE_S,
    WORKERS_PER_SLOT,
    WarmWorkers,
    evict_idle,
    stop_in_background,
    warm_cap,
)


@dataclass(eq=False)
class Worker:
    name: str
    last_used: float
    in_use: bool = False


NOW = 100.0  # every worker below was last used before this, more than MIN_IDLE_S ago


def pools_of(*workers: tuple[str, Worker]) -> dict[str, list[Any]]:
    pools: dict[str, list[Any]] = {}
    for key, worker in workers:
        pools.setdefault(key, []).append(worker)
    return pools


def test_under_the_cap_nothing_is_stopped():
    pools = pools_of(("a", Worker("a1", 1)), ("b", Worker("b1", 2)))

    assert evict_idle(pools, cap=2, now=NOW) == []
    assert sum(len(workers) for workers in pools.values()) == 2


def test_the_least_recently_used_idle_workers_of_any_function_go_first():
    old, older, recent = Worker("b1", 5), Worker("a1", 1), Worker("a2", 9)
    pools = pools_of(("a", older), ("a", recent), ("b", old), ("c", Worker("c1", 7)))

    evicted = evict_idle(pools, cap=2, now=NOW)

    assert [worker.name for worker in evicted] == ["a1", "b1"]
    assert "b" not in pools  # a function left with no worker leaves the pools
    assert [worker.name for workers in pools.values() for worker in workers] == ["a2", "c1"]


def test_a_worker_running_an_invocation_is_never_stopped():
    busy = [Worker(f"busy{number}", number, in_use=True) for number in range(3)]
    pools = pools_of(*(("a", worker) for worker in busy), ("b", Worker("idle", 10)))

    evicted = evict_idle(pools, cap=2, now=NOW)

    assert [worker.name for worker in evicted] == ["idle"]
    assert pools == {"a": busy}  # over the cap while they run: nothing else to stop


def test_the_cap_is_a_multiple_of_the_account_concurrency_limit(monkeypatch):
    monkeypatch.setenv("LAMBDA_ACCOUNT_CONCURRENCY", "7")

    assert warm_cap() == 7 * WORKERS_PER_SLOT


@pytest.mark.parametrize("workers, stopped", [([], []), (["w"], [["w"]])])
def test_evicted_workers_are_stopped_on_another_thread(workers, stopped):
    jobs: list[Any] = []
    calls: list[list[Any]] = []

    stop_in_background(workers, calls.append, jobs.append)
    assert calls == []  # not on the caller's thread
    for job in jobs:
        job()

    assert calls == stopped




def test_an_extra_worker_goes_before_the_last_worker_of_a_function_used_longer_ago():
    pools = pools_of(("old", Worker("old1", 1)), ("hot", Worker("hot1", 5)), ("hot", Worker("hot2", 6)))

    evicted = evict_idle(pools, cap=2, now=NOW)

    assert [worker.name for worker in evicted] == ["hot1"]
    assert [worker.name for workers in pools.values() for worker in workers] == ["old1", "hot2"]


class Pools:
    """MiniStack's side: its lock, its pools and a lease that reuses a free worker or adds one."""

    def __init__(self, pools: dict[str, list[Any]], cap: int) -> None:
        self.lock = threading.Lock()
        self.pools = pools
        self.stopped: list[Any] = []
        self.warm = WarmWorkers(self.lock, pools, self.lease, self.stopped.extend, lambda job: job(),
                                cap=lambda: cap, min_idle_s=0)

    def lease(self, name: str, config: dict[str, Any], code: bytes, qualifier: str) -> tuple[Any, str]:
        with self.lock:
            for worker in self.pools.get(name, []):
                if not worker.in_use:
                    worker.in_use = True
                    return worker, "reused"
            worker = Worker(f"{name}{len(self.pools.get(name, [])) + 1}", 100, in_use=True)
            self.pools.setdefault(name, []).append(worker)
            return worker, "spawn"


def test_a_new_worker_makes_room_for_itself_and_a_reused_one_stops_nothing():
    pools = Pools({"a": [Worker("a1", 1, in_use=True)], "b": [Worker("b1", 2)]}, cap=2)

    new, reason = pools.warm.acquire("b", {}, b"")
    assert (new.name, reason) == ("b1", "reused") and pools.stopped == []
    new.in_use = False
    new, reason = pools.warm.acquire("a", {}, b"")  # a1 busy: a second worker for "a"

    assert (new.name, reason) == ("a2", "spawn")
    assert [stopped.name for stopped in pools.stopped] == ["b1"]
    assert [w.name for w in pools.pools["a"]] == ["a1", "a2"] and "b" not in pools.pools


def test_the_workers_of_a_function_used_moments_ago_are_kept_even_over_the_cap():
    recent = [Worker("a1", NOW - MIN_IDLE_S / 2), Worker("a2", NOW - MIN_IDLE_S * 3)]  # a2: idle, old
    current = Worker("c1", NOW)
    pools = pools_of(*(("a", worker) for worker in recent), ("b", Worker("b1", NOW - MIN_IDLE_S * 2)),
                     ("c", current))

    evicted = evict_idle(pools, cap=1, now=NOW)

    assert [worker.name for worker in evicted] == ["b1"]
    assert pools == {"a": recent, "c": [current]}
