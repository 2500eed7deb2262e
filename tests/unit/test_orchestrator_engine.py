"""The orchestrator's engine over fake steps, an in-memory runs log and fake alerts: no AWS, no sleep."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.engine import Budget, Engine, StepError
from pipeline.errors import PermanentError, TransientError
from pipeline.models import RunRequest, RunStatus, RunSummary, Verdict
from pipeline.policy import POLICY
from pipeline.steps import STEPS
from tests.orchestrator_fakes import FakeAlerts, FakeSteps, MemoryRunLog

RUN = "run-0001"
A, B, C = "http://a.test/", "http://b.test/", "http://c.test/"
PLENTY = Budget(lambda: 900_000, safety_margin_s=60)


@dataclass
class World:
    """An engine and its fakes; ``sleeps`` holds every backoff the engine asked for."""

    steps: FakeSteps = field(default_factory=FakeSteps)
    runs: MemoryRunLog = field(default_factory=MemoryRunLog)
    alerts: FakeAlerts = field(default_factory=FakeAlerts)
    sleeps: list[float] = field(default_factory=list)
    continued: list[RunRequest] = field(default_factory=list)
    clock: Any = None
    max_continuations: int = 20

    def engine(self) -> Engine:
        extra = {"clock": self.clock} if self.clock else {}
        return Engine(
            invoke=self.steps, runs=self.runs, alerts=self.alerts, sleep=self.sleeps.append,
            rng=random.Random(0), max_continuations=self.max_continuations, **extra,
        )

    def run(self, *urls: str, budget: Budget = PLENTY, **options: Any) -> RunSummary:
        request = RunRequest(run_id=RUN, urls=list(urls), **options)
        return self.engine().run(request, budget=budget, continue_run=self.continued.append)


@pytest.fixture
def world() -> World:
    return World()


def outcome_of(summary: RunSummary, url: str) -> Any:
    return next(item for item in summary.items if item.url == url)


# ---- the happy path ---------------------------------------------------------------------------

def test_every_url_goes_through_the_four_steps_in_order(world: World) -> None:
    summary = world.run(A, B)

    assert summary.status is RunStatus.SUCCEEDED
    assert (summary.total, summary.succeeded, summary.failed, summary.pending) == (2, 2, 0, 0)
    assert summary.engine == "orchestrator"
    assert [step for step, url in world.steps.calls if url == A] == [
        "scraper", "transformer", "moderator", "store"
    ]
    assert [item.url for item in summary.items] == [A, B]  # request order
    assert all(item.attempts == 1 and item.record is not None for item in summary.items)
    assert world.sleeps == []


def test_the_run_and_each_step_are_recorded(world: World) -> None:
    world.run(A)

    assert world.runs.runs[RUN]["status"] == "succeeded"
    assert world.runs.runs[RUN]["succeeded"] == 1
    assert [step.step for step in world.runs.steps(RUN, A)] == [
        "scraper", "transformer", "moderator", "store"
    ]
    assert all(step.attempts == 1 and step.error is None for step in world.runs.steps(RUN, A))


def test_duplicate_urls_are_one_item(world: World) -> None:
    summary = world.run(A, A)

    assert summary.total == 1
    assert world.steps.count("scraper") == 1


# ---- retries and failures ---------------------------------------------------------------------

def test_a_page_failing_twice_then_ok_shows_three_scraper_attempts(world: World) -> None:
    world.steps.fail("scraper", A, TransientError("HTTP 500"), TransientError("HTTP 500"))

    summary = world.run(A)

    item = outcome_of(summary, A)
    assert item.succeeded and item.attempts == 3
    assert world.steps.count("scraper", A) == 3
    assert world.runs.steps(RUN, A)[0].attempts == 3
    assert len(world.sleeps) == 2
    assert all(0 <= delay <= POLICY.max_delay(n) for n, delay in enumerate(world.sleeps, 1))


def test_a_permanent_error_fails_that_item_only(world: World) -> None:
    world.steps.fail("transformer", B, PermanentError("not HTML"))

    summary = world.run(A, B, C)

    assert summary.status is RunStatus.FAILED_ITEMS
    assert (summary.succeeded, summary.failed) == (2, 1)
    failed = outcome_of(summary, B)
    assert not failed.succeeded
    assert (failed.failed_step, failed.error_type, failed.error, failed.attempts) == (
        "transformer", "PermanentError", "not HTML", 1
    )
    assert world.steps.count("transformer", B) == 1  # never retried
    assert world.steps.count("moderator", B) == 0
    assert world.sleeps == []


def test_retries_run_out_after_max_attempts(world: World) -> None:
    tries = POLICY.max_attempts + 1
    world.steps.fail("store", A, *[TransientError("throttled")] * (tries + 1))

    item = outcome_of(world.run(A), A)

    assert not item.succeeded
    assert (item.failed_step, item.error_type, item.attempts) == ("store", "TransientError", tries)
    assert world.steps.count("store", A) == tries
    assert len(world.sleeps) == POLICY.max_attempts
    last = world.runs.steps(RUN, A)[-1]
    assert (last.step, last.attempts, last.error_type) == ("store", tries, "TransientError")


def test_lambda_service_errors_are_retried_by_name(world: World) -> None:
    world.steps.fail("moderator", A, StepError("Lambda.TooManyRequestsException", "slow down"))

    item = outcome_of(world.run(A), A)

    assert item.succeeded and item.attempts == 2


def test_an_unnamed_function_error_is_final(world: World) -> None:
    world.steps.fail("moderator", A, StepError("Runtime.HandlerError", "boom"))

    item = outcome_of(world.run(A), A)

    assert (item.succeeded, item.error_type, item.attempts) == (False, "Runtime.HandlerError", 1)


def test_an_answer_breaking_the_contract_fails_that_step(world: World) -> None:
    world.steps.moderator = lambda payload, url: {"score": 2}  # type: ignore[method-assign]

    item = outcome_of(world.run(A), A)

    assert (item.failed_step, item.error_type, item.attempts) == ("moderator", "ValidationError", 1)


def test_a_malformed_url_fails_as_its_own_item_without_any_invoke(world: World) -> None:
    summary = world.run("not a url", A)

    bad = outcome_of(summary, "not a url")
    assert (bad.succeeded, bad.failed_step, bad.error_type, bad.attempts) == (
        False, "scraper", "ValidationError", 0
    )
    assert outcome_of(summary, A).succeeded
    assert world.steps.count("scraper") == 1


def test_an_unchanged_page_ends_after_the_scraper(world: World) -> None:
    world.steps.not_modified.add(A)

    item = outcome_of(world.run(A), A)

    assert item.succeeded and item.record is None
    assert world.steps.calls == [("scraper", A)]


def test_an_unchanged_page_is_recorded_in_one_write_with_its_scraper_step(world: World) -> None:
    world.steps.not_modified.add(A)

    world.run(A)

    # The outcome with the item's start and the scraper's record: one write in all.
    assert (world.runs.start_writes, world.runs.step_writes, world.runs.item_writes) == (0, 0, 1)
    assert [step.step for step in world.runs.steps(RUN, A)] == ["scraper"]


def test_each_step_is_written_as_the_next_begins_and_the_last_with_the_outcome(
        world: World) -> None:
    world.steps.verdicts[A] = Verdict.BLOCK
    stored_before_alert: list[list[str]] = []
    world.alerts.before = lambda: stored_before_alert.append(
        [step.step for step in world.runs.steps(RUN, A)])

    world.run(A)

    assert stored_before_alert == [["scraper", "transformer", "moderator", "store"]]
    assert [step.step for step in world.runs.steps(RUN, A)] == [
        "scraper", "transformer", "moderator", "store", "alert"]
    # The start with the scraper's record, then one write per step, the alert's with the outcome.
    assert (world.runs.start_writes, world.runs.step_writes, world.runs.item_writes) == (1, 3, 1)


def test_a_failed_step_is_recorded_with_the_failed_outcome(world: World) -> None:
    world.steps.fail("transformer", A, PermanentError("raw body missing"))

    world.run(A)

    steps = world.runs.steps(RUN, A)
    assert [step.step for step in steps] == ["scraper", "transformer"]
    # The start with the scraper's record, then the transformer's with the outcome.
    assert steps[-1].error_type == "PermanentError"
    assert (world.runs.start_writes, world.runs.step_writes, world.runs.item_writes) == (1, 0, 1)


class SteppedClock:
    """A monotonic clock that advances ``step`` seconds at each reading."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_progress_is_added_in_batches_and_set_exactly_by_the_summary() -> None:
    world = World(clock=SteppedClock(0.001))  # a fast run: no batch falls due
    urls = [f"http://p{i}.test/" for i in range(20)]

    world.run(*urls, max_concurrency=4)

    assert world.runs.progress_adds == []
    assert world.runs.runs[RUN]["progress_done"] == 20


