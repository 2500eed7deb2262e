"""The orchestrator's runs table and alerts in moto: what a run leaves behind, and its summary."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from engines.alerts import FlaggedPageAlerts
from engines.handoff import RequestStore
from engines.runs import RUNS_TABLE_SCHEMA, RunClaimed, RunsTable, item_key, run_key
from orchestrator import handler
from orchestrator.engine import Budget, Engine
from pipeline import aws
from pipeline.alerts import SnsAlerts
from pipeline.dynamodb import from_item
from pipeline.errors import PermanentError, TransientError
from pipeline.models import ItemOutcome, RunRequest, RunStatus, StepRecord, Verdict
from pipeline.steps import STEPS
from tests.integration.conftest import TEMPLATE, table_properties
from tests.orchestrator_fakes import FakeSteps

A, B, C = "http://a.test/", "http://b.test/", "http://c.test/"
LARGE_URLS = [f"http://site.example/articles/{n:05d}" for n in range(10_000)]

# Failing invocations publish no metric; Powertools warns about that, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def runs_table(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh runs table with RUNS_TABLE_SCHEMA (template.yaml's, once it declares RunsTable)."""
    name = f"baton-runs-{uuid.uuid4().hex[:12]}"
    boto3.client("dynamodb").create_table(TableName=name, **RUNS_TABLE_SCHEMA)
    monkeypatch.setenv("RUNS_TABLE_NAME", name)
    return name


def received_alerts(queue_url: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(message["Body"]) for message in messages.get("Messages", [])]


def run_items(table: str, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's table items by sort key, as plain values."""
    answer = boto3.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": run_key(run_id)}},
    )
    return {item["sk"]["S"]: from_item(item) for item in answer["Items"]}


def engine_with(steps: FakeSteps, runs_table: str, topic: str) -> Engine:
    return Engine(invoke=steps, runs=RunsTable(runs_table), alerts=FlaggedPageAlerts(SnsAlerts(topic)),
                  sleep=lambda _: None, rng=random.Random(0))


def test_a_run_records_its_meta_items_and_steps(runs_table: str, alert_queue: dict[str, str]) -> None:
    steps = FakeSteps(verdicts={A: Verdict.BLOCK})
    steps.fail("scraper", A, TransientError("HTTP 500"), TransientError("HTTP 500"))
    steps.fail("transformer", B, PermanentError("not HTML"))
    run_id = f"run-{uuid.uuid4().hex[:8]}"

    summary = engine_with(steps, runs_table, alert_queue["topic"]).run(
        RunRequest(run_id=run_id, urls=[A, B, C]), budget=Budget(lambda: 900_000),
        continue_run=lambda _: None,
    )

    assert (summary.status, summary.succeeded, summary.failed, summary.flagged) == (
        RunStatus.FAILED_ITEMS, 2, 1, 1
    )
    items = run_items(runs_table, run_id)
    meta = items.pop("META")
    assert (meta["status"], meta["total"], meta["succeeded"], meta["failed"], meta["flagged"]) == (
        "failed-items", 3, 2, 1, 1
    )
    assert meta["engine"] == "orchestrator" and meta["started_at"] and meta["ended_at"]
    assert len(items) == 3 and all(key.startswith("ITEM#") for key in items)
    by_url = {item["url"]: item for item in items.values()}
    assert [(s["step"], s["attempts"]) for s in by_url[A]["steps"]] == [
        ("scraper", 3), ("transformer", 1), ("moderator", 1), ("store", 1), ("alert", 1)
    ]
    assert by_url[B]["status"] == "failed"
    assert by_url[B]["steps"][-1]["error_type"] == "PermanentError"
    assert by_url[B]["outcome"]["failed_step"] == "transformer"


def test_the_recorded_run_reads_back_as_the_same_summary(
    runs_table: str, alert_queue: dict[str, str]
) -> None:
    steps = FakeSteps(verdicts={B: Verdict.REVIEW})
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    summary = engine_with(steps, runs_table, alert_queue["topic"]).run(
        RunRequest(run_id=run_id, urls=[A, B]), budget=Budget(lambda: 900_000),
        continue_run=lambda _: None,
    )

    stored = RunsTable(runs_table).summary(run_id)

    assert stored is not None
    assert stored.model_dump(exclude={"items", "ended_at", "started_at"}) == summary.model_dump(
        exclude={"items", "ended_at", "started_at"}
    )
    assert sorted(item.url for item in stored.items) == [A, B]
    flagged = next(item for item in stored.items if item.url == B)
    assert flagged.record is not None and flagged.record.score == 0.6  # Decimal back to float


