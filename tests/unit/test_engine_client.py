"""One engine client for the CLI and the monitor: start, follow and summarise a run of any engine,
over fake AWS clients."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from engines.client import (
    START_TIMEOUT_S,
    Deployment,
    EngineFailed,
    OrchestratorClient,
    RunIncomplete,
    Runner,
    StepFunctionsClient,
    engine_client,
    error_message,
    with_attempts,
)
from pipeline.models import ItemOutcome, RunRequest, Validators
from pipeline.steps import ENGINES

A, B = "http://site.test/pages/a", "http://site.test/pages/b"
REQUEST = RunRequest(run_id="monitor-1", urls=[A, B], previous={A: Validators(etag='"v1"')},
                     alert_flagged=False)
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
EVERYTHING = Deployment(orchestrator_function="orch", state_machine_arn="arn:sm",
                        runs_table_name="runs", event_bus_name="bus", data_bucket_name="data")


def outcomes() -> list[ItemOutcome]:
    return [ItemOutcome(run_id="monitor-1", url=url, succeeded=True) for url in (A, B)]


@dataclass
class FakeStepFunctions:
    statuses: list[str]
    output: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    started: list[dict[str, Any]] = field(default_factory=list)

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.started.append(kwargs)
        return {"executionArn": "arn:aws:states:us-east-1:1:execution:pipeline:monitor-1"}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        status = self.statuses.pop(0)
        answer: dict[str, Any] = {"status": status, "startDate": NOW}
        if status == "SUCCEEDED":
            answer.update(output=json.dumps(self.output), stopDate=NOW)
        if status == "FAILED":
            answer.update(error="States.Runtime", cause="boom")
        return answer

    def get_execution_history(self, **_: Any) -> dict[str, Any]:
        return {"events": self.history}


def sfn_runner(client: FakeStepFunctions, sleep: Any = lambda _: None) -> Runner:
    return Runner(StepFunctionsClient(EVERYTHING, lambda service: client), poll_seconds=0.5,
                  sleep=sleep)


def test_a_step_functions_run_is_polled_to_its_output() -> None:
    output = {"run_id": "monitor-1", "engine": "stepfunctions", "total": 2,
              "items": [item.model_dump(mode="json", exclude_none=True) for item in outcomes()]}
    client = FakeStepFunctions(["RUNNING", "RUNNING", "SUCCEEDED"], output)
    sleeps: list[float] = []

    summary = sfn_runner(client, sleeps.append).run(REQUEST, expired=lambda: False)

    assert (summary.engine, summary.total, summary.succeeded) == ("stepfunctions", 2, 2)
    assert sleeps == [0.5, 0.5]
    (start,) = client.started
    assert start["name"] == "monitor-1"
    sent = json.loads(start["input"])
    assert "continuation" not in sent and "previous" not in sent and not sent["alert_flagged"]
    # the validators as a list aligned with the URLs, for the state machine's Map
    assert sent["urls"] == [A, B]
    assert sent["validators"] == [{"etag": '"v1"', "last_modified": None},
                                  {"etag": None, "last_modified": None}]


def test_a_failed_execution_fails_the_run() -> None:
    with pytest.raises(EngineFailed, match=r"FAILED: States\.Runtime boom"):
        sfn_runner(FakeStepFunctions(["FAILED"])).run(REQUEST, expired=lambda: False)


def test_an_execution_still_running_at_the_deadline_is_incomplete() -> None:
    with pytest.raises(RunIncomplete, match="monitor-1 is still running"):
        sfn_runner(FakeStepFunctions(["RUNNING"])).run(REQUEST, expired=lambda: True)


@dataclass
class FakeLambda:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"StatusCode": 202}


class EmptyTable:
    """A runs table in which the run never appears."""

    def query(self, **_: Any) -> dict[str, Any]:
        return {"Items": []}

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {}


def test_the_orchestrator_is_started_asynchronously_with_the_whole_request() -> None:
    lambdas = FakeLambda()
    client = OrchestratorClient(EVERYTHING, {"lambda": lambdas, "dynamodb": EmptyTable(),
                                             "s3": None}.__getitem__)

    assert client.start(REQUEST) == "monitor-1"
    (call,) = lambdas.calls
    assert (call["FunctionName"], call["InvocationType"]) == ("orch", "Event")
    assert RunRequest.model_validate_json(call["Payload"]) == REQUEST


def test_a_run_the_orchestrator_never_opens_fails_after_the_start_timeout() -> None:
    now = [0.0]
    client = OrchestratorClient(EVERYTHING, {"lambda": FakeLambda(), "dynamodb": EmptyTable(),
                                             "s3": None}
                                .__getitem__, clock=lambda: now[0])
    client.start(REQUEST)

    progress, summary = client.poll("monitor-1", REQUEST)
    assert (progress.current, summary) == ("starting", None)
    now[0] = START_TIMEOUT_S + 1
    with pytest.raises(EngineFailed, match="did not start run monitor-1 within 60 s"):
        client.poll("monitor-1", REQUEST)


@pytest.mark.parametrize(("engine", "lacking", "named"), [
    ("orchestrator", {"orchestrator_function": None}, "OrchestratorFunctionName"),
    ("stepfunctions", {"state_machine_arn": None}, "PipelineStateMachineArn"),
    ("choreography", {"event_bus_name": None, "runs_table_name": None},
     "EventBusName, RunsTableName"),
])
def test_an_engine_the_deployment_cannot_run_names_what_it_lacks(engine, lacking, named) -> None:
    deployment = Deployment(**{**vars(EVERYTHING), **lacking})

    with pytest.raises(ValueError, match=f"the {engine} engine needs {named}"):
        engine_client(engine, deployment, lambda service: None)


def test_every_engine_has_a_client_and_an_unknown_one_is_refused() -> None:
    assert {engine_client(name, EVERYTHING, lambda service: None).engine for name in ENGINES} == set(
        ENGINES)
    with pytest.raises(ValueError, match="unknown engine 'carrier-pigeon'"):
        engine_client("carrier-pigeon", EVERYTHING, lambda service: None)


def failed_event(url: str, error: str = "TransientError") -> dict:
    return {"type": "TaskFailed", "taskFailedEventDetails": {
        "error": error, "cause": f'{{"errorMessage": "{url} answered 500"}}'}}


def test_step_functions_attempts_count_the_items_own_retried_failures():
    item = ItemOutcome(run_id="r", url="http://s/flaky", succeeded=True)
    history = [failed_event("http://s/flaky"), failed_event("http://s/flaky"),
               failed_event("http://s/other"), failed_event("http://s/flaky", "PermanentError")]

    assert with_attempts(item, history).attempts == 3


def test_a_final_retryable_failure_is_not_counted_twice():
    item = ItemOutcome(run_id="r", url="http://s/down", succeeded=False, error_type="TransientError",
                       failed_step="scraper")
    history = [failed_event("http://s/down")] * 4  # the first try and three retries

    assert with_attempts(item, history).attempts == 4


@pytest.mark.parametrize(("cause", "message"), [
    ('{"errorMessage": "http://s/missing answered 404", "errorType": "PermanentError"}',
     "http://s/missing answered 404"),
    ("Task timed out after 60.00 seconds", "Task timed out after 60.00 seconds"),
    ('["not", "an", "error", "object"]', '["not", "an", "error", "object"]'),
])
def test_a_step_functions_error_reads_as_its_message(cause: str, message: str) -> None:
    assert error_message(cause) == message


def test_a_failed_step_functions_item_reports_the_message_like_the_other_engines() -> None:
    failed = {"run_id": "monitor-1", "url": A, "succeeded": False, "error_type": "PermanentError",
              "failed_step": "scraper",
              "error": '{"errorMessage": "http://site.test/pages/a answered 404"}'}
    client = FakeStepFunctions(["SUCCEEDED"], {"run_id": "monitor-1", "items": [failed]})

    summary = sfn_runner(client).run(REQUEST, expired=lambda: False)

    assert summary.items[0].error == "http://site.test/pages/a answered 404"
