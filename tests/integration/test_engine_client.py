"""The Step Functions engine through the one engine client, its runs table in moto: the run is
opened before the execution starts, each item's end is recorded by the tracker (simulated here as
the state machine's Record outcome would invoke it), and the run is followed in the table."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from engines.client import (
    Deployment,
    EngineClient,
    EngineFailed,
    RunIncomplete,
    StepFunctionsClient,
    follow,
)
from engines.runs import RunsTable
from pipeline.models import ItemOutcome, RunRequest, RunSummary, Validators
from tests.integration.conftest import table_properties

A, B = "http://site.test/pages/a", "http://site.test/pages/b"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.fixture
def runs_table(aws: None) -> str:
    """A runs table, and a data bucket of the same name (where each run's request is kept)."""
    name = f"baton-runs-{uuid.uuid4().hex[:12]}"
    boto3.client("dynamodb").create_table(TableName=name, **table_properties("RunsTable"))
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def request(run_id: str = "sfn-1", urls: list[str] | None = None) -> RunRequest:
    return RunRequest(run_id=run_id, urls=urls or [A, B], previous={A: Validators(etag='"v1"')},
                      alert_flagged=False)


def failed_task(url: str) -> dict[str, Any]:
    return {"type": "TaskFailed", "taskFailedEventDetails": {
        "error": "TransientError", "cause": json.dumps({"errorMessage": f"{url} answered 500"})}}


@dataclass
class FakeStepFunctions:
    """A state machine whose execution runs while the follower sleeps: its items' ends are
    recorded in the runs table as the tracker records them."""

    runs: RunsTable
    statuses: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)
    started: list[dict[str, Any]] = field(default_factory=list)

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.started.append(kwargs)
        return {"executionArn": f"arn:aws:states:us-east-1:1:execution:pipeline:{kwargs['name']}"}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"status": status, "startDate": NOW, "error": "States.Runtime", "cause": "boom"}

    def get_execution_history(self, **_: Any) -> dict[str, Any]:
        return {"events": self.history}

    def list_map_runs(self, **_: Any) -> dict[str, Any]:
        return {"mapRuns": []}  # the attempts of this fake's items are in its own history

    def run_items(self, _seconds: float) -> None:
        """The execution's work, done while the client sleeps between polls: the items its
        Distributed Map reads from the data bucket."""
        run_id = self.started[-1]["name"]
        for item in items_of(self.started[-1]):
            self.runs.record(ItemOutcome(run_id=run_id, url=item["url"], succeeded=True), NOW)


def items_of(started: dict[str, Any]) -> list[dict[str, Any]]:
    """The items an execution's input points to, as its ItemReader reads them."""
    where = json.loads(started["input"])["items"]
    body = boto3.client("s3").get_object(Bucket=where["bucket"], Key=where["key"])["Body"]
    items: list[dict[str, Any]] = json.loads(body.read())
    return items


def client_over(runs_table: str, sfn: FakeStepFunctions) -> StepFunctionsClient:
    clients = {"stepfunctions": sfn, "dynamodb": boto3.client("dynamodb"), "s3": boto3.client("s3")}
    deployment = Deployment(state_machine_arn="arn:sm", runs_table_name=runs_table,
                            data_bucket_name=runs_table)
    return StepFunctionsClient(deployment, clients.__getitem__)


def run_to_end(client: EngineClient, run: RunRequest, *, expired: Callable[[], bool],
               poll_seconds: float = 2.0, sleep: Callable[[float], None]) -> RunSummary:
    """Start ``run`` and follow it to its summary, as `baton run` and the monitor do."""
    return follow(client, client.start(run), run, expired=expired, poll_seconds=poll_seconds,
                  sleep=sleep)


def test_a_run_is_opened_started_and_followed_in_the_runs_table(runs_table: str) -> None:
    runs = RunsTable(runs_table)
    sfn = FakeStepFunctions(runs, ["RUNNING", "SUCCEEDED"], history=[failed_task(B)])

    summary = run_to_end(client_over(runs_table, sfn), request(), expired=lambda: False,
                         poll_seconds=0.5, sleep=sfn.run_items)

    assert (summary.engine, summary.total, summary.succeeded, summary.pending) == (
        "stepfunctions", 2, 2, 0)
    assert {item.url: item.attempts for item in summary.items} == {A: 1, B: 2}  # from history
    (start,) = sfn.started
    sent = json.loads(start["input"])
    assert start["name"] == "sfn-1" and not sent["alert_flagged"]
    assert sent["items"] == {"bucket": runs_table, "key": "runs/sfn-1/items/sfn-1.json"}
    assert [item["previous"] for item in items_of(start)] == [
        {"etag": '"v1"', "last_modified": None}, {"etag": None, "last_modified": None}]
    assert runs.summary("sfn-1") is not None


