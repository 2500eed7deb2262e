"""A cap on the local cloud's warm workers in total, across every function.

MiniStack keeps a pool of warm worker processes per function and only stops the extra ones after
they have been idle for a while, so a run that touches a dozen functions at concurrency 8 leaves
dozens of 80-115 MB processes alive at once. AWS never promises that an environment stays warm,
so the launcher caps their total at the account concurrency limit: when a new worker would take
the total over it, the least recently used idle workers (of any function) are stopped. A worker
that runs an invocation is never stopped, so the cap can be exceeded only while more invocations
run than it allows (which the concurrency limit itself prevents).

Runs on MiniStack's interpreter (imported by launcher.py): standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any, Protocol

DEFAULT_CAP = 10


class PooledWorker(Protocol):
    """What the cap reads of a MiniStack worker."""

    in_use: bool
    last_used: float


def warm_cap() -> int:
    """The most warm workers to keep: the account concurrency limit the launcher was given."""
    raw = os.environ.get("LAMBDA_ACCOUNT_CONCURRENCY", "")
    try:
        return max(1, int(raw))
    except ValueError:
        return DEFAULT_CAP


def evict_idle(pools: MutableMapping[str, list[Any]], cap: int | None = None) -> list[Any]:
    """Take out of ``pools`` the least recently used idle workers beyond ``cap``; return them.

    The caller holds the pools' lock, and stops the returned workers after releasing it.
    """
    cap = warm_cap() if cap is None else cap
    excess = sum(len(workers) for workers in pools.values()) - cap
    if excess <= 0:
        return []
    idle = sorted(((worker.last_used, key, worker) for key, workers in pools.items()
                   for worker in workers if not worker.in_use), key=lambda found: found[0])
    evicted = []
    for _, key, worker in idle[:excess]:
        pools[key].remove(worker)
        if not pools[key]:
            del pools[key]
        evicted.append(worker)
    return evicted


def stop_in_background(workers: Sequence[Any], stop: Callable[[list[Any]], None],
                       run: Callable[[Callable[[], None]], None]) -> None:
    """Stop evicted workers on another thread: the invocation that evicted them does not wait."""
    if workers:
        batch = list(workers)
        run(lambda: stop(batch))
