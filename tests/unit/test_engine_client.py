"""One engine client for the CLI and the monitor: start, follow and summarise a run of any engine,
over fake AWS clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from engines.client import (
    START_TIMEOUT_S,
    Deployment,
    EngineFailed,
    OrchestratorClient,
    engine_client,
    execution_history,
    item_histories,
    items_to_redrive,
    with_attempts,
)
from pipeline.models import (
    Change,
    ItemOutcome,
    RunRequest,
    RunSummary,
    StoredRecord,
    Validators,
    Verdict,
)
from pipeline.steps import ENGINES, STEP

A, B = "http://site.test/pages/a", "http://site.test/pages/b"
REQUEST = RunRequest(run_id="monitor-1", urls=[A, B], previous={A: Validators(etag='"v1"')},
                     alert_flagged=False)
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
EVERYTHING = Deployment(orchestrator_function="orch", state_machine_arn="arn:sm",
                        runs_table_name="runs", event_bus_name="bus", data_bucket_name="data")


def outcomes() -> list[ItemOutcome]:
    return [ItemOutcome(run_id="monitor-1", url=url, succeeded=True) for url in (A, B)]


@dataclass
class FakeLambda:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"StatusCode": 202}


@dataclass
class FakeS3:
    """A bucket in a dict: where the client keeps each run's request."""

    objects: dict[str, bytes] = field(default_factory=dict)

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.objects[Key] = Body
        return {}


class EmptyTable:
    """A runs table in which the run never appears."""

    def query(self, **_: Any) -> dict[str, Any]:
        return {"Items": []}

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {}


def test_the_orchestrator_is_started_asynchronously_with_the_whole_request() -> None:
    lambdas, s3 = FakeLambda(), FakeS3()
    client = OrchestratorClient(EVERYTHING, {"lambda": lambdas, "dynamodb": EmptyTable(),
                                             "s3": s3}.__getitem__)

    assert client.start(REQUEST) == "monitor-1"
    # the request is kept for a redrive
    assert RunRequest.model_validate_json(s3.objects["runs/monitor-1/request.json"]) == REQUEST
    (call,) = lambdas.calls
    assert (call["FunctionName"], call["InvocationType"]) == ("orch", "Event")
    assert RunRequest.model_validate_json(call["Payload"]) == REQUEST


