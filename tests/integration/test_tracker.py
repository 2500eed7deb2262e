"""The run tracker in moto: each item counted once, dead letters as failed items, runs ended.

Runs are read back through the same RunsTable the tracker records with, as the orchestrator and
the CLI use it: a choreographed run is summarised as an orchestrated one.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from engines import runs
from engines.choreography import ATTEMPTS_PER_INVOCATION, ENGINE
from engines.events import PAGE_FAILED, PAGE_NOT_MODIFIED, PAGE_REQUESTED, PAGE_STORED
from engines.runs import RunsTable, run_key
from pipeline.dynamodb import from_item
from pipeline.models import (
    Change,
    ItemOutcome,
    RunStatus,
    ScrapeRequest,
    StoredRecord,
    Verdict,
)
from tests.choreography_fakes import REQUESTED_AT, event, metadata
from tests.integration.conftest import table_properties
from tracker import dlq, handler

A, B, C = "http://a.test/", "http://b.test/", "http://c.test/"


@pytest.fixture
def runs_table(aws: None, alert_queue: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh runs table with template.yaml's RunsTable key schema, as RUNS_TABLE_NAME (and
    the alert topic the tracker publishes flagged pages to)."""
    name = f"baton-runs-{uuid.uuid4().hex[:12]}"
    boto3.client("dynamodb").create_table(TableName=name, **table_properties("RunsTable"))
    monkeypatch.setenv("RUNS_TABLE_NAME", name)
    return name


@pytest.fixture
def run_id(runs_table: str) -> str:
    """A run of A, B and C, opened as the CLI opens it."""
    run = f"run-{uuid.uuid4().hex[:8]}"
    RunsTable(runs_table).open_run(run, engine=ENGINE, total=3, started_at=REQUESTED_AT,
                                   continuation=0)
    return run


def record(run_id: str, url: str, verdict: Verdict = Verdict.ALLOW) -> StoredRecord:
    return StoredRecord(
        run_id=run_id, url=url, content_hash="h", text_key="pages/x/h.txt",  # type: ignore[arg-type]
        change=Change.NEW, verdict=verdict, score=0.9 if verdict != Verdict.ALLOW else 0.1,
        checked_at=REQUESTED_AT)


def stored(run_id: str, url: str, verdict: Verdict = Verdict.ALLOW, attempts: int = 1) -> dict:
    return event(PAGE_STORED, metadata(run_id, url, attempts), record(run_id, url, verdict))


def failed(run_id: str, url: str) -> dict[str, Any]:
    outcome = ItemOutcome(run_id=run_id, url=url, succeeded=False, error_type="PermanentError",
                          error="HTTP 404", failed_step="scraper")
    return event(PAGE_FAILED, metadata(run_id, url, 1), outcome)


def not_modified(run_id: str, url: str) -> dict[str, Any]:
    outcome = ItemOutcome(run_id=run_id, url=url, succeeded=True)
    return event(PAGE_NOT_MODIFIED, metadata(run_id, url, 1), outcome)


def requested(run_id: str, url: str) -> dict[str, Any]:
    data = ScrapeRequest(run_id=run_id, url=url)  # type: ignore[arg-type]
    return event(PAGE_REQUESTED, metadata(run_id, url), data)


def sqs_batch(*bodies: dict[str, Any], attributes: dict[str, str] | None = None) -> dict[str, Any]:
    """An SQS event source batch of dead letters."""
    message_attributes = {name: {"stringValue": value, "dataType": "String"}
                          for name, value in (attributes or {}).items()}
    return {"Records": [
        {"messageId": f"m-{n}", "receiptHandle": f"h-{n}", "body": json.dumps(body),
         "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": message_attributes,
         "md5OfBody": "", "eventSource": "aws:sqs",
         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:baton-dlq", "awsRegion": "us-east-1"}
        for n, body in enumerate(bodies)]}


def destination_record(original: dict[str, Any], error_type: str, count: int) -> dict[str, Any]:
    """What Lambda's OnFailure destination puts in the queue."""
    return {
        "version": "1.0",
        "timestamp": "2026-11-22T10:00:05.000Z",
        "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted",
                           "approximateInvokeCount": count,
                           "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:s"},
        "requestPayload": original,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                            "functionError": "Unhandled"},
        "responsePayload": {"errorType": error_type, "errorMessage": "HTTP 503 from a.test"},
    }


def meta(table: str, run_id: str) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(
        TableName=table, Key={"pk": {"S": run_key(run_id)}, "sk": {"S": "META"}})["Item"]
    return from_item(item)