def test_progress_of_quick_items_is_added_while_a_slow_one_still_runs() -> None:
    world = World(clock=time.monotonic)
    seen_while_running: list[bool] = []

    def slow_until_progress_shows(step: str, url: str) -> None:
        if step == "scraper" and url == C:  # C runs until A's and B's ends are shown (or 5 s)
            deadline = time.monotonic() + 5
            while not world.runs.progress_adds and time.monotonic() < deadline:
                time.sleep(0.01)
            seen_while_running.append(bool(world.runs.progress_adds))

    world.steps.before = slow_until_progress_shows
    world.run(A, B, C, max_concurrency=3)

    assert seen_while_running == [True]  # added about a progress interval after A's end
    assert world.runs.progress_adds[0][0] >= 1


def test_progress_counts_only_the_items_this_invocation_recorded() -> None:
    world = World(clock=SteppedClock(10.0))  # every completion falls due: one add per item
    twin = World()

    def end_a_meanwhile(step: str, url: str) -> None:
        # Another invocation records A's outcome while this one runs A's scraper.
        if step == "scraper" and url == A:
            twin.engine().run_item(RUN, A)
            outcome = twin.runs.finished_items(RUN)
            world.runs.item_finished(next(iter(outcome.values())), twin.engine().now())

    world.steps.before = end_a_meanwhile
    world.run(A, B, max_concurrency=1)

    assert world.runs.progress_adds == [(1, 0)]  # B's end only: A's was the twin's
    # Each item's start with its scraper's record (A's refused: the twin had ended it, so A
    # went no further), then B's transformer and moderator records.
    assert (world.runs.start_writes, world.runs.step_writes) == (2, 2)
    assert world.runs.runs[RUN]["progress_done"] == 2  # the summary counts both outcomes