def test_a_run_the_orchestrator_never_opens_fails_after_the_start_timeout() -> None:
    now = [0.0]
    client = OrchestratorClient(EVERYTHING, {"lambda": FakeLambda(), "dynamodb": EmptyTable(),
                                             "s3": FakeS3()}
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


def entered(state: str) -> dict:
    return {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": state}}


def crashed() -> dict:
    """A killed invoke: its error names no URL."""
    return {"type": "TaskFailed", "taskFailedEventDetails": {
        "error": "Runtime.ExitError", "cause": "Runtime exited with error: signal: killed"}}


def refused(url: str) -> dict:
    return failed_event(url, "PermanentError")


SUCCEEDED = {"type": "TaskSucceeded"}
STORED = StoredRecord(run_id="r", url="http://s/page", content_hash="h", text_key="t",  # type: ignore[arg-type]
                      change=Change.NEW, verdict=Verdict.ALLOW, score=0.1,
                      checked_at=datetime(2026, 11, 30, tzinfo=UTC))
PAGE = ItemOutcome(run_id="r", url="http://s/page", succeeded=True, record=STORED)


def test_in_its_own_child_execution_every_retried_failure_is_the_item_s_whatever_its_message():
    # an unchanged page (304): the scraper, then the tracker
    item = ItemOutcome(run_id="r", url="http://s/page", succeeded=True)
    history = [entered("Fetch page"), crashed(), crashed(), SUCCEEDED,
               entered("Record outcome"), SUCCEEDED]

    assert with_attempts(item, history, own=True).attempts == 3
    # shared by several items, a failure that names no URL cannot be told to be this one's
    assert with_attempts(item, history).attempts == 1


@pytest.mark.parametrize("named", [True, False], ids=["states named", "tasks only"])
def test_an_item_s_attempts_are_those_of_its_step_tried_most_as_the_orchestrator_counts(named):
    visits = [("Fetch page", [crashed(), SUCCEEDED]),
              ("Extract text", [crashed(), crashed(), SUCCEEDED]),
              ("Score toxicity", [SUCCEEDED]),
              ("Store record", [crashed(), SUCCEEDED]),
              # the tracker's retries are the run's bookkeeping, not the item's steps
              ("Record outcome", [crashed(), crashed(), crashed(), crashed(), SUCCEEDED])]
    # the local cloud's child executions record the tasks only, no state entered
    history = [event for state, events in visits
               for event in ([entered(state)] if named else []) + events]

    assert with_attempts(PAGE, history, own=True).attempts == 3


def test_the_step_that_ended_the_item_counts_its_last_failure_as_an_attempt():
    item = PAGE.model_copy(update={"succeeded": False, "record": None, "failed_step": "store",
                                   "error_type": "Runtime.ExitError"})
    retries = STEP["store"].policy.max_attempts
    history = [crashed(), SUCCEEDED, SUCCEEDED, SUCCEEDED, *[crashed()] * (1 + retries),
               crashed(), SUCCEEDED]  # then the tracker: a retry, and the outcome recorded

    assert with_attempts(item, history, own=True).attempts == 1 + retries


def test_a_failure_no_policy_retries_ends_its_step() -> None:
    item = PAGE.model_copy(update={"succeeded": False, "record": None, "failed_step": "transformer",
                                   "error_type": "PermanentError"})
    history = [crashed(), SUCCEEDED, crashed(), refused(PAGE.url), crashed(), SUCCEEDED]

    assert with_attempts(item, history, own=True).attempts == 2


def scheduled(url: str) -> dict:
    """A scraper task scheduled for ``url`` (the local cloud's event names no parameters)."""
    return {"type": "TaskScheduled", "taskScheduledEventDetails": {"resource": url}}


def started(url: str) -> dict:
    """A child execution's start, as AWS records it: its input names the item's URL."""
    return {"type": "ExecutionStarted",
            "executionStartedEventDetails": {"input": f'{{"url": "{url}"}}'}}


@dataclass
class FakeDistributedMap:
    """An execution whose Distributed Map ran each item as a child execution (listed out of
    order, newest first, and in pages, as ListExecutions does)."""

    children: dict[str, list[dict]]  # child execution ARN -> its history
    inputs: dict[str, str] = field(default_factory=dict)  # child ARN -> its URL, if described
    own: list[dict] = field(default_factory=lambda: [{"type": "MapStateEntered"}])

    def get_execution_history(self, executionArn: str, **_: Any) -> dict[str, Any]:
        return {"events": self.own if executionArn == "arn:run" else self.children[executionArn]}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return {"input": f'{{"run_id": "r", "url": "{self.inputs[executionArn]}"}}'}

    def list_map_runs(self, executionArn: str) -> dict[str, Any]:
        assert executionArn == "arn:run"
        return {"mapRuns": [{"mapRunArn": "arn:maprun"}]}

    def list_executions(self, mapRunArn: str, maxResults: int,
                        nextToken: str | None = None) -> dict[str, Any]:
        listed = [{"executionArn": arn, "startDate": f"2026-11-22T10:00:0{n}"}
                  for n, arn in enumerate(self.children)][::-1]
        return ({"executions": listed[:1], "nextToken": "more"} if nextToken is None
                else {"executions": listed[1:]})


def test_each_item_s_attempts_come_from_its_own_child_execution() -> None:
    sfn = FakeDistributedMap(
        {"arn:child-a": [scheduled(A), failed_event(A), scheduled(A), failed_event(A)],
         "arn:child-b": [started(B), scheduled(B), {"type": "TaskSucceeded"}]},
        inputs={"arn:child-a": A})  # B's URL is in its history: it is not described

    histories = item_histories(sfn, "arn:run")

    assert set(histories) == {None, A, B}
    item = ItemOutcome(run_id="r", url=A, succeeded=True)
    assert with_attempts(item, histories[A]).attempts == 3
    assert with_attempts(item.model_copy(update={"url": B}), histories[B]).attempts == 1


class FakeLocalStackMap(FakeDistributedMap):
    """LocalStack: the Map Run is listed, but its iterations ran inside the parent execution and
    ListExecutions by mapRunArn fails (InternalError)."""

    def list_map_runs(self, executionArn: str) -> dict[str, Any]:
        return {**super().list_map_runs(executionArn),
                "ResponseMetadata": {"HTTPHeaders": {"x-localstack": "true"}}}

    def list_executions(self, mapRunArn: str, maxResults: int,
                        nextToken: str | None = None) -> dict[str, Any]:
        raise AssertionError("LocalStack cannot list a Map Run's child executions")


def test_on_localstack_only_the_parent_s_history_is_read() -> None:
    sfn = FakeLocalStackMap({"arn:child-a": [scheduled(A)]})

    assert item_histories(sfn, "arn:run") == {None: [{"type": "MapStateEntered"}]}
    assert [event["type"] for event in execution_history(sfn, "arn:run")] == ["MapStateEntered"]


def test_an_execution_s_history_includes_its_children_s_in_the_order_they_started() -> None:
    sfn = FakeDistributedMap({"arn:child-a": [scheduled(A), failed_event(A)],
                              "arn:child-b": [scheduled(B)]})

    history = execution_history(sfn, "arn:run")

    assert [event["type"] for event in history] == [
        "MapStateEntered", "TaskScheduled", "TaskFailed", "TaskScheduled"]
    assert [event["id"] for event in history] == [1, 2, 3, 4]  # unique across the children
    assert history[3]["taskScheduledEventDetails"]["resource"] == B


# ---- which items a redrive runs again ------------------------------------------------------------

def test_a_redrive_runs_again_what_never_ended_or_failed_for_a_reason_that_may_pass() -> None:
    c, d = "http://site.test/pages/c", "http://site.test/pages/d"
    run = RunRequest(run_id="r", urls=[A, B, c, d, A])
    ended = [ItemOutcome(run_id="r", url=A, succeeded=True),
             ItemOutcome(run_id="r", url=B, succeeded=False, error_type="TransientError"),
             ItemOutcome(run_id="r", url=c, succeeded=False, error_type="PermanentError")]
    summary = RunSummary.from_outcomes("r", "orchestrator", ended, total=4)

    assert items_to_redrive(run, summary) == [B, d]  # not A (stored), not c (final)
