"""The choreography's tracker under duplicated events: when one copy of an item's event fails
(its function killed, its retries spent) and its twin stores the page, the item is counted once,
as stored, whichever end arrives first; a redelivered end still counts nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import boto3
import pytest

from engines.runs import RunsTable
from pipeline.models import ItemOutcome, RunStatus, StoredRecord
from tests.integration.conftest import table_properties

A, B = "http://a.test/", "http://b.test/"
AT = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
RUN = "run-dup"


@pytest.fixture
def runs(aws: None) -> RunsTable:
    name = f"baton-runs-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb").create_table(TableName=name, **table_properties("RunsTable"))
    table = RunsTable(name)
    table.open_run(RUN, engine="choreography", total=2, started_at=AT, continuation=0)
    return table


def stored(url: str, verdict: str = "block") -> ItemOutcome:
    record = StoredRecord.model_validate({
        "run_id": RUN, "url": url, "content_hash": "h", "text_key": "texts/h.txt",
        "change": "new", "verdict": verdict, "score": 0.9, "checked_at": AT})
    return ItemOutcome(run_id=RUN, url=url, succeeded=True, record=record)


def killed(url: str) -> ItemOutcome:
    return ItemOutcome(run_id=RUN, url=url, succeeded=False, error_type="Runtime.ExitError",
                       error="Runtime exited with error: signal: killed", failed_step="store")


def counts(runs: RunsTable) -> tuple[int, int, int, str]:
    meta = runs.meta(RUN) or {}
    return meta["succeeded"], meta["failed"], meta.get("flagged", 0), meta["status"]


def test_a_success_after_a_recorded_failure_wins_and_moves_the_counts(runs):
    assert runs.record(stored(B, "allow"), AT)
    assert runs.record(killed(A), AT)  # the run ends here, on a failure
    assert counts(runs) == (1, 1, 0, RunStatus.FAILED_ITEMS.value)

    assert runs.record(stored(A), AT)  # the twin's end

    assert counts(runs) == (2, 0, 1, RunStatus.SUCCEEDED.value)
    outcome = runs.finished_items(RUN)
    assert all(item.succeeded for item in outcome.values()) and len(outcome) == 2


def test_a_failure_after_a_success_and_a_second_success_count_nothing(runs):
    assert runs.record(stored(A), AT)
    assert not runs.record(killed(A), AT)
    assert not runs.record(stored(A), AT)
    assert counts(runs)[:3] == (1, 0, 1)
