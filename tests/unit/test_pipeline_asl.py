"""statemachines/pipeline.asl.json: valid structure, the shared retry policy, and the same outcomes
as the orchestrator when data is pushed through it (tests/asl_runner.py)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from baton.asl import scopes
from engines.alerts import SUBJECT_FORMAT
from orchestrator.engine import Budget, Engine, error_name
from pipeline.errors import PermanentError, TransientError
from pipeline.models import ItemOutcome, RunRequest, RunSummary, StoredRecord, Validators, Verdict
from pipeline.policy import asl_retry
from tests.asl_runner import TaskFailed, run_machine
from tests.monitor_fakes import Page, SiteSteps
from tests.orchestrator_fakes import FakeAlerts, FakeSteps, MemoryRunLog

ASL = Path(__file__).parents[2] / "statemachines" / "pipeline.asl.json"
SUBSTITUTIONS = {
    "ScraperFunctionArn": "scraper",
    "TransformerFunctionArn": "transformer",
    "ModeratorFunctionArn": "moderator",
    "StoreFunctionArn": "store",
    "AlertTopicArn": None,
}
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
SNS_PUBLISH = "arn:aws:states:::sns:publish"
# Capitalised first word, then lower-case words: "Fetch page", "Is it flagged?".
READABLE = re.compile(r"[A-Z][a-z]*( [a-z]+)*\??")


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return json.loads(ASL.read_text())


def all_states(machine: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for scope in scopes(machine):
        yield from scope["States"].items()


def targets(state: dict[str, Any]) -> list[str]:
    """Every state name a state can go to."""
    names = [state[key] for key in ("Next", "Default") if key in state]
    names += [rule["Next"] for rule in state.get("Choices", [])]
    names += [catcher["Next"] for catcher in state.get("Catch", [])]
    return names


def keys_anywhere(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from keys_anywhere(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from keys_anywhere(inner)


# ---- structure --------------------------------------------------------------------------------

def test_every_transition_names_a_state_of_the_same_scope(definition: dict[str, Any]) -> None:
    for scope in scopes(definition):
        assert scope["StartAt"] in scope["States"]
        for name, state in scope["States"].items():
            for target in targets(state):
                assert target in scope["States"], f"{name} -> {target}"


def test_every_state_is_reachable_and_every_path_ends(definition: dict[str, Any]) -> None:
    for scope in scopes(definition):
        seen, todo = set(), [scope["StartAt"]]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(targets(scope["States"][name]))
        assert seen == set(scope["States"]), "unreachable states"
        for name, state in scope["States"].items():
            terminal = state.get("End") or state["Type"] in ("Choice", "Succeed", "Fail")
            assert terminal or "Next" in state, f"{name} neither ends nor goes on"


def test_state_names_read_like_sentences(definition: dict[str, Any]) -> None:
    for name, _ in all_states(definition):
        assert READABLE.fullmatch(name), name
    item = definition["States"]["Check every page"]["ItemProcessor"]["States"]
    for expected in ("Fetch page", "Extract text", "Score toxicity", "Store record",
                     "Is it flagged?", "Alert on flagged page"):
        assert expected in item


def test_only_jsonpath_features_the_local_emulator_honours(definition: dict[str, Any]) -> None:
    used = set(keys_anywhere(definition))
    assert not used & {"Assign", "Variables", "QueryLanguage", "Arguments", "Output",
                       "MaxDelaySeconds", "JitterStrategy"}


def test_resources_are_bound_only_through_definition_substitutions(
    definition: dict[str, Any],
) -> None:
    text = ASL.read_text()
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(SUBSTITUTIONS)
    assert "arn:aws:lambda" not in text and "arn:aws:sns" not in text


# ---- the policy -------------------------------------------------------------------------------

def test_every_task_retries_with_the_shared_policy(definition: dict[str, Any]) -> None:
    tasks = [(name, state) for name, state in all_states(definition) if state["Type"] == "Task"]
    assert len(tasks) == 5
    for name, state in tasks:
        assert state["Retry"] == asl_retry(), name


def test_every_task_catches_everything_into_a_failed_outcome(definition: dict[str, Any]) -> None:
    for scope in scopes(definition):
        for name, state in scope["States"].items():
            if state["Type"] != "Task":
                continue
            [catcher] = state["Catch"]
            assert catcher["ErrorEquals"] == ["States.ALL"], name
            handler = scope["States"][catcher["Next"]]
            parameters = handler["Parameters"]
            assert handler["Type"] == "Pass" and handler.get("End"), name
            assert parameters["succeeded"] is False
            assert parameters["error_type.$"] == f"{catcher['ResultPath']}.Error"
            assert parameters["error.$"] == f"{catcher['ResultPath']}.Cause"
            step = SUBSTITUTIONS.get(state["Parameters"].get("FunctionName", "")[2:-1]) or "alert"
            assert parameters["failed_step"] == step, name


def test_lambda_tasks_keep_only_the_function_payload(definition: dict[str, Any]) -> None:
    for name, state in all_states(definition):
        if state.get("Resource") == LAMBDA_INVOKE:
            assert state["ResultSelector"] == {"Payload.$": "$.Payload"}, name
            assert state["Parameters"]["FunctionName"].startswith("${"), name


def test_the_map_takes_urls_and_concurrency_from_the_input(definition: dict[str, Any]) -> None:
    [the_map] = [state for _, state in all_states(definition) if state["Type"] == "Map"]
    assert the_map["ItemsPath"] == "$.urls"
    assert the_map["MaxConcurrencyPath"] == "$.max_concurrency"
    assert "MaxConcurrency" not in the_map  # one or the other, never both


def test_alert_subject_is_the_orchestrators(definition: dict[str, Any]) -> None:
    [alert] = [state for _, state in all_states(definition) if state.get("Resource") == SNS_PUBLISH]
    assert alert["Parameters"]["TopicArn"] == "${AlertTopicArn}"
    assert alert["Parameters"]["Subject.$"].startswith(f"States.Format('{SUBJECT_FORMAT}'")


# ---- behaviour, through tests/asl_runner.py ----------------------------------------------------

RUN = "run-0001"
A, B, C, D = "http://a.test/", "http://b.test/", "http://c.test/", "http://d.test/"


class Cloud:
    """Task handlers for the runner: the fake steps behind lambda:invoke, a list behind SNS."""

    def __init__(self, steps: FakeSteps | SiteSteps) -> None:
        self.steps = steps
        self.published: list[dict[str, Any]] = []

    def __call__(self, resource: str, parameters: dict[str, Any]) -> Any:
        if resource == SNS_PUBLISH:
            self.published.append(parameters)
            return {"MessageId": "1"}
        assert resource == LAMBDA_INVOKE
        step = SUBSTITUTIONS[parameters["FunctionName"][2:-1]]
        assert step is not None
        try:
            payload = self.steps(step, parameters["Payload"])
        except Exception as error:  # as Lambda reports a handler's exception
            name = error_name(error)
            raise TaskFailed(name, json.dumps({"errorMessage": str(error), "errorType": name})) from error
        return {"StatusCode": 200, "Payload": payload, "ExecutedVersion": "$LATEST"}


def scripted_steps() -> FakeSteps:
    steps = FakeSteps(verdicts={A: Verdict.BLOCK, D: Verdict.REVIEW})
    steps.fail("scraper", A, TransientError("HTTP 500"), TransientError("HTTP 500"))
    steps.fail("transformer", B, PermanentError("not HTML"))
    steps.not_modified.add(C)
    return steps


def run_state_machine(
    definition: dict[str, Any], urls: list[str], request: RunRequest | None = None,
    steps: FakeSteps | SiteSteps | None = None,
) -> tuple[dict[str, Any], Cloud]:
    cloud = Cloud(steps or scripted_steps())
    for placeholder in SUBSTITUTIONS:  # DefinitionSubstitutions, as CloudFormation applies them
        assert f"${{{placeholder}}}" in json.dumps(definition)
    request = request or RunRequest(run_id=RUN, urls=urls, max_concurrency=2)
    # The input every caller sends (baton run, the monitor): RunRequest.state_machine_input().
    output = run_machine(definition, request.state_machine_input(), cloud)
    return output, cloud


def run_orchestrator(request: RunRequest, steps: Any) -> RunSummary:
    engine = Engine(invoke=steps, runs=MemoryRunLog(), alerts=FakeAlerts(),
                    sleep=lambda _: None, rng=random.Random(0))
    return engine.run(request, budget=Budget(lambda: 900_000), continue_run=lambda _: None)


def test_state_machine_output_is_a_run_summary(definition: dict[str, Any]) -> None:
    output, _ = run_state_machine(definition, [A, B, C, D])

    assert output["engine"] == "stepfunctions" and output["total"] == 4
    items = [ItemOutcome.model_validate(item) for item in output["items"]]
    summary = RunSummary.from_outcomes(output["run_id"], output["engine"], items)
    assert (summary.succeeded, summary.failed, summary.flagged) == (3, 1, 2)


def test_state_machine_and_orchestrator_agree_item_by_item(definition: dict[str, Any]) -> None:
    urls = [A, B, C, D]
    machine_steps = scripted_steps()
    output, _ = run_state_machine(definition, urls, steps=machine_steps)
    engine_steps = scripted_steps()
    summary = run_orchestrator(RunRequest(run_id=RUN, urls=urls), engine_steps)

    for machine_item, engine_item in zip(output["items"], summary.items, strict=True):
        machine = ItemOutcome.model_validate(machine_item)
        # Attempts come from execution history (the CLI), and Cause is the raw Lambda error
        # JSON where the orchestrator keeps the message: compare everything else.
        assert machine.model_dump(exclude={"attempts", "duration_ms", "error"}) == (
            engine_item.model_dump(exclude={"attempts", "duration_ms", "error"})
        )
        if machine.error is not None:
            assert json.loads(machine.error)["errorMessage"] == engine_item.error
    # Same calls, retries included: "500 twice then OK" is three scraper calls in both.
    assert sorted(machine_steps.calls) == sorted(engine_steps.calls)
    assert machine_steps.count("scraper", A) == 3


def test_state_machine_alerts_like_the_orchestrator(definition: dict[str, Any]) -> None:
    _, cloud = run_state_machine(definition, [A, B, C, D])

    assert [alert["Subject"] for alert in cloud.published] == [
        "baton: page flagged (block)", "baton: page flagged (review)"
    ]
    assert sorted(str(StoredRecord.model_validate_json(alert["Message"]).url)
                  for alert in cloud.published) == [A, D]


# ---- the monitor's requests: conditional GET, no alerts ----------------------------------------

SITE_A, SITE_B = "http://site.test/pages/a", "http://site.test/pages/b"
MONITOR_REQUEST = RunRequest(run_id="monitor-1", urls=[SITE_A, SITE_B],
                             previous={SITE_A: Validators(etag='"v1"')}, alert_flagged=False)


def site() -> SiteSteps:
    """A is unchanged since the previous check (etag "v1"), B is at version 3 and toxic."""
    return SiteSteps({SITE_A: Page(), SITE_B: Page(version=3, toxic=True)})


def test_each_url_is_fetched_with_its_own_previous_validators(definition: dict[str, Any]) -> None:
    steps = site()

    run_state_machine(definition, MONITOR_REQUEST.urls, MONITOR_REQUEST, steps)

    sent = {str(request.url): (request.etag, request.last_modified)
            for request in steps.scrape_requests}
    assert sent == {SITE_A: ('"v1"', None), SITE_B: (None, None)}
    assert steps.count("transformer") == 1  # A answered 304: it ends after the scraper


def test_every_succeeded_item_reports_the_validators_its_server_sent(
    definition: dict[str, Any],
) -> None:
    output, _ = run_state_machine(definition, MONITOR_REQUEST.urls, MONITOR_REQUEST, site())

    items = {item["url"]: ItemOutcome.model_validate(item) for item in output["items"]}
    assert items[SITE_A].record is None and items[SITE_A].etag == '"v1"'
    assert items[SITE_B].record is not None and items[SITE_B].etag == '"v3-toxic"'


@pytest.mark.parametrize(("alert_flagged", "alerts"), [(True, 1), (False, 0)])
def test_flagged_pages_are_alerted_unless_the_request_says_not_to(
    definition: dict[str, Any], alert_flagged: bool, alerts: int
) -> None:
    request = MONITOR_REQUEST.model_copy(update={"alert_flagged": alert_flagged})

    output, cloud = run_state_machine(definition, request.urls, request, site())

    assert len(cloud.published) == alerts
    assert [item["succeeded"] for item in output["items"]] == [True, True]


def test_state_machine_and_orchestrator_agree_on_a_monitor_request(
    definition: dict[str, Any],
) -> None:
    output, _ = run_state_machine(definition, MONITOR_REQUEST.urls, MONITOR_REQUEST, site())
    summary = run_orchestrator(MONITOR_REQUEST, site())

    machine = [ItemOutcome.model_validate(item).model_dump(exclude={"attempts", "duration_ms"})
               for item in output["items"]]
    assert machine == [item.model_dump(exclude={"attempts", "duration_ms"})
                       for item in summary.items]
