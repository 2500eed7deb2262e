"""A cap on the local cloud's warm workers in total, across every function.

MiniStack keeps a pool of warm worker processes per function and only stops the extra ones after
they have been idle for a while, so a run that touches a dozen functions at concurrency 8 leaves
dozens of 80-115 MB processes alive at once. AWS never promises that an environment stays warm,
so the launcher caps their total at ``WORKERS_PER_SLOT`` times the account concurrency limit:
when a new worker would take the total over it, idle workers (of any function) are stopped. The
multiple is what a run needs to stay warm: its items move through the pipeline's steps together,
so a run of concurrency 8 over four steps and its orchestrator uses 33 workers, though never more
than 9 at once; a cap at the limit itself made every step a cold start for every item (measured:
48 cold starts in a 50-URL orchestrator run, 3x its wall time). A worker that runs an invocation
is never stopped.

Only the workers of a function unused for ``MIN_IDLE_S`` at least are stopped for the cap: within
a run a function's pool grows and shrinks with its share of the concurrency, and stopping a
worker it will need again a moment later means a cold start (~0.5 s of CPU here, several seconds
on a loaded machine), so the cap really stops the workers of functions no longer in use (an
earlier run's, another engine's), and the total can exceed it while more functions are in use
than it holds. MiniStack's own reaper still stops any function's extra workers idle for
``BATON_WORKER_IDLE_S``. Extra workers go first (the least recently used of them), then the last
worker of each function, so moving from one function to another costs as few cold starts as
possible.

Runs on MiniStack's interpreter (imported by launcher.py): standard library only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

DEFAULT_LIMIT = 10
WORKERS_PER_SLOT = 3
MIN_IDLE_S = 5.0


def warm_cap() -> int:
    """The most warm workers to keep: a multiple of the account concurrency limit the launcher got."""
    try:
        limit = max(1, int(os.environ.get("LAMBDA_ACCOUNT_CONCURRENCY", "")))
    except ValueError:
        limit = DEFAULT_LIMIT
    return WORKERS_PER_SLOT * limit


def evict_idle(pools: MutableMapping[str, list[Any]], cap: int, min_idle_s: float = MIN_IDLE_S,
               now: float | None = None) -> list[Any]:
    """Take out of ``pools`` idle workers beyond ``cap``, of functions unused for ``min_idle_s``,
    extra ones first, each kind least recently used first; return them.

    The caller holds the pools' lock, and stops the returned workers after releasing it.
    """
    excess = sum(len(workers) for workers in pools.values()) - cap
    if excess <= 0:
        return []
    since = (time.time() if now is None else now) - min_idle_s
    unused = {key for key, workers in pools.items()
              if not any(worker.in_use or worker.last_used > since for worker in workers)}
    idle = sorted(((worker.last_used, key, worker) for key in unused for worker in pools[key]),
                  key=lambda found: found[0])
    evicted: list[Any] = []
    for extras_only in (True, False):
        for _, key, worker in idle:
            if len(evicted) == excess:
                return evicted
            if worker in evicted or (extras_only and len(pools[key]) == 1):
                continue
            pools[key].remove(worker)
            if not pools[key]:
                del pools[key]
            evicted.append(worker)
    return evicted


class WarmWorkers:
    """Leases MiniStack's warm workers within the cap: its ``acquire_worker``, and the trims after.

    ``lock`` and ``pools`` are MiniStack's worker lock and pools (key -> workers); ``acquire`` and
    ``stop`` its lease and batch kill; ``background`` runs a job on another thread.
    """

    def __init__(self, lock: Any, pools: MutableMapping[str, list[Any]],
                 acquire: Callable[..., tuple[Any, str]], stop: Callable[[list[Any]], None],
                 background: Callable[[Callable[[], None]], None],
                 cap: Callable[[], int] = warm_cap, min_idle_s: float = MIN_IDLE_S) -> None:
        self._lock = lock
        self._pools = pools
        self._acquire = acquire
        self._stop = stop
        self._background = background
        self._cap = cap
        self._min_idle_s = min_idle_s

    def acquire(self, func_name: str, config: dict[str, Any], code_zip: bytes,
                qualifier: str = "$LATEST") -> tuple[Any, str]:
        """A worker for the function as MiniStack's ``acquire_worker`` answers it; a new one makes
        room for itself. Concurrent invocations still get separate workers, as on AWS."""
        worker, reason = self._acquire(func_name, config, code_zip, qualifier=qualifier)
        if reason == "spawn":
            self.trim()
        return worker, reason

    def trim(self) -> None:
        """Stop (on another thread) the workers idle long enough beyond the cap."""
        with self._lock:
            evicted = evict_idle(self._pools, self._cap(), self._min_idle_s)
        stop_in_background(evicted, self._stop, self._background)


def stop_in_background(workers: Sequence[Any], stop: Callable[[list[Any]], None],
                       run: Callable[[Callable[[], None]], None]) -> None:
    """Stop evicted workers on another thread: the invocation that evicted them does not wait."""
    if workers:
        batch = list(workers)
        run(lambda: stop(batch))