def test_a_terminal_event_delivered_twice_is_counted_once(runs_table, run_id, lambda_context):
    first = handler.lambda_handler(stored(run_id, A), lambda_context)
    again = handler.lambda_handler(stored(run_id, A), lambda_context)

    assert (first["recorded"], again["recorded"]) == (True, False)
    summary = RunsTable(runs_table).summary(run_id)
    assert summary is not None
    assert (summary.succeeded, summary.failed, summary.pending) == (1, 0, 2)
    assert (meta(runs_table, run_id)["succeeded"], meta(runs_table, run_id)["finished"]) == (1, 1)



def test_an_item_ends_when_its_terminal_event_was_put_not_when_it_was_counted(
        runs_table, run_id, lambda_context):
    put_at = REQUESTED_AT + timedelta(seconds=5)
    delivered = event(PAGE_STORED, metadata(run_id, A, 1).model_copy(update={"sent_at": put_at}),
                      record(run_id, A))

    answer = handler.lambda_handler(delivered, lambda_context)

    assert answer["outcome"]["duration_ms"] == 5000.0  # from its admission to the put
    [(ended, outcome)] = RunsTable(runs_table).item_ends(run_id)
    assert (ended, outcome.url) == (put_at, A)

def alerts_in(queue_url: str) -> list[dict[str, Any]]:
    """The alerts waiting in the queue subscribed to the topic (read and removed)."""
    sqs, found = boto3.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []):
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_a_flagged_page_delivered_twice_alerts_once(runs_table, run_id, alert_queue,
                                                    lambda_context):
    handler.lambda_handler(stored(run_id, A, Verdict.BLOCK), lambda_context)
    handler.lambda_handler(stored(run_id, A, Verdict.BLOCK), lambda_context)
    handler.lambda_handler(stored(run_id, B, Verdict.ALLOW), lambda_context)

    (alert,) = alerts_in(alert_queue["queue"])
    assert alert["Subject"] == "baton: page flagged (block)"
    assert json.loads(alert["Message"])["url"] == A


def test_a_state_machine_end_retried_after_a_crash_counts_and_alerts_once(
        runs_table, run_id, alert_queue, lambda_context):
    # The tracker's worker is killed after its handler ran (lambda.crash): the Task's Retry
    # invokes it again with the same ItemEnd.
    end = {"outcome": ItemOutcome(run_id=run_id, url=A, succeeded=True,
                                  record=record(run_id, A, Verdict.REVIEW)).model_dump(mode="json"),
           "alert_flagged": True}

    answers = [handler.lambda_handler(end, lambda_context) for _ in range(3)]

    assert [answer["recorded"] for answer in answers] == [True, False, False]
    assert (meta(runs_table, run_id)["succeeded"], meta(runs_table, run_id)["finished"]) == (1, 1)
    (alert,) = alerts_in(alert_queue["queue"])
    assert json.loads(alert["Message"])["url"] == A


def test_an_alert_that_failed_to_publish_is_sent_on_redelivery(runs_table, run_id, alert_queue,
                                                               lambda_context, monkeypatch):
    class Down:
        def flagged(self, record: StoredRecord) -> None:
            raise RuntimeError("SNS unavailable")

    working = handler.alerts()
    monkeypatch.setattr(handler, "alerts", lambda: Down())
    with pytest.raises(RuntimeError, match="SNS unavailable"):
        handler.lambda_handler(stored(run_id, A, Verdict.REVIEW), lambda_context)
    assert alerts_in(alert_queue["queue"]) == []

    monkeypatch.setattr(handler, "alerts", lambda: working)
    again = handler.lambda_handler(stored(run_id, A, Verdict.REVIEW), lambda_context)

    assert again["recorded"] is False  # counted the first time...
    assert len(alerts_in(alert_queue["queue"])) == 1  # ...alerted the second


def test_a_run_is_running_with_pending_items_until_its_last_item_ends(
    runs_table, run_id, lambda_context
):
    handler.lambda_handler(stored(run_id, A, Verdict.BLOCK, attempts=3), lambda_context)
    handler.lambda_handler(failed(run_id, B), lambda_context)

    running = RunsTable(runs_table).summary(run_id)
    assert running is not None
    assert (running.status, running.pending, running.ended_at) == (RunStatus.RUNNING, 1, None)

    handler.lambda_handler(not_modified(run_id, C), lambda_context)

    done = RunsTable(runs_table).summary(run_id)
    assert done is not None
    assert (done.engine, done.status, done.total, done.succeeded, done.failed, done.flagged,
            done.pending) == (ENGINE, RunStatus.FAILED_ITEMS, 3, 2, 1, 1, 0)
    assert done.ended_at is not None and done.ended_at >= REQUESTED_AT
    by_url = {item.url: item for item in done.items}
    assert by_url[A].record == record(run_id, A, Verdict.BLOCK) and by_url[A].attempts == 3
    assert (by_url[B].error_type, by_url[B].failed_step) == ("PermanentError", "scraper")
    assert by_url[C].succeeded and by_url[C].record is None
    assert meta(runs_table, run_id)["status"] == "failed-items"


