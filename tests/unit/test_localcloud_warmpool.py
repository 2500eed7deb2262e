"""The cap on warm workers in total: only idle workers are stopped, least recently used first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from baton.localcloud.warmpool import evict_idle, stop_in_background, warm_cap


@dataclass(eq=False)
class Worker:
    name: str
    last_used: float
    in_use: bool = False


def pools_of(*workers: tuple[str, Worker]) -> dict[str, list[Any]]:
    pools: dict[str, list[Any]] = {}
    for key, worker in workers:
        pools.setdefault(key, []).append(worker)
    return pools


def test_under_the_cap_nothing_is_stopped():
    pools = pools_of(("a", Worker("a1", 1)), ("b", Worker("b1", 2)))

    assert evict_idle(pools, cap=2) == []
    assert sum(len(workers) for workers in pools.values()) == 2


def test_the_least_recently_used_idle_workers_of_any_function_go_first():
    old, older, recent = Worker("b1", 5), Worker("a1", 1), Worker("a2", 9)
    pools = pools_of(("a", older), ("a", recent), ("b", old), ("c", Worker("c1", 7)))

    evicted = evict_idle(pools, cap=2)

    assert [worker.name for worker in evicted] == ["a1", "b1"]
    assert "b" not in pools  # a function left with no worker leaves the pools
    assert [worker.name for workers in pools.values() for worker in workers] == ["a2", "c1"]


def test_a_worker_running_an_invocation_is_never_stopped():
    busy = [Worker(f"busy{number}", number, in_use=True) for number in range(3)]
    pools = pools_of(*(("a", worker) for worker in busy), ("b", Worker("idle", 10)))

    evicted = evict_idle(pools, cap=2)

    assert [worker.name for worker in evicted] == ["idle"]
    assert pools == {"a": busy}  # over the cap while they run: nothing else to stop


def test_the_cap_is_the_account_concurrency_limit(monkeypatch):
    monkeypatch.setenv("LAMBDA_ACCOUNT_CONCURRENCY", "7")

    assert warm_cap() == 7


@pytest.mark.parametrize("workers, stopped", [([], []), (["w"], [["w"]])])
def test_evicted_workers_are_stopped_on_another_thread(workers, stopped):
    jobs: list[Any] = []
    calls: list[list[Any]] = []

    stop_in_background(workers, calls.append, jobs.append)
    assert calls == []  # not on the caller's thread
    for job in jobs:
        job()

    assert calls == stopped
