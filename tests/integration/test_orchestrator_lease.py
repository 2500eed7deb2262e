"""The orchestrator's hold on a run in moto: a retry after its holder died takes the run over and
finishes it, a twin of a live holder does nothing, a continuation that ran to its end is not run
again, and no item gets two outcomes. Leases here are 0.3 s long, so the waits are real but short.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from engines.runs import RunsTable
from orchestrator.engine import Budget, Engine, RunLog
from pipeline.models import ItemOutcome, RunRequest, RunStatus, RunSummary, StepRecord
from tests.integration import test_orchestrator_runs as orchestrated
from tests.integration.test_orchestrator_runs import A, B, C, engine_with, run_items
from tests.orchestrator_fakes import FakeSteps

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

runs_table = orchestrated.runs_table  # the fixture: a fresh runs table
LEASE_S = 0.3
# A live holder must be seen renewing: its heartbeat may be late by a loaded machine's scheduling,
# so that test's lease is long enough that only a dead holder's lease can lapse.
LIVE_LEASE_S = 3.0
PLENTY = Budget(lambda: 900_000)


class Killed(BaseException):
    """The invocation's process dies: nothing catches it, nothing after it runs."""


def orchestrator(steps: FakeSteps, runs_table: str, topic: str,
                 lease_s: float = LEASE_S) -> Engine:
    engine = engine_with(steps, runs_table, topic)
    engine.lease_s = lease_s
    engine.sleep = time.sleep  # the lease's waits are real (and short)
    return engine


def request(*urls: str, **options: object) -> RunRequest:
    return RunRequest(run_id=f"run-{uuid.uuid4().hex[:8]}", urls=list(urls), max_concurrency=1,
                      **options)  # type: ignore[arg-type]


def outcomes(runs_table: str, run_id: str) -> dict[str, dict]:
    """Each item's recorded outcome, by URL (an item without one is missing)."""
    return {item["url"]: item["outcome"] for key, item in run_items(runs_table, run_id).items()
            if key.startswith("ITEM#") and "outcome" in item}


def test_a_retry_after_the_holder_crashed_takes_over_and_finishes(
        runs_table: str, alert_queue: dict[str, str]) -> None:
    steps = FakeSteps()
    steps.fail("store", B, Killed())  # dies in B's last step: A is done, B is left running
    run = request(A, B, C)

    with pytest.raises(Killed):
        orchestrator(steps, runs_table, alert_queue["topic"]).run(
            run, budget=PLENTY, continue_run=lambda _: None)
    assert set(outcomes(runs_table, run.run_id)) == {A}

    # The asynchronous retry, while the dead holder's lease still runs: it waits it out.
    summary = orchestrator(steps, runs_table, alert_queue["topic"]).run(
        run, budget=PLENTY, continue_run=lambda _: None)

    assert summary.status is RunStatus.SUCCEEDED and summary.succeeded == 3
    assert set(outcomes(runs_table, run.run_id)) == {A, B, C}
    assert steps.count("scraper", A) == 1  # an item with an outcome is not run again
    assert steps.count("store", B) == 2 and steps.count("store", C) == 1
    meta = run_items(runs_table, run.run_id)["META"]
    assert meta["progress_done"] == 3 and "ended_at" in meta


def test_a_twin_of_a_live_holder_does_nothing(runs_table: str,
                                              alert_queue: dict[str, str]) -> None:
    twin_done, holder_working = threading.Event(), threading.Event()

    def hold(step: str, url: str) -> None:
        if step == "scraper" and url == A:
            holder_working.set()
            assert twin_done.wait(30), "the twin never returned"

    steps = FakeSteps(before=hold)
    run = request(A, B)
    holder: dict[str, RunSummary] = {}
    thread = threading.Thread(target=lambda: holder.update(summary=orchestrator(
        steps, runs_table, alert_queue["topic"], LIVE_LEASE_S).run(
            run, budget=PLENTY, continue_run=lambda _: None)))
    thread.start()
    assert holder_working.wait(30)

    twin = orchestrator(steps, runs_table, alert_queue["topic"], LIVE_LEASE_S).run(
        run, budget=PLENTY, continue_run=lambda _: None)
    calls_by_then = list(steps.calls)
    twin_done.set()
    thread.join(30)

    assert twin.status is RunStatus.RUNNING and twin.pending == 2  # it saw the holder alive
    # The holder's first call still waits in its hook (a call is recorded after it): anything
    # recorded by then is the twin's.
    assert calls_by_then == []
    assert holder["summary"].status is RunStatus.SUCCEEDED
    assert steps.count("store", A) == 1 and steps.count("store", B) == 1
    assert set(outcomes(runs_table, run.run_id)) == {A, B}


