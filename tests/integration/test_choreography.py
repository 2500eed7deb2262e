"""The choreography engine end to end in moto: the real four steps, the real sample site.

Events go through a moto EventBridge bus whose rules are ``engines.events.rule_patterns()``;
moto cannot invoke Lambda targets, so each rule targets an SQS queue and ``Bus.pump`` hands
each queued event to the function the rule is for, as Lambda would. An adapter that raises is
treated as Lambda's asynchronous invocation treats it (no retries configured): its event goes,
wrapped in an OnFailure destination record, to the dead-letter queue the tracker consumes.
"""

from __future__ import annotations

import importlib
import json
import random
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from baton.site import SampleSite
from engines.choreography import ENGINE, adapt, start_choreography
from engines.events import PAGE_REQUESTED, EventMetadata, entry, put_entries, rule_patterns
from engines.runs import RunsTable, run_key
from orchestrator.engine import Budget, Engine
from pipeline.dynamodb import from_item
from pipeline.models import (
    ItemOutcome,
    RunRequest,
    RunStatus,
    RunSummary,
    ScrapeRequest,
    Validators,
)
from pipeline.steps import STEPS as REGISTRY
from store.dal import PageTable
from tests.integration.conftest import table_properties
from tracker import dlq as tracker_dlq
from tracker import handler as tracker_handler

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

# Every registry step's handler, as its function's handler.py exposes it.
STEPS: dict[str, Callable[..., dict[str, Any]]] = {
    step.name: importlib.import_module(f"{step.name}.handler").lambda_handler for step in REGISTRY}


def no_sleep(_: float) -> None:
    """Retries wait per the policy in production; here they do not wait."""


@dataclass
class Bus:
    """A moto event bus, a queue per rule target, and the dead-letter queue."""

    name: str
    queues: dict[str, str]  # target -> queue URL
    dead_letters: str
    context: Any
    dead_lettered: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)  # detail-types, in delivery order

    def __post_init__(self) -> None:
        self.sqs = boto3.client("sqs")
        # The functions' entry points: each adapter wraps the very handler the other engines call.
        self.targets: dict[str, Callable[..., Any]] = {
            step: adapt(step, logic, sleep=no_sleep, rng=random.Random(0))
            for step, logic in STEPS.items()
        }
        self.targets["tracker"] = tracker_handler.lambda_handler

    def pump(self) -> None:
        """Deliver queued events until every queue is empty."""
        while True:
            moved = False
            for target, queue in self.queues.items():
                for message in self._drain(queue):
                    moved = True
                    # moto leaves out the envelope's account, which EventBridge always sets.
                    delivered = {"account": "123456789012", **json.loads(message["Body"])}
                    self.delivered.append(delivered["detail-type"])
                    try:
                        self.targets[target](delivered, self.context)
                    except Exception as error:  # as Lambda does with an async invoke's error
                        self._to_dead_letters(delivered, error)
            for message in self._drain(self.dead_letters):
                moved = True
                self.dead_lettered.append(json.loads(message["Body"]))
                batch = {"Records": [{
                    "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"], "attributes": {}, "messageAttributes": {},
                    "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn",
                    "awsRegion": "us-east-1"}]}
                assert tracker_dlq.lambda_handler(batch, self.context)["batchItemFailures"] == []
            if not moved:
                return

    def _drain(self, queue: str) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        for message in answer.get("Messages", []):
            self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return list(answer.get("Messages", []))

    def _to_dead_letters(self, delivered: dict[str, Any], error: Exception) -> None:
        record = {
            "version": "1.0",
            "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 1,
                               "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"},
            "requestPayload": delivered,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": type(error).__name__, "errorMessage": str(error)},
        }
        self.sqs.send_message(QueueUrl=self.dead_letters, MessageBody=json.dumps(record))


@pytest.fixture
def site_url(sample_site: SampleSite, monkeypatch: pytest.MonkeyPatch) -> str:
    host, port = sample_site.server_address[:2]
    monkeypatch.setenv("SCRAPER_ALLOWED_HOSTS", f"{host!s}:{port}")
    monkeypatch.setenv("SCRAPER_READ_TIMEOUT", "5")
    return sample_site.base_url


