"""The launcher's reused threads: never a job queued behind another, no thread started when one is idle."""

import threading

from baton.localcloud.launcher import ReusedThreads


def run_and_wait(threads: ReusedThreads) -> int:
    seen: list[int] = []
    threads.start(lambda: seen.append(threading.get_ident())).join(timeout=5)
    return seen[0]


def test_an_idle_thread_runs_the_next_job():
    threads = ReusedThreads()
    first = run_and_wait(threads)
    threads_before = threading.active_count()

    second = run_and_wait(threads)

    assert first == second != threading.get_ident()
    assert threading.active_count() == threads_before


def test_a_blocked_job_does_not_hold_up_the_next():
    threads = ReusedThreads()
    release = threading.Event()
    blocked = threads.start(lambda: release.wait(5))

    other = threads.start(lambda: None)
    other.join(timeout=5)

    assert not other.is_alive()
    assert blocked.is_alive()
    release.set()
    blocked.join(timeout=5)
    assert not blocked.is_alive()


def test_a_failing_job_still_reports_done():
    threads = ReusedThreads()

    def fail() -> None:
        raise RuntimeError("handler bug")

    failed = threads.start(fail)
    failed.join(timeout=5)

    assert not failed.is_alive()
    assert run_and_wait(threads) != threading.get_ident()  # the pool still serves jobs