# ---- alerts -----------------------------------------------------------------------------------

def test_each_flagged_item_sends_one_alert(world: World) -> None:
    world.steps.verdicts.update({A: Verdict.BLOCK, B: Verdict.REVIEW, C: Verdict.ALLOW})

    summary = world.run(A, B, C)

    assert sorted(str(record.url) for record in world.alerts.sent) == [A, B]
    assert summary.flagged == 2 and summary.succeeded == 3


def test_a_failed_alert_fails_the_item_but_keeps_its_record(world: World) -> None:
    world.steps.verdicts[A] = Verdict.BLOCK
    world.alerts.error = RuntimeError("SNS is down")

    item = outcome_of(world.run(A), A)

    assert (item.succeeded, item.failed_step, item.error_type) == (False, "alert", "RuntimeError")
    assert item.record is not None and item.record.verdict is Verdict.BLOCK


# ---- concurrency ------------------------------------------------------------------------------

def test_concurrency_never_exceeds_the_limit_and_reaches_it() -> None:
    """Each scraper call waits until `limit` are in flight (or all others have started), so the
    maximum seen is the limit exactly if, and only if, the engine keeps to it."""
    limit, urls = 3, [f"http://site{n}.test/" for n in range(10)]
    state = {"in_flight": 0, "max": 0, "started": 0}
    changed = threading.Condition()

    def before(step: str, url: str) -> None:
        if step != "scraper":
            return
        with changed:
            state["in_flight"] += 1
            state["started"] += 1
            state["max"] = max(state["max"], state["in_flight"])
            changed.notify_all()
            changed.wait_for(
                lambda: state["in_flight"] >= limit or state["started"] == len(urls), timeout=5
            )
            state["in_flight"] -= 1
            changed.notify_all()

    world = World(steps=FakeSteps(before=before))
    summary = world.run(*urls, max_concurrency=limit)

    assert summary.succeeded == len(urls)
    assert state["max"] == limit


