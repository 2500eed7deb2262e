"""`baton run --engine choreography` and `baton executions`/`history` over the runs table, in moto.

The stack's outputs and the CLI's clients are replaced by moto's; the tracker's side of a run is
``RunsTable.record``, as the tracker Lambda calls it.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from baton import executions, run
from baton.errors import BatonError
from engines.client import ChoreographyClient, Deployment
from engines.events import CHAIN_STEP_LOG, PAGE_FAILED, PAGE_REQUESTED, ChainStep
from engines.runs import RunsTable
from pipeline.models import ItemOutcome, RunRequest, RunStatus, Validators
from tests.integration.conftest import table_properties

A, B = "http://a.test/", "http://b.test/"
STARTED = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.fixture
def stack(aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A runs table, an event bus with a queue behind PageRequested, a state machine: the outputs."""
    suffix = uuid.uuid4().hex[:8]
    dynamodb, events, sqs = boto3.client("dynamodb"), boto3.client("events"), boto3.client("sqs")
    table = f"baton-runs-{suffix}"
    dynamodb.create_table(TableName=table, **table_properties("RunsTable"))
    bus = f"baton-bus-{suffix}"
    events.create_event_bus(Name=bus)
    queue = sqs.create_queue(QueueName=f"requested-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    events.put_rule(Name="requested", EventBusName=bus,
                    EventPattern=json.dumps({"detail-type": [PAGE_REQUESTED]}))
    events.put_targets(Rule="requested", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    machine = boto3.client("stepfunctions").create_state_machine(
        name=f"pipeline-{suffix}", roleArn="arn:aws:iam::123456789012:role/pipeline",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
    )["stateMachineArn"]
    boto3.client("s3").create_bucket(Bucket=table)  # where each run's request is kept
    outputs = {"RunsTableName": table, "EventBusName": bus, "PipelineStateMachineArn": machine,
               "RequestedQueueUrl": queue, "DataBucketName": table}
    monkeypatch.setattr("baton.deploy.stack_outputs", lambda target, stack: outputs)
    for module in ("baton.run.client", "baton.executions.client"):
        monkeypatch.setattr(module, lambda service, target="local": boto3.client(service))
    return outputs


def requested_events(queue_url: str) -> list[dict[str, Any]]:
    answer = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    return [json.loads(message["Body"]) for message in answer.get("Messages", [])]


def open_run(table: str, run_id: str, engine: str, total: int, started_at: datetime) -> None:
    RunsTable(table).open_run(run_id, engine=engine, total=total, started_at=started_at,
                              continuation=0)


def test_the_choreography_engine_opens_the_run_and_requests_every_page(stack):
    request = RunRequest(run_id="run-choreo-1", urls=[A, B], previous={A: Validators(etag='"v1"')})

    handle = run.run("choreography", "local", "baton", request, wait=False)

    assert handle == request.run_id
    summary = RunsTable(stack["RunsTableName"]).summary(request.run_id)
    assert summary is not None
    assert (summary.engine, summary.status, summary.total) == ("choreography", RunStatus.RUNNING, 2)
    sent = {event["detail"]["data"]["url"]: event["detail"]["data"]
            for event in requested_events(stack["RequestedQueueUrl"])}
    assert set(sent) == {A, B}
    assert sent[A]["etag"] == '"v1"'


def test_a_choreographed_run_is_followed_through_the_runs_table_until_it_ends(stack):
    request = RunRequest(run_id="run-choreo-2", urls=[A, B])
    engine = ChoreographyClient(Deployment.from_outputs(stack), boto3.client)
    engine.start(request)
    table = RunsTable(stack["RunsTableName"])

    table.record(ItemOutcome(run_id=request.run_id, url=A, succeeded=True), STARTED)
    progress, summary = engine.poll(request.run_id, request)
    assert (progress.total, progress.done, summary) == (2, 1, None)

    table.record(ItemOutcome(run_id=request.run_id, url=B, succeeded=False,
                             error_type="PermanentError", error="HTTP 404",
                             failed_step="scraper"), STARTED)
    progress, summary = engine.poll(request.run_id, request)
    assert (progress.done, progress.failed) == (2, 1)
    assert summary is not None and summary.status is RunStatus.FAILED_ITEMS


def test_runs_table_runs_are_listed_under_their_own_engine(stack):
    table = stack["RunsTableName"]
    open_run(table, "run-orch", "orchestrator", 1, STARTED)
    open_run(table, "run-choreo", "choreography", 2, STARTED + timedelta(minutes=1))
    listing = executions.Executions("local", "baton")

    assert [(e.run_id, e.engine) for e in listing.recent()] == [
        ("run-choreo", "choreography"), ("run-orch", "orchestrator")]
    assert [e.run_id for e in listing.recent("choreography")] == ["run-choreo"]
    assert [e.run_id for e in listing.recent("orchestrator")] == ["run-orch"]


def test_the_history_of_a_choreographed_run_is_its_items_ends(stack, monkeypatch):
    monkeypatch.setattr("baton.executions.function_names", lambda target, stack: {})  # no logs
    table = RunsTable(stack["RunsTableName"])
    open_run(stack["RunsTableName"], "run-choreo", "choreography", 2, STARTED)
    table.record(ItemOutcome(run_id="run-choreo", url=B, succeeded=False, attempts=3,
                             error_type="TransientError", error="HTTP 503",
                             failed_step="scraper"), STARTED + timedelta(seconds=2))
    table.record(ItemOutcome(run_id="run-choreo", url=A, succeeded=True),
                 STARTED + timedelta(seconds=1))

    engine, rows = executions.Executions("local", "baton").history("run-choreo")

    assert engine == "choreography"
    assert [(row.item, row.step, row.event) for row in rows] == [
        (A, "scraper", "succeeded"), (B, "scraper", "failed")]
    assert rows[1].detail == "attempts 3; TransientError: HTTP 503"


def test_the_history_of_an_unknown_run_says_so(stack):
    with pytest.raises(BatonError, match="no run 'never-ran'"):
        executions.Executions("local", "baton").history("never-ran")


def test_a_run_whose_invocation_is_gone_is_listed_as_interrupted_and_a_redrive_as_such(stack):
    table = RunsTable(stack["RunsTableName"])
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    table.open_run("run-died", engine="orchestrator", total=2, started_at=long_ago,
                   continuation=0, lease_until=long_ago + timedelta(minutes=15))
    table.open_run("run-live", engine="orchestrator", total=2, started_at=datetime.now(UTC),
                   continuation=0, lease_until=datetime.now(UTC) + timedelta(minutes=15))
    open_run(stack["RunsTableName"], "run-again", "choreography", 1, STARTED)
    table.reopen("run-again", ["http://a.test/"], STARTED)

    listed = {e.run_id: e for e in executions.Executions("local", "baton").recent(engine=None)}

    assert listed["run-died"].status == "interrupted"
    assert listed["run-live"].status == "running"
    assert listed["run-again"].detail.endswith("redriven 1x")


def test_the_history_of_a_choreographed_run_has_each_event_its_steps_logged(stack, monkeypatch):
    monkeypatch.setattr("baton.executions.function_names",
                        lambda target, stack: {"ScraperFunction": "scraper"})
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/scraper")
    logs.create_log_stream(logGroupName="/aws/lambda/scraper", logStreamName="s")
    handled = ChainStep(run_id="run-choreo", url=A, step="scraper", consumed=PAGE_REQUESTED,
                        published_at=STARTED, delivered_at=STARTED + timedelta(milliseconds=20),
                        ended_at=STARTED + timedelta(milliseconds=500), attempts=1,
                        emitted=PAGE_FAILED, error_type="PermanentError", error="HTTP 404")
    lines = [{"message": CHAIN_STEP_LOG, "correlation_id": run_id,
              "chain_step": handled.model_copy(update={"run_id": run_id}).model_dump(mode="json")}
             for run_id in ("run-choreo", "run-other")]
    logs.put_log_events(logGroupName="/aws/lambda/scraper", logStreamName="s", logEvents=[
        {"timestamp": int(STARTED.timestamp() * 1000), "message": json.dumps(line)}
        for line in lines])
    open_run(stack["RunsTableName"], "run-choreo", "choreography", 1, STARTED)
    RunsTable(stack["RunsTableName"]).record(
        ItemOutcome(run_id="run-choreo", url=A, succeeded=False, attempts=1,
                    error_type="PermanentError", error="HTTP 404", failed_step="scraper"),
        STARTED + timedelta(seconds=1))

    engine, rows = executions.Executions("local", "baton").history("run-choreo")

    assert engine == "choreography"
    assert [(row.item, row.step, row.event) for row in rows] == [
        (A, "scraper", f"{PAGE_REQUESTED} delivered"), (A, "scraper", f"{PAGE_FAILED} published"),
        (A, "scraper", "failed")]