def test_a_failed_execution_fails_the_run(runs_table: str) -> None:
    sfn = FakeStepFunctions(RunsTable(runs_table), ["FAILED"])

    with pytest.raises(EngineFailed, match=r"FAILED: States\.Runtime boom"):
        run_to_end(client_over(runs_table, sfn), request("sfn-2"), expired=lambda: False,
                   sleep=lambda _: None)


def test_an_execution_still_running_at_the_deadline_is_incomplete(runs_table: str) -> None:
    sfn = FakeStepFunctions(RunsTable(runs_table), ["RUNNING"])

    with pytest.raises(RunIncomplete, match="sfn-3 is still running"):
        run_to_end(client_over(runs_table, sfn), request("sfn-3"), expired=lambda: True,
                   sleep=lambda _: None)


def test_a_run_of_any_size_starts_with_a_small_input_its_items_in_the_data_bucket(
        runs_table: str) -> None:
    sfn = FakeStepFunctions(RunsTable(runs_table), ["RUNNING"])
    many = [f"http://site.example/articles/{n:05d}-with-a-longer-path" for n in range(10_000)]

    client_over(runs_table, sfn).start(request("sfn-4", many))

    (start,) = sfn.started
    assert len(start["input"]) < 512  # Step Functions takes 256 KiB; the URLs alone are ~490 KB
    assert [item["url"] for item in items_of(start)] == many
    assert RunsTable(runs_table).summary("sfn-4") is not None


def test_a_redrive_maps_over_its_own_items(runs_table: str) -> None:
    sfn = FakeStepFunctions(RunsTable(runs_table), ["RUNNING"])
    client = client_over(runs_table, sfn)
    client.start(request("sfn-5"))

    client.restart(request("sfn-5"), [B], 1)

    first, redrive = sfn.started
    assert redrive["name"] == "sfn-5-redrive-1"
    assert [item["url"] for item in items_of(first)] == [A, B]
    assert [item["url"] for item in items_of(redrive)] == [B]


@dataclass
class FakeMapWithAFailedItem(FakeStepFunctions):
    """An execution whose Map's iteration for B failed after B's outcome was recorded (its
    alert could not be sent): the Map, then the execution, fail."""

    CHILD = "arn:aws:states:us-east-1:1:execution:pipeline/Pages:b"

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        if executionArn == self.CHILD:
            return {"status": "FAILED", "input": json.dumps({"url": B}), "error": "PermanentError",
                    "cause": json.dumps({"errorMessage": "publishing to the alert topic: NotFound"})}
        return {**super().describe_execution(executionArn),
                "error": "States.ExceedToleratedFailureThreshold", "cause": "threshold exceeded"}

    def list_map_runs(self, **_: Any) -> dict[str, Any]:
        return {"mapRuns": [{"mapRunArn": "arn:maprun"}]}

    def list_executions(self, **_: Any) -> dict[str, Any]:
        return {"executions": [
            {"executionArn": self.CHILD, "status": "FAILED", "startDate": NOW},
            {"executionArn": self.CHILD[:-1] + "a", "status": "SUCCEEDED", "startDate": NOW}]}


def test_a_run_whose_items_are_all_recorded_ends_only_with_its_execution(runs_table: str) -> None:
    # every item recorded at the first sleep, the execution still running, then failed
    sfn = FakeMapWithAFailedItem(RunsTable(runs_table), ["RUNNING", "RUNNING", "FAILED"])

    with pytest.raises(EngineFailed) as failure:
        run_to_end(client_over(runs_table, sfn), request("sfn-5"), expired=lambda: False,
                   poll_seconds=0.5, sleep=sfn.run_items)

    lines = str(failure.value).splitlines()
    assert lines[0].endswith("ended FAILED: States.ExceedToleratedFailureThreshold threshold exceeded")
    assert lines[1:] == [f"  {B}: PermanentError: "
                         '{"errorMessage": "publishing to the alert topic: NotFound"}']