# ---- runs longer than one invocation ----------------------------------------------------------

@dataclass
class FakeTime:
    """Invocation time that advances only when a step runs: 40 s per item, shared by its steps."""

    now: float = 0.0
    deadline: float = 300.0

    def remaining_ms(self) -> int:
        return int((self.deadline - self.now) * 1000)

    def clock(self) -> float:
        return self.now

    def step(self, step: str, url: str) -> None:
        self.now += 40.0 / len(STEPS)


def test_budget_allows_items_while_above_margin_and_twice_the_slowest_item() -> None:
    remaining = {"ms": 100_000}
    budget = Budget(lambda: remaining["ms"], safety_margin_s=60)

    assert budget.allows_new_item(slowest_item_s=40)  # 100 s > max(60, 80)
    assert not budget.allows_new_item(slowest_item_s=55)  # 100 s < 110 s
    remaining["ms"] = 59_000
    assert not budget.allows_new_item(slowest_item_s=0)


def test_a_run_out_of_time_checkpoints_and_reinvokes_itself_once() -> None:
    time = FakeTime()
    world = World(steps=FakeSteps(before=time.step), clock=time.clock)
    urls = [f"http://site{n}.test/" for n in range(8)]

    summary = world.run(
        *urls, max_concurrency=1, budget=Budget(time.remaining_ms, safety_margin_s=30)
    )

    # Items take 40 s; after the sixth only 60 s are left, under twice the slowest item.
    assert summary.status is RunStatus.RUNNING
    assert (summary.succeeded, summary.pending) == (6, 2)
    assert world.steps.count("scraper") == 6
    assert world.runs.runs[RUN]["status"] == "running"
    assert len(world.continued) == 1
    assert world.continued[0].run_id == RUN and world.continued[0].continuation == 1
    assert world.continued[0].urls == urls


def test_a_continued_run_skips_the_items_already_finished() -> None:
    time = FakeTime()
    world = World(steps=FakeSteps(before=time.step), clock=time.clock)
    urls = [f"http://site{n}.test/" for n in range(8)]
    world.run(*urls, max_concurrency=1, budget=Budget(time.remaining_ms, safety_margin_s=30))
    first_calls = list(world.steps.calls)

    time.now, continued = 0.0, world.continued.pop()
    summary = world.engine().run(
        continued, budget=Budget(time.remaining_ms, 30), continue_run=world.continued.append
    )

    new_calls = world.steps.calls[len(first_calls):]
    assert {url for _, url in new_calls} == set(urls[6:])
    assert summary.status is RunStatus.SUCCEEDED
    assert summary.succeeded == 8 and [item.url for item in summary.items] == urls
    assert world.continued == []  # done: no further invocation
    assert world.runs.runs[RUN]["status"] == "succeeded"


def test_each_invocation_starts_at_least_one_item_even_when_short_of_time(world: World) -> None:
    summary = world.run(A, B, max_concurrency=1, budget=Budget(lambda: 10_000, 60))

    assert summary.succeeded == 1 and summary.pending == 1
    assert len(world.continued) == 1


def test_a_run_continued_too_often_fails_its_remaining_items() -> None:
    world = World(max_continuations=2)

    summary = world.run(
        A, B, max_concurrency=1, continuation=2, budget=Budget(lambda: 10_000, 60)
    )

    assert world.continued == []
    assert summary.status is RunStatus.FAILED_ITEMS
    assert outcome_of(summary, B).error_type == "RunTooLong"


# ---- the request ------------------------------------------------------------------------------

def test_a_run_needs_at_least_one_url() -> None:
    with pytest.raises(ValidationError, match="urls"):
        RunRequest(run_id=RUN, urls=[])


def test_a_run_id_must_be_usable_as_an_execution_name() -> None:
    with pytest.raises(ValidationError, match="run_id"):
        RunRequest(run_id="has spaces/and slashes", urls=[A])


# ---- at-least-once delivery, exactly-once effects ----------------------------------------------