def test_flagged_pages_publish_one_alert_each(runs_table: str, alert_queue: dict[str, str]) -> None:
    steps = FakeSteps(verdicts={A: Verdict.BLOCK, B: Verdict.ALLOW, C: Verdict.REVIEW})

    engine_with(steps, runs_table, alert_queue["topic"]).run(
        RunRequest(run_id=f"run-{uuid.uuid4().hex[:8]}", urls=[A, B, C]),
        budget=Budget(lambda: 900_000), continue_run=lambda _: None,
    )

    alerts = received_alerts(alert_queue["queue"])
    assert sorted(alert["Subject"] for alert in alerts) == [
        "baton: page flagged (block)", "baton: page flagged (review)"
    ]
    assert sorted(json.loads(alert["Message"])["url"] for alert in alerts) == [A, C]


def test_a_continued_invocation_skips_items_recorded_as_finished(
    runs_table: str, alert_queue: dict[str, str]
) -> None:
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    first = FakeSteps()
    continued: list[RunRequest] = []
    engine_with(first, runs_table, alert_queue["topic"]).run(
        RunRequest(run_id=run_id, urls=[A, B, C], max_concurrency=1),
        budget=Budget(lambda: 10_000, 60), continue_run=continued.append,  # starts one item only
    )
    second = FakeSteps()

    summary = engine_with(second, runs_table, alert_queue["topic"]).run(
        continued[0], budget=Budget(lambda: 900_000), continue_run=continued.append
    )

    assert first.count("scraper") == 1 and second.count("scraper") == 2
    assert summary.status is RunStatus.SUCCEEDED and summary.succeeded == 3
    assert run_items(runs_table, run_id)["META"]["continuations"] == 1