def test_a_continuation_that_handed_off_is_not_run_again_after_its_lease(
        runs_table: str, alert_queue: dict[str, str]) -> None:
    steps = FakeSteps()
    run = request(A, B)
    handed: list[RunRequest] = []
    # Time for one item only: the rest goes to continuation 1.
    first = orchestrator(steps, runs_table, alert_queue["topic"]).run(
        run, budget=Budget(lambda: 10_000, 60), continue_run=handed.append)
    assert first.pending == 1 and [h.continuation for h in handed] == [1]
    calls = len(steps.calls)

    time.sleep(LEASE_S * 1.5)  # its lease is long over: a retry could take it
    again = orchestrator(steps, runs_table, alert_queue["topic"]).run(
        run, budget=PLENTY, continue_run=handed.append)

    assert len(steps.calls) == calls and len(handed) == 1  # released: nothing redone
    assert again.pending == 1
    final = orchestrator(steps, runs_table, alert_queue["topic"]).run(
        handed[0], budget=PLENTY, continue_run=handed.append)
    assert final.status is RunStatus.SUCCEEDED and steps.count("store") == 2


def test_an_item_gets_one_outcome_counted_once(runs_table: str) -> None:
    table = RunsTable(runs_table)
    runs: RunLog = table  # what the engine writes through
    run_id, now = f"run-{uuid.uuid4().hex[:8]}", datetime.now(UTC)
    runs.open_run(run_id, engine="orchestrator", total=1, started_at=now, continuation=0)
    assert runs.item_started(run_id, A, now)
    stored = ItemOutcome(run_id=run_id, url=A, succeeded=True)
    late = ItemOutcome(run_id=run_id, url=A, succeeded=False, error_type="TransientError",
                       error="HTTP 503", failed_step="scraper")
    fetched = StepRecord(step="scraper", started_at=now, ended_at=now, attempts=1)
    refused = StepRecord(step="scraper", started_at=now, ended_at=now, attempts=4,
                         error_type="TransientError", error="HTTP 503")

    assert runs.item_finished(stored, now, fetched) is True
    assert runs.item_finished(late, now, refused) is False  # a second invocation's end of the same item

    assert runs.finished_items(run_id)[next(iter(runs.finished_items(run_id)))].succeeded
    # Each end's step is history (written with the outcome, or appended when it lost).
    assert [step for _, step in table.item_steps(run_id)] == [fetched, refused]
    # The engine counts only what item_finished recorded (tests/unit/test_orchestrator_engine:
    # test_progress_counts_only_the_items_this_invocation_recorded); the summary sets it exactly.
    runs.save_summary(RunSummary.from_outcomes(run_id, "orchestrator", [stored], total=1))
    assert run_items(runs_table, run_id)["META"]["progress_done"] == 1


def test_progress_is_added_in_batches_and_set_exactly_by_the_summary(runs_table: str) -> None:
    runs = RunsTable(runs_table)
    run_id, now = f"run-{uuid.uuid4().hex[:8]}", datetime.now(UTC)
    runs.open_run(run_id, engine="orchestrator", total=9, started_at=now, continuation=0)

    runs.add_progress(run_id, 3, 1)
    runs.add_progress(run_id, 2, 0)
    progress = runs.progress(run_id)
    assert progress is not None and progress[1:] == (5, 1)

    ended = [ItemOutcome(run_id=run_id, url=f"http://p{i}.test/", succeeded=i != 0)
             for i in range(6)]  # one more than was added: its batch was never flushed
    runs.save_summary(RunSummary.from_outcomes(run_id, "orchestrator", ended, total=9))
    progress = runs.progress(run_id)
    assert progress is not None and progress[1:] == (6, 1)