def test_a_run_whose_items_all_succeed_ends_succeeded_once(runs_table, run_id, lambda_context):
    for url in (A, B, C):
        handler.lambda_handler(stored(run_id, url), lambda_context)
    ended_at = meta(runs_table, run_id)["ended_at"]

    handler.lambda_handler(stored(run_id, C), lambda_context)  # a late duplicate

    assert meta(runs_table, run_id)["status"] == RunStatus.SUCCEEDED.value
    assert meta(runs_table, run_id)["ended_at"] == ended_at
    assert meta(runs_table, run_id)["finished"] == 3


def test_the_run_ends_when_the_first_delivery_stopped_before_ending_it(runs_table, run_id):
    tracker = RunsTable(runs_table)
    at = datetime.now(UTC)
    for url in (A, B):
        tracker.record(ItemOutcome(run_id=run_id, url=url, succeeded=True), at)
    # The last item's first delivery wrote its end, then the function stopped.
    tracker._transact(
        [{"Update": tracker._update_request(run_id, runs.item_key(C), "SET #outcome = :o",
                                    {":o": {"run_id": run_id, "url": C, "succeeded": True}})},
         {"Update": tracker._update_request(run_id, runs.META, "ADD #finished :one, #succeeded :one",
                                    {":one": 1})}],
        ItemOutcome(run_id=run_id, url=C, succeeded=True))

    assert tracker.record(ItemOutcome(run_id=run_id, url=C, succeeded=True), at) is False
    assert meta(runs_table, run_id)["status"] == "succeeded"


def test_a_dead_letter_ends_its_item_as_failed_with_its_attempts(runs_table, run_id, lambda_context):
    response = dlq.lambda_handler(
        sqs_batch(destination_record(requested(run_id, A), "TransientError", 1)), lambda_context)

    assert response == {"batchItemFailures": []}
    summary = RunsTable(runs_table).summary(run_id)
    assert summary is not None
    [item] = summary.items
    assert (item.url, item.succeeded, item.failed_step, item.error_type, item.error,
            item.attempts) == (A, False, "scraper", "TransientError", "HTTP 503 from a.test",
                               ATTEMPTS_PER_INVOCATION)
    assert (summary.failed, summary.pending) == (1, 2)


def test_attempts_of_a_crash_come_from_approximate_invoke_count(runs_table, run_id, lambda_context):
    dlq.lambda_handler(
        sqs_batch(destination_record(requested(run_id, A), "Sandbox.Timedout", 3)), lambda_context)

    summary = RunsTable(runs_table).summary(run_id)
    assert summary is not None
    assert summary.items[0].attempts == 3


def test_an_event_eventbridge_could_not_deliver_fails_its_item(runs_table, run_id, lambda_context):
    dlq.lambda_handler(sqs_batch(requested(run_id, B), attributes={
        "ERROR_CODE": "NO_PERMISSIONS", "ERROR_MESSAGE": "not allowed to invoke"}), lambda_context)

    summary = RunsTable(runs_table).summary(run_id)
    assert summary is not None
    assert (summary.items[0].error_type, summary.items[0].failed_step) == ("NO_PERMISSIONS",
                                                                          "scraper")


def test_a_dead_letter_of_an_item_already_ended_counts_nothing(runs_table, run_id, lambda_context):
    handler.lambda_handler(stored(run_id, A), lambda_context)

    dlq.lambda_handler(
        sqs_batch(destination_record(requested(run_id, A), "TransientError", 1)), lambda_context)

    summary = RunsTable(runs_table).summary(run_id)
    assert summary is not None
    assert (summary.succeeded, summary.failed) == (1, 0)


def test_a_message_that_names_no_item_fails_alone(runs_table, run_id, lambda_context):
    batch = sqs_batch({"hello": "world"}, destination_record(requested(run_id, A), "KeyError", 1))

    response = dlq.lambda_handler(batch, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    summary = RunsTable(runs_table).summary(run_id)
    assert summary is not None and summary.failed == 1


def test_the_run_appears_among_recent_runs_with_its_counts(runs_table, run_id, lambda_context):
    for url in (A, B):
        handler.lambda_handler(stored(run_id, url), lambda_context)
    handler.lambda_handler(failed(run_id, C), lambda_context)

    [listed] = RunsTable(runs_table).recent_runs()

    assert (listed["run_id"], listed["engine"], listed["status"], listed["succeeded"],
            listed["failed"], listed["total"]) == (run_id, ENGINE, "failed-items", 2, 1, 3)