def test_a_redelivered_invocation_of_a_finished_run_redoes_nothing(world: World) -> None:
    world.steps.verdicts[A] = Verdict.BLOCK
    first = world.run(A, B)
    calls = list(world.steps.calls)

    again = world.run(A, B)  # the same continuation delivered once more

    assert world.steps.calls == calls
    assert len(world.alerts.sent) == 1
    assert {item.url for item in again.items} == {A, B}
    assert [item.succeeded for item in again.items] == [item.succeeded for item in first.items]


def test_a_concurrent_duplicate_of_a_running_invocation_does_nothing(world: World) -> None:
    # Another invocation of continuation 0 holds the run for the next 15 minutes.
    held_from = world.engine().now()
    world.runs.open_run(RUN, engine="orchestrator", total=2, started_at=held_from, continuation=0,
                        lease_until=held_from + timedelta(minutes=15))

    summary = world.run(A, B)

    assert world.steps.calls == []
    assert summary.pending == 2 and summary.status is RunStatus.RUNNING


def test_a_retry_after_the_holder_died_takes_over_once_its_lease_expired(world: World) -> None:
    long_ago = world.engine().now() - timedelta(hours=1)
    world.runs.open_run(RUN, engine="orchestrator", total=2, started_at=long_ago, continuation=0,
                        lease_until=long_ago + timedelta(minutes=15))

    summary = world.run(A, B)

    assert summary.succeeded == 2 and world.steps.count("store") == 2


def test_an_item_finished_meanwhile_goes_no_further_than_its_first_step(world: World) -> None:
    # A run's continuation leaves out the items it finds finished; an item another invocation
    # finished meanwhile is found at its first write, its start, made with the first step's
    # record: that step ran again, no later one does, and the other's outcome stands.
    world.run(A)
    finished = world.runs.finished_items(RUN)
    calls = len(world.steps.calls)

    outcome = world.engine().run_item(RUN, A)

    assert world.steps.calls[calls:] == [("scraper", A)]
    assert outcome == next(iter(finished.values()))
    assert world.runs.steps(RUN, A)[-1].step == "store"  # its record is the first run's


def test_an_item_started_again_after_its_alert_went_out_does_not_alert_twice(world: World) -> None:
    world.steps.verdicts[A] = Verdict.REVIEW
    engine = world.engine()
    engine.run_item(RUN, A)
    world.runs.items.clear()  # as if the invocation died before recording the outcome...
    world.runs.claim_alert(RUN, A)  # ...but after its alert was taken and sent

    outcome = engine.run_item(RUN, A)

    assert outcome.succeeded and len(world.alerts.sent) == 1


def test_a_failed_alert_is_given_back_so_the_next_attempt_sends_it(world: World) -> None:
    world.steps.verdicts[A] = Verdict.BLOCK
    world.alerts.error = RuntimeError("SNS down")
    engine = world.engine()
    assert not engine.run_item(RUN, A).succeeded
    world.runs.items.clear()  # the item is retried (e.g. by a redrive)
    world.alerts.error = None

    assert engine.run_item(RUN, A).succeeded
    assert len(world.alerts.sent) == 1


def test_a_holder_that_lost_its_lease_starts_nothing_more_and_hands_nothing_off() -> None:
    world = World()
    engine = world.engine()
    engine.lease_s = 0.06  # renewed every 0.02 s (real time: the heartbeat is a thread)

    def taken_over(step: str, url: str) -> None:
        if (step, url) == ("scraper", A):
            world.runs.runs[RUN]["claimed"] = 1  # a later continuation holds the run now
            time.sleep(0.3)  # long enough for several renewals to find it

    world.steps.before = taken_over
    summary = engine.run(RunRequest(run_id=RUN, urls=[A, B, C], max_concurrency=1),
                         budget=PLENTY, continue_run=world.continued.append)

    assert world.steps.count("scraper", B) == 0 and world.steps.count("scraper", C) == 0
    assert world.continued == []  # the new holder carries the run on, not this one
    assert summary.status is RunStatus.RUNNING and summary.pending == 2
    assert world.runs.runs[RUN]["status"] == "running"  # no summary saved over the new holder's
    assert "released" not in world.runs.runs[RUN]
