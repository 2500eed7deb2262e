"""The engines as the monitor drives them, over fake clients; and the orchestrator's monitor hooks."""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.engines import EngineFailed, OrchestratorRunner, RunIncomplete, StepFunctionsRunner
from orchestrator.engine import Budget, Engine
from pipeline.models import ItemOutcome, RunRequest, RunStatus, RunSummary, Validators
from tests.monitor_fakes import Page, SiteSteps
from tests.orchestrator_fakes import FakeAlerts, MemoryRunLog

A, B = "http://site.test/pages/a", "http://site.test/pages/b"
REQUEST = RunRequest(run_id="monitor-1", urls=[A, B], previous={A: Validators(etag='"v1"')},
                     alert_flagged=False)
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def outcomes() -> list[ItemOutcome]:
    return [ItemOutcome(run_id="monitor-1", url=url, succeeded=True) for url in (A, B)]


@dataclass
class FakeLambda:
    answer: dict[str, Any]
    function_error: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        response = {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(self.answer).encode())}
        if self.function_error:
            response["FunctionError"] = "Unhandled"
        return response


def test_the_orchestrator_is_invoked_synchronously_with_the_whole_request() -> None:
    summary = RunSummary.from_outcomes("monitor-1", "orchestrator", outcomes(), ended_at=NOW)
    client = FakeLambda(summary.model_dump(mode="json"))
    runner = OrchestratorRunner("stack-orchestrator", "runs", lambda_client=client)

    assert runner.run(REQUEST, expired=lambda: False) == summary
    (call,) = client.calls
    assert call["InvocationType"] == "RequestResponse"
    assert RunRequest.model_validate_json(call["Payload"]) == REQUEST


def test_an_orchestrator_error_fails_the_run_with_its_type_and_message() -> None:
    client = FakeLambda({"errorType": "ValidationError", "errorMessage": "urls: too short"},
                        function_error=True)

    with pytest.raises(EngineFailed, match="ValidationError: urls: too short"):
        OrchestratorRunner("f", "runs", lambda_client=client).run(REQUEST, expired=lambda: False)


def test_a_continued_run_is_followed_until_the_deadline() -> None:
    running = RunSummary.from_outcomes("monitor-1", "orchestrator", outcomes()[:1], total=2)
    assert running.status is RunStatus.RUNNING
    runner = OrchestratorRunner("f", "runs", lambda_client=FakeLambda(running.model_dump(mode="json")))

    with pytest.raises(RunIncomplete, match="1 item"):
        runner.run(REQUEST, expired=lambda: True)


@dataclass
class FakeStepFunctions:
    statuses: list[str]
    output: dict[str, Any] | None = None
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


def test_a_step_functions_run_is_polled_to_its_output() -> None:
    output = {"run_id": "monitor-1", "engine": "stepfunctions", "total": 2,
              "items": [item.model_dump(mode="json", exclude_none=True) for item in outcomes()]}
    client = FakeStepFunctions(["RUNNING", "RUNNING", "SUCCEEDED"], output)
    sleeps: list[float] = []

    summary = StepFunctionsRunner("arn:sm", client=client, poll_seconds=0.5,
                                  sleep=sleeps.append).run(REQUEST, expired=lambda: False)

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
        StepFunctionsRunner("arn:sm", client=FakeStepFunctions(["FAILED"])).run(
            REQUEST, expired=lambda: False)


def test_an_execution_still_running_at_the_deadline_is_incomplete() -> None:
    with pytest.raises(RunIncomplete):
        StepFunctionsRunner("arn:sm", client=FakeStepFunctions(["RUNNING"])).run(
            REQUEST, expired=lambda: True)


# ---- the orchestrator's hooks for the monitor --------------------------------------------------

def engine_over(steps: SiteSteps, alerts: FakeAlerts) -> Engine:
    return Engine(invoke=steps, runs=MemoryRunLog(), alerts=alerts, sleep=lambda _: None,
                  rng=random.Random(0))


def run(engine: Engine, request: RunRequest) -> RunSummary:
    return engine.run(request, budget=Budget(lambda: 900_000), continue_run=lambda _: None)


def test_the_request_validators_make_the_scraper_fetch_conditionally() -> None:
    steps = SiteSteps({A: Page(), B: Page()})

    summary = run(engine_over(steps, FakeAlerts()), REQUEST)

    sent = {str(request.url): request.etag for request in steps.scrape_requests}
    assert sent == {A: '"v1"', B: None}
    by_url = {item.url: item for item in summary.items}
    assert by_url[A].record is None and by_url[A].succeeded  # 304: ended after the scraper
    assert by_url[B].record is not None
    assert steps.count("moderator") == 1


def test_every_succeeded_item_reports_its_validators() -> None:
    summary = run(engine_over(SiteSteps({A: Page(), B: Page(version=3)}), FakeAlerts()), REQUEST)

    assert {item.url: item.etag for item in summary.items} == {A: '"v1"', B: '"v3"'}


def test_without_request_validators_the_previous_check_hook_still_applies() -> None:
    steps = SiteSteps({A: Page()})
    engine = engine_over(steps, FakeAlerts())
    engine.previous_check = lambda url: ('"v1"', None)

    run(engine, RunRequest(run_id="r", urls=[A]))

    assert steps.scrape_requests[0].etag == '"v1"'


@pytest.mark.parametrize(("alert_flagged", "alerts"), [(True, 1), (False, 0)])
def test_flagged_pages_are_alerted_by_the_engine_unless_the_request_says_not_to(
    alert_flagged: bool, alerts: int
) -> None:
    sent = FakeAlerts()

    summary = run(engine_over(SiteSteps({A: Page(toxic=True)}), sent),
                  RunRequest(run_id="r", urls=[A], alert_flagged=alert_flagged))

    assert len(sent.sent) == alerts and summary.flagged == 1
