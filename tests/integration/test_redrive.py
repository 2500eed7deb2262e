"""`baton redrive`'s engine side in moto: a run's failed and unfinished items are taken back
(counts included) and run again under the same run id; stored and permanently failed items stay."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from engines.client import Deployment, EngineFailed, redrive
from engines.handoff import RequestStore
from engines.runs import RunsTable
from pipeline.keys import url_id
from pipeline.models import ItemOutcome, RunRequest, RunStatus
from tests.choreography_fakes import FakeEventsClient
from tests.integration.conftest import table_properties

STORED, FLAKY, GONE, NEVER = (f"http://site.test/pages/{name}"
                              for name in ("stored", "flaky", "gone", "never"))
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@pytest.fixture
def deployment(aws: None) -> Deployment:
    suffix = uuid.uuid4().hex[:8]
    table, bucket = f"baton-runs-{suffix}", f"baton-data-{suffix}"
    boto3.client("dynamodb").create_table(TableName=table, **table_properties("RunsTable"))
    boto3.client("s3").create_bucket(Bucket=bucket)
    return Deployment(orchestrator_function="orch", state_machine_arn="arn:sm",
                      runs_table_name=table, event_bus_name="bus", data_bucket_name=bucket)


@dataclass
class Invokes:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"StatusCode": 202}


def ended_run(deployment: Deployment, engine: str, *, counted: bool) -> RunRequest:
    """A run of four items that ended: one stored, one failed transiently, one failed for good,
    one that never ended (its invocation died); its request kept as every start keeps it."""
    request = RunRequest(run_id=f"run-{uuid.uuid4().hex[:6]}", urls=[STORED, FLAKY, GONE, NEVER])
    RequestStore(deployment.data_bucket_name, boto3.client("s3")).keep(request)
    runs = RunsTable(str(deployment.runs_table_name))
    runs.open_run(request.run_id, engine=engine, total=4, started_at=NOW, continuation=0,
                  lease_until=NOW + timedelta(minutes=15))
    outcomes = [ItemOutcome(run_id=request.run_id, url=STORED, succeeded=True),
                ItemOutcome(run_id=request.run_id, url=FLAKY, succeeded=False,
                            error_type="TransientError", error="HTTP 503", failed_step="scraper"),
                ItemOutcome(run_id=request.run_id, url=GONE, succeeded=False,
                            error_type="PermanentError", error="HTTP 404", failed_step="scraper")]
    for outcome in outcomes:
        if counted:
            runs.record(outcome, NOW)
        else:
            runs.item_started(request.run_id, outcome.url, NOW)
            runs.item_finished(outcome, NOW)
    if not counted:  # the orchestrator adds its recorded ends to the progress in batches
        runs.add_progress(request.run_id, len(outcomes), 2)
    return request


def test_an_orchestrated_run_is_redriven_as_its_next_continuation(deployment: Deployment) -> None:
    request = ended_run(deployment, "orchestrator", counted=False)
    lambdas = Invokes()
    clients = {"lambda": lambdas, "dynamodb": boto3.client("dynamodb"),
               "s3": boto3.client("s3")}.__getitem__

    runs = RunsTable(str(deployment.runs_table_name))
    progress = runs.progress(request.run_id)
    assert progress is not None and progress[1:] == (3, 2)  # ended, failed: from META alone
    with pytest.raises(EngineFailed, match="still running"):  # its holder's lease still runs
        redrive(request.run_id, deployment, clients, now=lambda: NOW + timedelta(minutes=1))
    started = redrive(request.run_id, deployment, clients, now=lambda: NOW + timedelta(hours=1))

    assert started is not None and (started.urls, started.number) == ([FLAKY, NEVER], 1)
    (call,) = lambdas.calls
    sent = RunRequest.model_validate_json(call["Payload"])
    assert sent.urls == request.urls and sent.continuation == 1  # past the claimed continuation
    progress = runs.progress(request.run_id)
    assert progress is not None and progress[1:] == (2, 1)  # FLAKY's end taken back
    left = {item.url: item.succeeded for item in runs.finished_items(request.run_id).values()}
    assert left == {STORED: True, GONE: False}  # the stored and the final failure stay
    summary = runs.summary(request.run_id)
    assert summary is not None and summary.status is RunStatus.RUNNING and summary.pending == 2


def test_a_choreographed_run_takes_back_its_counts_and_ends_again(deployment: Deployment) -> None:
    request = ended_run(deployment, "choreography", counted=True)
    runs = RunsTable(str(deployment.runs_table_name))
    runs.record(ItemOutcome(run_id=request.run_id, url=NEVER, succeeded=False,
                            error_type="RunTooLong", error="not started"), NOW)
    ended = runs.summary(request.run_id)
    assert ended is not None and ended.ended_at is not None  # all four ended once
    events = boto3.client("events")
    events.create_event_bus(Name="bus")
    clients = {"events": events, "dynamodb": boto3.client("dynamodb"),
               "s3": boto3.client("s3")}.__getitem__

    started = redrive(request.run_id, deployment, clients, now=lambda: NOW)

    assert started is not None and started.urls == [FLAKY, NEVER]
    meta = runs.meta(request.run_id) or {}
    assert (meta["finished"], meta["failed"], meta["redrives"], meta["status"]) == (
        2, 1, 1, "running")
    for url in (FLAKY, NEVER):  # the tracker records the redone items' ends
        runs.record(ItemOutcome(run_id=request.run_id, url=url, succeeded=True), NOW)
    again = runs.summary(request.run_id)
    assert again is not None and again.ended_at is not None
    assert (again.succeeded, again.failed, again.status) == (3, 1, RunStatus.FAILED_ITEMS)
    assert redrive(request.run_id, deployment, clients) is None  # nothing left but GONE


def test_a_run_that_does_not_exist_or_kept_no_request_is_a_clear_error(
        deployment: Deployment) -> None:
    clients = {"dynamodb": boto3.client("dynamodb"), "s3": boto3.client("s3")}.__getitem__
    with pytest.raises(EngineFailed, match="no run 'nope'"):
        redrive("nope", deployment, clients)
    RunsTable(str(deployment.runs_table_name)).open_run(
        "old-run", engine="choreography", total=1, started_at=NOW, continuation=0)
    with pytest.raises(EngineFailed, match="request was not kept"):
        redrive("old-run", deployment, clients)


def test_a_stored_item_is_never_taken_back(deployment: Deployment) -> None:
    request = ended_run(deployment, "orchestrator", counted=False)

    assert RunsTable(str(deployment.runs_table_name)).reopen(
        request.run_id, [STORED, FLAKY], NOW)[1] == [FLAKY]
    left = RunsTable(str(deployment.runs_table_name)).finished_items(request.run_id)
    assert [item.url for item in left.values() if item.succeeded] == [STORED]


def test_a_run_started_before_the_cloud_restarted_is_redriven_though_its_lease_runs(
        deployment: Deployment) -> None:
    request = ended_run(deployment, "orchestrator", counted=False)
    clients = {"lambda": Invokes(), "dynamodb": boto3.client("dynamodb"),
               "s3": boto3.client("s3")}.__getitem__
    in_lease = NOW + timedelta(minutes=1)

    with pytest.raises(EngineFailed, match="still running"):  # the same cloud: its holder may run
        redrive(request.run_id, deployment, clients, now=lambda: in_lease,
                cloud_started_at=NOW - timedelta(hours=1))
    started = redrive(request.run_id, deployment, clients, now=lambda: in_lease,
                      cloud_started_at=NOW + timedelta(seconds=30))

    assert started is not None and started.urls == [FLAKY, NEVER]


def test_a_stale_end_of_an_item_before_its_redrive_does_not_end_the_redone_item(
        deployment: Deployment) -> None:
    request = ended_run(deployment, "choreography", counted=True)
    runs = RunsTable(str(deployment.runs_table_name))
    events = boto3.client("events")
    events.create_event_bus(Name="bus")
    clients = {"events": events, "dynamodb": boto3.client("dynamodb"),
               "s3": boto3.client("s3")}.__getitem__
    redriven_at = NOW + timedelta(minutes=5)
    redrive(request.run_id, deployment, clients, now=lambda: redriven_at, force=True)
    # A dead letter of NEVER's first attempt (asked for at the run's start) arrives late.
    stale = ItemOutcome(run_id=request.run_id, url=NEVER, succeeded=False,
                        error_type="Runtime.HandlerError", error="Worker process died")

    assert not runs.record(stale, redriven_at, requested_at=NOW)
    assert runs.record(ItemOutcome(run_id=request.run_id, url=NEVER, succeeded=True), redriven_at,
                       requested_at=redriven_at + timedelta(seconds=1))
    assert runs.finished_items(request.run_id)[url_id(NEVER)].succeeded


class TwinStoresFirst:
    """A DynamoDB client on which, just before the redrive's first take-back, a duplicated
    event's twin stores the flaky item (its success replacing the failure the redrive read)."""

    def __init__(self, run_id: str) -> None:
        self.client, self.run_id, self.raced = boto3.client("dynamodb"), run_id, False

    def transact_write_items(self, **request: Any) -> Any:
        if not self.raced:
            self.raced = True
            runs = RunsTable(str(request["TransactItems"][0]["Update"]["TableName"]), self.client)
            assert runs.record(ItemOutcome(run_id=self.run_id, url=FLAKY, succeeded=True), NOW)
        return self.client.transact_write_items(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_an_item_stored_while_the_redrive_takes_it_back_is_left_stored(
        deployment: Deployment) -> None:
    request = ended_run(deployment, "choreography", counted=True)
    events = FakeEventsClient()
    clients = {"events": events, "dynamodb": TwinStoresFirst(request.run_id),
               "s3": boto3.client("s3")}.__getitem__

    started = redrive(request.run_id, deployment, clients, force=True)  # NEVER's carrier died

    assert started is not None and started.urls == [NEVER]
    assert [json.loads(entry["Detail"])["metadata"]["url"]
            for call in events.calls for entry in call] == [NEVER]
    runs = RunsTable(str(deployment.runs_table_name))
    ended = runs.finished_items(request.run_id)
    assert ended[url_id(FLAKY)].succeeded and url_id(NEVER) not in ended
    meta = runs.meta(request.run_id)
    assert meta is not None
    assert (meta["succeeded"], meta["failed"], meta["finished"], meta["status"]) == (
        2, 1, 3, RunStatus.RUNNING.value)