@pytest.fixture
def runs_table(aws: None, alert_queue: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"baton-runs-{uuid.uuid4().hex[:12]}"
    boto3.client("dynamodb").create_table(TableName=name, **table_properties("RunsTable"))
    monkeypatch.setenv("RUNS_TABLE_NAME", name)
    return name


@pytest.fixture
def bus(
    bucket: str, records_table: str, runs_table: str, site_url: str, lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Bus:
    """Everything the choreography needs, in moto, with rules from engines.events."""
    suffix = uuid.uuid4().hex[:8]
    name = f"baton-bus-{suffix}"
    eventbridge, sqs = boto3.client("events"), boto3.client("sqs")
    eventbridge.create_event_bus(Name=name)
    queues = {}
    for target, pattern in rule_patterns().items():
        queue = sqs.create_queue(QueueName=f"{target}-{suffix}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        eventbridge.put_rule(Name=f"to-{target}", EventBusName=name,
                             EventPattern=json.dumps(pattern))
        eventbridge.put_targets(Rule=f"to-{target}", EventBusName=name,
                                Targets=[{"Id": target, "Arn": arn}])
        queues[target] = queue
    dead_letters = sqs.create_queue(QueueName=f"dead-letters-{suffix}")["QueueUrl"]
    monkeypatch.setenv("EVENT_BUS_NAME", name)
    return Bus(name, queues, dead_letters, lambda_context)


def choreograph(bus: Bus, runs_table: str, urls: list[str], **fields: Any) -> RunSummary:
    request = RunRequest(run_id=f"run-{uuid.uuid4().hex[:8]}", urls=urls, **fields)
    start_choreography(request, bus.name, RunsTable(runs_table), boto3.client("events"))
    bus.pump()
    summary = RunsTable(runs_table).summary(request.run_id)
    assert summary is not None
    return summary


def orchestrate(runs_table: str, urls: list[str], context: Any) -> RunSummary:
    """The same URLs through the orchestrator's engine, invoking the handlers in process."""
    engine = Engine(invoke=lambda step, payload: STEPS[step](payload, context),
                    runs=RunsTable(runs_table), alerts=_NoAlerts(), sleep=no_sleep,
                    rng=random.Random(0))
    return engine.run(RunRequest(run_id=f"run-{uuid.uuid4().hex[:8]}", urls=urls),
                      budget=Budget(lambda: 900_000), continue_run=lambda _: None)


class _NoAlerts:
    def flagged(self, record: Any) -> None:
        pass




def comparable(item: ItemOutcome, tag: str) -> dict[str, Any]:
    record = item.record
    return {
        "url": item.url.replace(tag, ""), "succeeded": item.succeeded,
        "error_type": item.error_type, "failed_step": item.failed_step, "attempts": item.attempts,
        "validators": (item.etag, item.last_modified),
        "record": None if record is None else (record.change, record.verdict,
                                               round(record.score, 6), record.content_hash),
    }


PAGES = ["/pages/garden", "/pages/rant", "/faults/flaky", "/faults/missing", "/faults/report.pdf"]


def test_choreography_gives_the_orchestrators_outcomes(bus, runs_table, site_url, lambda_context,
                                                        alert_queue):
    def urls(tag: str) -> list[str]:
        # A flaky counter per engine (the site's ``key``); the other pages ignore the query.
        return [f"{site_url}{page}?key={tag}" for page in PAGES]

    orchestrated = orchestrate(runs_table, urls("o"), lambda_context)
    choreographed = choreograph(bus, runs_table, urls("c"))

    assert choreographed.engine == ENGINE and choreographed.status == RunStatus.FAILED_ITEMS
    assert choreographed.ended_at is not None and choreographed.pending == 0
    rows = sorted((comparable(item, "?key=c") for item in choreographed.items), key=str)
    assert rows == sorted((comparable(item, "?key=o") for item in orchestrated.items), key=str)
    flaky = next(row for row in rows if "flaky" in row["url"])
    assert (flaky["succeeded"], flaky["attempts"]) == (True, 3)
    counts = (choreographed.total, choreographed.succeeded, choreographed.failed,
              choreographed.flagged)
    assert counts == (5, 3, 2, 1)
    assert bus.dead_lettered == []
    # The flagged page is alerted once, as the orchestrator alerts it (the tracker sends it).
    alerts = boto3.client("sqs").receive_message(QueueUrl=alert_queue["queue"],
                                                 MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(json.loads(m["Body"])["Message"])["verdict"] for m in alerts] == [
        next(item.record.verdict.value for item in choreographed.items
             if item.record and item.record.verdict != "allow")]


def test_a_duplicated_page_requested_stores_one_record_and_counts_once(
    bus, runs_table, records_table, site_url
):
    url = f"{site_url}/pages/garden?dup"
    request = RunRequest(run_id=f"run-{uuid.uuid4().hex[:8]}", urls=[url])
    start_choreography(request, bus.name, RunsTable(runs_table), boto3.client("events"))
    # The same PageRequested again, as an at-least-once delivery may hand it over.
    runs = RunsTable(runs_table)
    started = runs.summary(request.run_id)
    assert started is not None and started.started_at is not None
    duplicate = entry(PAGE_REQUESTED,
                      EventMetadata(run_id=request.run_id, url=url, requested_at=started.started_at),
                      ScrapeRequest(run_id=request.run_id, url=url),  # type: ignore[arg-type]
                      bus.name)
    put_entries([duplicate])

    bus.pump()

    assert bus.delivered.count("baton.PageStored.v1") == 2  # both copies went all the way
    assert len(PageTable(records_table).history(url)) == 1
    summary = runs.summary(request.run_id)
    assert summary is not None
    assert (summary.total, summary.succeeded, summary.failed, summary.pending,
            summary.status) == (1, 1, 0, 0, RunStatus.SUCCEEDED)
    item = boto3.client("dynamodb").get_item(
        TableName=runs_table, Key={"pk": {"S": run_key(request.run_id)}, "sk": {"S": "META"}})
    assert from_item(item["Item"])["finished"] == 1


def test_an_item_whose_step_keeps_failing_ends_in_the_dead_letter_queue_and_failed(
    bus, runs_table, site_url, sample_site
):
    sample_site.state.pages["library"].down_status = 503

    summary = choreograph(bus, runs_table, [f"{site_url}/pages/library", f"{site_url}/pages/garden"])

    [dead_letter] = bus.dead_lettered
    assert dead_letter["requestPayload"]["detail-type"] == PAGE_REQUESTED
    by_url = {item.url.rsplit("/", 1)[-1]: item for item in summary.items}
    assert (by_url["library"].succeeded, by_url["library"].failed_step,
            by_url["library"].error_type, by_url["library"].attempts) == (
        False, "scraper", "TransientError", 4)  # 1 + the policy's 3 retries, as the orchestrator
    assert by_url["garden"].succeeded
    assert (summary.status, summary.pending) == (RunStatus.FAILED_ITEMS, 0)  # not stuck running


def test_a_page_unchanged_since_the_previous_check_ends_as_not_modified(bus, runs_table, site_url):
    url = f"{site_url}/pages/garden?etag"
    with urllib.request.urlopen(url, timeout=5) as answer:
        etag = answer.headers["ETag"]

    summary = choreograph(bus, runs_table, [url], previous={url: Validators(etag=etag)})

    [item] = summary.items
    assert item.succeeded and item.record is None and item.etag == etag
    assert "baton.PageNotModified.v1" in bus.delivered
    assert "baton.PageScraped.v1" not in bus.delivered


def test_a_run_keeps_at_most_max_concurrency_items_in_flight_and_ends_every_one(
    bus, runs_table, site_url, sample_site, monkeypatch
):
    sample_site.state.pages["library"].down_status = 503  # its end comes as a dead letter
    urls = [f"{site_url}/pages/library", *(f"{site_url}/pages/garden?lane={n}" for n in range(6))]
    admitted, ended, most = 0, 0, 0

    def counting(target: Callable[..., Any], counts_as: str) -> Callable[..., Any]:
        def delivered(*args: Any) -> Any:
            nonlocal admitted, ended, most
            if counts_as == "admitted":
                admitted += 1
                most = max(most, admitted - ended)
            else:
                ended += 1
            return target(*args)
        return delivered

    bus.targets["scraper"] = counting(bus.targets["scraper"], "admitted")
    bus.targets["tracker"] = counting(bus.targets["tracker"], "ended")
    monkeypatch.setattr(tracker_dlq, "lambda_handler",
                        counting(tracker_dlq.lambda_handler, "ended"))

    summary = choreograph(bus, runs_table, urls, max_concurrency=2)

    assert (admitted, ended, most) == (len(urls), len(urls), 2)
    assert (summary.total, summary.succeeded, summary.failed, summary.pending) == (7, 6, 1, 0)
    waiting = boto3.client("dynamodb").query(
        TableName=runs_table, KeyConditionExpression="pk = :pk AND begins_with(sk, :wait)",
        ExpressionAttributeValues={":pk": {"S": run_key(summary.run_id)}, ":wait": {"S": "WAIT#"}})
    assert waiting["Items"] == []  # every waiting item was admitted
