"""Choreography on the local cloud: duplicates are harmless, failures end up counted, not lost."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import Any

from baton import run
from engines.choreography import start_choreography
from engines.runs import RunsTable
from pipeline.keys import url_id
from pipeline.models import RunSummary


class DuplicatingEvents:
    """An EventBridge client that delivers every event twice, as at-least-once delivery may."""

    def __init__(self, events: Any) -> None:
        self.events = events

    def put_events(self, Entries: list[dict[str, Any]]) -> Any:  # boto3 names it Entries
        answer = self.events.put_events(Entries=Entries + Entries)
        # Answered as PutEvents answers its caller, one result per entry it gave (the first
        # copy's): a copy the bus refused is sent again by the caller, as it would be.
        results = answer.get("Entries", [])[:len(Entries)]
        return {**answer, "Entries": results,
                "FailedEntryCount": sum(1 for result in results if "ErrorCode" in result)}


def wait_for(runs: RunsTable, run_id: str, timeout_s: float = 120) -> RunSummary:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        summary = runs.summary(run_id)
        if summary is not None and summary.pending == 0 and summary.ended_at is not None:
            return summary
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still pending after {timeout_s} s: {runs.summary(run_id)}")


def control(site_url: str, action: str) -> None:
    request = urllib.request.Request(f"{site_url}/_control/{action}", method="POST")
    urllib.request.urlopen(request, timeout=5).read()


def test_duplicated_events_store_once_and_count_once(pipeline_stack, sample_site_url,
                                                      aws: Callable[[str], Any]):
    runs = RunsTable(pipeline_stack["RunsTableName"], aws("dynamodb"))
    url = f"{sample_site_url}/pages/library?duplicates=1"
    request = run.run_request([url], 1)

    start_choreography(request, pipeline_stack["EventBusName"], runs,
                       DuplicatingEvents(aws("events")))
    summary = wait_for(runs, request.run_id)

    assert (summary.total, summary.succeeded, summary.failed) == (1, 1, 0)
    history = aws("dynamodb").query(
        TableName=pipeline_stack["RecordsTableName"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :check)",
        ExpressionAttributeValues={":pk": {"S": f"URL#{url_id(url)}"}, ":check": {"S": "CHECK#"}},
    )["Items"]
    assert [item["run_id"]["S"] for item in history] == [request.run_id]


def test_a_step_that_keeps_failing_ends_in_the_dead_letter_queue_and_as_failed(
        pipeline_stack, sample_site_url, aws):
    runs = RunsTable(pipeline_stack["RunsTableName"], aws("dynamodb"))
    control(sample_site_url, "down?page=news&status=503")
    try:
        request = run.run_request([f"{sample_site_url}/pages/news?dead-letter=1"], 1)
        start_choreography(request, pipeline_stack["EventBusName"], runs, aws("events"))
        summary = wait_for(runs, request.run_id)
    finally:
        control(sample_site_url, "up?page=news")

    (item,) = summary.items
    assert summary.failed == 1 and not item.succeeded
    assert (item.failed_step, item.error_type) == ("scraper", "TransientError")
    assert item.attempts == 4  # the first try and the policy's three retries