def test_handler_runs_a_request_and_reinvokes_itself_when_short_of_time(
    runs_table: str, alert_queue: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    for step in STEPS:
        monkeypatch.setenv(step.env_var, f"baton-{step.name}")
    steps = FakeSteps()
    monkeypatch.setattr(handler, "LambdaInvoker", lambda *args, **kwargs: steps)
    reinvoked = recorded_continuations(monkeypatch)
    lambda_context.get_remaining_time_in_millis = lambda: 10_000  # under the 60 s margin

    answer = handler.lambda_handler(
        {"run_id": "run-handler", "urls": [A, B], "max_concurrency": 1}, lambda_context
    )

    assert answer["status"] == "running" and answer["pending"] == 1
    [call] = reinvoked
    assert call["FunctionName"] == lambda_context.function_name
    assert call["InvocationType"] == "Event"
    assert json.loads(call["Payload"])["continuation"] == 1


def test_a_run_too_large_for_a_payload_travels_and_continues_through_s3(
    runs_table: str, alert_queue: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    for step in STEPS:
        monkeypatch.setenv(step.env_var, f"baton-{step.name}")
    bucket = f"baton-data-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    monkeypatch.setenv("BUCKET_NAME", bucket)
    monkeypatch.setattr(handler, "LambdaInvoker", lambda *args, **kwargs: FakeSteps())
    reinvoked = recorded_continuations(monkeypatch)
    lambda_context.get_remaining_time_in_millis = lambda: 10_000  # one item, then continue
    # 10,000 URLs (a run's most): about 390 KB as JSON, over the smallest payload limit.
    large = RunRequest(run_id="run-large", urls=LARGE_URLS, max_concurrency=1)
    requests = RequestStore(bucket, boto3.client("s3"))
    payload = requests.payload(large)
    assert len(payload) < 1000

    answer = handler.lambda_handler(json.loads(payload), lambda_context)

    assert (answer["total"], answer["succeeded"], answer["pending"]) == (10_000, 1, 9_999)
    [call] = reinvoked
    assert len(call["Payload"]) < 1000  # the continuation points to the same stored request
    continued = requests.request(json.loads(call["Payload"]))
    assert continued.continuation == 1 and continued.urls == large.urls


def test_a_large_request_is_written_once_whoever_hands_it_on(aws: None) -> None:
    bucket = f"baton-data-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    puts: list[str] = []
    s3.meta.events.register("before-parameter-build.s3.PutObject",
                            lambda params, **_: puts.append(params["Key"]))
    large = RunRequest(run_id="run-large", urls=LARGE_URLS)

    starter = RequestStore(bucket, s3)
    starter.keep(large)  # every start keeps the request ...
    pointer = json.loads(starter.payload(large))  # ... so handing it over writes nothing more
    orchestrator = RequestStore(bucket, s3)  # the next invocation reads it back ...
    arrived = orchestrator.request(pointer)
    orchestrator.payload(arrived.model_copy(update={"continuation": 1}))  # ... and continues

    assert puts == ["runs/run-large/request.json"]
    # A large request that came inline (a direct invoke) is written before it is pointed to.
    inline = RequestStore(bucket, s3)
    inline.payload(RunRequest(run_id="run-inline", urls=LARGE_URLS))
    assert puts[1:] == ["runs/run-inline/request.json"]


def test_a_small_run_travels_inline_and_a_large_one_needs_a_bucket() -> None:
    small = RunRequest(run_id="run-small", urls=[A, B])
    assert RequestStore(None, client=None).payload(small) == small.model_dump_json().encode()
    large = RunRequest(run_id="run-large", urls=LARGE_URLS)
    with pytest.raises(ValueError, match="over the 204800-byte payload limit"):
        RequestStore(None, client=None).payload(large)


def recorded_continuations(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The orchestrator's re-invocations of itself, recorded instead of sent."""
    reinvoked: list[dict[str, Any]] = []
    shared_client = aws.client

    def client(service: str, profile: aws.Profile = aws.DEFAULT, **options: Any) -> Any:
        if (service, profile) == ("lambda", aws.CONTINUATION):  # the continuation's own profile
            return _Recorder(reinvoked)
        return shared_client(service, profile, **options)

    monkeypatch.setattr(aws, "client", client)
    return reinvoked


class _Recorder:
    def __init__(self, calls: list[dict[str, Any]]) -> None:
        self.calls = calls

    def invoke(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        return {"StatusCode": 202}


def test_template_declares_the_runs_table_with_this_schema() -> None:
    """Drift guard for when template.yaml gains RunsTable (skipped until it does)."""
    if "RunsTable:" not in TEMPLATE.read_text():
        pytest.skip("template.yaml does not declare RunsTable yet")
    assert table_properties("RunsTable") == RUNS_TABLE_SCHEMA


# ---- claims: a redelivered invocation or item does nothing twice -------------------------------

def test_a_continuation_is_claimed_once_until_its_lease_expires(runs_table: str) -> None:
    runs, now = RunsTable(runs_table), datetime.now(UTC)
    lease = now + timedelta(minutes=15)
    runs.open_run("run-c", engine="orchestrator", total=1, started_at=now, continuation=0,
                  lease_until=lease)

    with pytest.raises(RunClaimed):  # a duplicate while the first holds it
        runs.open_run("run-c", engine="orchestrator", total=1, started_at=now, continuation=0,
                      lease_until=lease)
    # the next continuation, and a retry once the holder's lease is over, may take it
    runs.open_run("run-c", engine="orchestrator", total=1, started_at=now, continuation=1,
                  lease_until=lease)
    runs.open_run("run-c", engine="orchestrator", total=1, started_at=lease + timedelta(seconds=1),
                  continuation=1, lease_until=lease + timedelta(minutes=15))
    with pytest.raises(RunClaimed):  # an older continuation, late
        runs.open_run("run-c", engine="orchestrator", total=1, started_at=now, continuation=0,
                      lease_until=lease)


def test_an_item_with_an_outcome_is_never_started_again(runs_table: str) -> None:
    runs, now = RunsTable(runs_table), datetime.now(UTC)
    assert runs.item_started("run-i", A, now) is True
    assert runs.claim_alert("run-i", A) is True
    assert runs.item_started("run-i", A, now) is True  # restarted: still running
    assert runs.claim_alert("run-i", A) is False  # ...and its alert is still taken
    runs.item_finished(ItemOutcome(run_id="run-i", url=A, succeeded=True), now)

    assert runs.item_started("run-i", A, now) is False
    assert [item.succeeded for item in runs.finished_items("run-i").values()] == [True]
    runs.release_alert("run-i", A)
    assert runs.claim_alert("run-i", A) is True


class CountingRunsTable(RunsTable):
    """RunsTable noting the sort key of each item it updates."""

    def __init__(self, table_name: str) -> None:
        super().__init__(table_name)
        self.updated: list[str] = []

    def _update(self, run_id: str, sort_key: str, *args: Any, **kwargs: Any) -> Any:
        self.updated.append(sort_key)
        return super()._update(run_id, sort_key, *args, **kwargs)


def test_an_item_ended_by_its_first_step_is_recorded_whole_in_one_write(
    runs_table: str, alert_queue: dict[str, str]
) -> None:
    # An earlier invocation left A running with two steps; this one's scraper ends it (304).
    run_id, earlier = f"run-{uuid.uuid4().hex[:8]}", datetime.now(UTC) - timedelta(minutes=5)
    runs = CountingRunsTable(runs_table)
    runs.item_started(run_id, A, earlier)
    for name in ("scraper", "transformer"):
        runs.step_finished(run_id, A, StepRecord(step=name, started_at=earlier, ended_at=earlier,
                                                 attempts=1))
    runs.updated.clear()
    engine = Engine(invoke=FakeSteps(not_modified={A}), runs=runs,
                    alerts=FlaggedPageAlerts(SnsAlerts(alert_queue["topic"])))

    summary = engine.run(RunRequest(run_id=run_id, urls=[A]), budget=Budget(lambda: 900_000),
                         continue_run=lambda _: None)

    assert summary.succeeded == 1
    item = next(value for key, value in run_items(runs_table, run_id).items() if key != "META")
    assert (item["url"], item["status"]) == (A, "succeeded")
    assert item["started_at"] > earlier.isoformat()  # this attempt's start, not the earlier one's
    assert [step["step"] for step in item["steps"]] == ["scraper"]  # the earlier steps replaced
    # Start, scraper record and outcome in one write (the others are the run's, on META).
    assert [key for key in runs.updated if key != "META"] == [item_key(A)]
