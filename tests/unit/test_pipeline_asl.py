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
from engines.alerts import alert_once
from engines.events import ItemEnd
from orchestrator.engine import Budget, Engine, error_name
from pipeline.errors import PermanentError, TransientError
from pipeline.models import ItemOutcome, RunRequest, RunSummary, Validators, Verdict
from pipeline.policy import RECORD_POLICY, asl_retry
from pipeline.steps import STEP, STEPS
from tests.asl_runner import ExecutionFailed, TaskFailed, run_machine
from tests.monitor_fakes import Page, SiteSteps
from tests.orchestrator_fakes import FakeAlerts, FakeSteps, MemoryRunLog
from tracker.logic import state_machine_outcome

ASL = Path(__file__).parents[2] / "statemachines" / "pipeline.asl.json"
# DefinitionSubstitutions -> the function behind them: the steps, and the run tracker.
TRACKER = "tracker"
SUBSTITUTIONS = {step.arn_substitution: step.name for step in STEPS} | {
    "TrackerFunctionArn": TRACKER}
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
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
    for expected in [step.state for step in STEPS] + ["Is it unchanged?", "Record outcome"]:
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

def invoked(state: dict[str, Any]) -> str | None:
    """The function a Task invokes (a step's name, or "tracker")."""
    return SUBSTITUTIONS.get(state.get("Parameters", {}).get("FunctionName", "")[2:-1])


def test_every_task_retries_with_its_policy(definition: dict[str, Any]) -> None:
    tasks = [(name, state) for name, state in all_states(definition) if state["Type"] == "Task"]
    # the tracker twice: the item's outcome, and the failure to record it
    assert sorted(invoked(state) or "" for _, state in tasks) == sorted(
        [step.name for step in STEPS] + [TRACKER, TRACKER])
    for name, state in tasks:
        function = invoked(state)
        policy = RECORD_POLICY if function == TRACKER else STEP[function or ""].policy
        assert state["Retry"] == asl_retry(policy), name


def test_every_step_catches_everything_into_a_failed_outcome_that_is_recorded(
    definition: dict[str, Any],
) -> None:
    for scope in scopes(definition):
        for name, state in scope["States"].items():
            if state["Type"] != "Task" or invoked(state) == TRACKER:
                continue
            [catcher] = state["Catch"]
            assert catcher["ErrorEquals"] == ["States.ALL"], name
            handler = scope["States"][catcher["Next"]]
            parameters = handler["Parameters"]
            assert handler["Type"] == "Pass" and handler["Next"] == "Record outcome", name
            assert parameters["succeeded"] is False
            assert parameters["error_type.$"] == f"{catcher['ResultPath']}.Error"
            assert parameters["error.$"] == f"{catcher['ResultPath']}.Cause"
            assert parameters["failed_step"] == invoked(state), name


def test_every_item_ends_by_handing_its_outcome_to_the_tracker(definition: dict[str, Any]) -> None:
    [the_map] = [state for _, state in all_states(definition) if state["Type"] == "Map"]
    states = the_map["ItemProcessor"]["States"]
    ends = [name for name, state in states.items() if state.get("End")]
    assert ends == ["Record outcome", "Item failed"]
    record = states["Record outcome"]
    assert record["Parameters"]["Payload"] == {"outcome.$": "$.outcome",
                                               "alert_flagged.$": "$.alert_flagged"}
    # An outcome that cannot be recorded after every retry ends the item as failed, naming the
    # error, through the tracker again; only if that fails too does the iteration fail.
    [catcher] = record["Catch"]
    assert catcher["ErrorEquals"] == ["States.ALL"]
    named = states[catcher["Next"]]
    assert named["Type"] == "Pass" and named["ResultPath"] == "$.outcome"
    assert named["Parameters"]["succeeded"] is False
    assert named["Parameters"]["error_type.$"] == f"{catcher['ResultPath']}.Error"
    assert named["Parameters"]["error.$"] == f"{catcher['ResultPath']}.Cause"
    failed = states[named["Next"]]
    assert invoked(failed) == TRACKER and "Catch" not in failed
    assert failed["Parameters"]["Payload"] == {"outcome.$": "$.outcome", "alert_flagged": False}
    # The state keeps no item results: it stays small whatever the number of URLs.
    assert the_map["ResultPath"] is None


def test_step_tasks_keep_only_the_function_payload(definition: dict[str, Any]) -> None:
    for name, state in all_states(definition):
        if state.get("Resource") == LAMBDA_INVOKE and invoked(state) != TRACKER:
            assert state["ResultSelector"] == {"Payload.$": "$.Payload"}, name
            assert state["Parameters"]["FunctionName"].startswith("${"), name


def test_the_map_reads_its_items_from_s3_and_takes_its_concurrency_from_the_input(
    definition: dict[str, Any],
) -> None:
    [the_map] = [state for _, state in all_states(definition) if state["Type"] == "Map"]
    # A Distributed Map reading the items the input points to: no state holds the URL list.
    assert the_map["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket.$": "$.items.bucket", "Key.$": "$.items.key"}}
    assert "ItemsPath" not in the_map
    # Standard children: their histories (each item's attempts) can be read; Express ones cannot.
    assert the_map["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED",
                                                           "ExecutionType": "STANDARD"}
    assert the_map["MaxConcurrencyPath"] == "$.max_concurrency"
    assert "MaxConcurrency" not in the_map  # one or the other, never both
    assert "ResultWriter" not in the_map  # each child's output is one boolean, discarded


def test_the_input_is_a_pointer_whatever_the_number_of_urls() -> None:
    many = [f"http://site.example/articles/{n:05d}-with-a-longer-path" for n in range(9_999)]
    request = RunRequest(run_id=RUN, urls=[*many, many[0]],
                         previous={many[1]: Validators(etag='"v1"')})

    state_input = request.state_machine_input("bucket", "runs/run-0001/items/run-0001.json")
    items = request.state_machine_items()

    assert len(json.dumps(state_input)) < 512
    assert state_input["total"] == len(items) == 9_999  # one item per distinct URL
    assert items[1] == {"url": many[1], "previous": {"etag": '"v1"', "last_modified": None},
                        "options": None}
    assert items[0]["previous"] == {"etag": None, "last_modified": None}


def test_the_state_machine_leaves_alerts_to_the_tracker(definition: dict[str, Any]) -> None:
    resources = {state.get("Resource") for _, state in all_states(definition)}
    assert resources <= {LAMBDA_INVOKE, None}  # no SNS task: one alert path for every engine


# ---- behaviour, through tests/asl_runner.py ----------------------------------------------------

RUN = "run-0001"
A, B, C, D = "http://a.test/", "http://b.test/", "http://c.test/", "http://d.test/"


class Cloud:
    """Task handlers for the runner: the fake steps behind lambda:invoke, and a tracker that
    keeps each item's end and alerts as the real one decides (tracker.logic, alert_once)."""

    def __init__(self, steps: FakeSteps | SiteSteps) -> None:
        self.steps = steps
        self.ends: list[ItemEnd] = []
        self.claims = MemoryRunLog()
        self.alerts = FakeAlerts()

    def outcomes(self) -> list[ItemOutcome]:
        """Every item's outcome as the tracker records it."""
        return [state_machine_outcome(end) for end in self.ends]

    def __call__(self, resource: str, parameters: dict[str, Any]) -> Any:
        assert resource == LAMBDA_INVOKE
        step = SUBSTITUTIONS[parameters["FunctionName"][2:-1]]
        if step == TRACKER:
            end = ItemEnd.model_validate(parameters["Payload"])
            self.ends.append(end)
            outcome = state_machine_outcome(end)
            if outcome.record is not None and end.alert_flagged:
                alert_once(self.claims, self.alerts, outcome.run_id, outcome.url, outcome.record)
            return {"StatusCode": 200, "Payload": {"recorded": True}}
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
    # What every caller (baton run, the monitor) puts in S3 and sends: the items, and a pointer.
    objects = {("data", "runs/items.json"): json.dumps(request.state_machine_items())}
    output = run_machine(definition, request.state_machine_input("data", "runs/items.json"), cloud,
                         read_object=lambda bucket, key: objects[(bucket, key)])
    return output, cloud


def run_orchestrator(request: RunRequest, steps: Any) -> RunSummary:
    engine = Engine(invoke=steps, runs=MemoryRunLog(), alerts=FakeAlerts(),
                    sleep=lambda _: None, rng=random.Random(0))
    return engine.run(request, budget=Budget(lambda: 900_000), continue_run=lambda _: None)


def test_each_item_is_recorded_once_and_the_output_stays_small(definition: dict[str, Any]) -> None:
    output, cloud = run_state_machine(definition, [A, B, C, D])

    assert output == {"run_id": RUN, "engine": "stepfunctions", "total": 4}
    summary = RunSummary.from_outcomes(RUN, output["engine"], cloud.outcomes())
    assert sorted(item.url for item in summary.items) == [A, B, C, D]
    assert (summary.succeeded, summary.failed, summary.flagged) == (3, 1, 2)


class RecordFailsFor(Cloud):
    """A tracker that cannot record ``url``'s outcome as it came (every attempt fails), but can
    record a failed outcome for it."""

    def __init__(self, url: str) -> None:
        super().__init__(scripted_steps())
        self.url = url
        self.refused = 0

    def __call__(self, resource: str, parameters: dict[str, Any]) -> Any:
        payload = parameters["Payload"]
        if (SUBSTITUTIONS[parameters["FunctionName"][2:-1]] == TRACKER
                and payload["outcome"]["url"] == self.url and payload["outcome"]["succeeded"]):
            self.refused += 1
            raise TaskFailed("TransientError", json.dumps({
                "errorMessage": "runs table throttled: ProvisionedThroughputExceededException",
                "errorType": "TransientError"}))
        return super().__call__(resource, parameters)


def test_an_outcome_the_tracker_cannot_record_ends_the_item_failed_with_the_error_named(
    definition: dict[str, Any],
) -> None:
    cloud = RecordFailsFor(D)
    request = RunRequest(run_id=RUN, urls=[A, B, C, D], max_concurrency=2)
    objects = {("data", "items.json"): json.dumps(request.state_machine_items())}

    output = run_machine(definition, request.state_machine_input("data", "items.json"), cloud,
                         read_object=lambda bucket, key: objects[(bucket, key)])

    assert output == {"run_id": RUN, "engine": "stepfunctions", "total": 4}  # the Map went on
    assert cloud.refused == 1 + RECORD_POLICY.max_attempts  # every retry of the record was tried
    outcomes = {outcome.url: outcome for outcome in cloud.outcomes()}
    assert set(outcomes) == {A, B, C, D}  # D too: one outcome each, none lost
    failed = outcomes[D]
    assert (failed.succeeded, failed.failed_step, failed.error_type) == (
        False, "tracker", "TransientError")
    assert failed.error == "runs table throttled: ProvisionedThroughputExceededException"
    assert failed.record is None
    assert [alert.url for alert in cloud.alerts.sent if str(alert.url) == D] == []


class AlertFailsFor(Cloud):
    """A tracker that records ``url``'s outcome once (as the real one: a later call finds it
    recorded) but cannot send its alert: every call for its flagged outcome fails after the
    record."""

    def __init__(self, url: str) -> None:
        super().__init__(scripted_steps())
        self.url = url

    def __call__(self, resource: str, parameters: dict[str, Any]) -> Any:
        payload = parameters["Payload"]
        if (SUBSTITUTIONS[parameters["FunctionName"][2:-1]] != TRACKER
                or payload["outcome"]["url"] != self.url):
            return super().__call__(resource, parameters)
        recorded = not any(end.outcome.url == self.url for end in self.ends)
        if recorded:
            self.ends.append(ItemEnd.model_validate(payload))
        if payload["outcome"]["succeeded"]:
            raise TaskFailed("TransientError", json.dumps({
                "errorMessage": "alert not sent: Throttling", "errorType": "TransientError"}))
        return {"StatusCode": 200, "Payload": {"recorded": recorded}}


def test_an_outcome_recorded_whose_alert_cannot_be_sent_fails_the_execution_naming_why(
    definition: dict[str, Any],
) -> None:
    cloud = AlertFailsFor(A)  # A is blocked: flagged, alerted
    request = RunRequest(run_id=RUN, urls=[A, B], max_concurrency=2)
    objects = {("data", "items.json"): json.dumps(request.state_machine_items())}

    with pytest.raises(ExecutionFailed) as failure:
        run_machine(definition, request.state_machine_input("data", "items.json"), cloud,
                    read_object=lambda bucket, key: objects[(bucket, key)])

    # not a silent success: the item is recorded as it ended, and its lost alert is named
    assert failure.value.error == "TransientError"
    assert "alert not sent: Throttling" in failure.value.cause
    assert [(outcome.url, outcome.succeeded) for outcome in cloud.outcomes()] == [(A, True)]


def test_state_machine_and_orchestrator_agree_item_by_item(definition: dict[str, Any]) -> None:
    urls = [A, B, C, D]
    machine_steps = scripted_steps()
    _, cloud = run_state_machine(definition, urls, steps=machine_steps)
    engine_steps = scripted_steps()
    summary = run_orchestrator(RunRequest(run_id=RUN, urls=urls), engine_steps)

    for machine, engine_item in zip(cloud.outcomes(), summary.items, strict=True):
        # Attempts come from execution history (the engine client): compare everything else.
        assert machine.model_dump(exclude={"attempts", "duration_ms"}) == (
            engine_item.model_dump(exclude={"attempts", "duration_ms"})
        )
    # Same calls, retries included: "500 twice then OK" is three scraper calls in both.
    assert sorted(machine_steps.calls) == sorted(engine_steps.calls)
    assert machine_steps.count("scraper", A) == 3


def test_state_machine_alerts_like_the_orchestrator(definition: dict[str, Any]) -> None:
    _, cloud = run_state_machine(definition, [A, B, C, D])

    assert sorted((str(record.url), record.verdict.value) for record in cloud.alerts.sent) == [
        (A, "block"), (D, "review")]


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
    _, cloud = run_state_machine(definition, MONITOR_REQUEST.urls, MONITOR_REQUEST, site())

    items = {item.url: item for item in cloud.outcomes()}
    assert items[SITE_A].record is None and items[SITE_A].etag == '"v1"'
    assert items[SITE_B].record is not None and items[SITE_B].etag == '"v3-toxic"'


@pytest.mark.parametrize(("alert_flagged", "alerts"), [(True, 1), (False, 0)])
def test_flagged_pages_are_alerted_unless_the_request_says_not_to(
    definition: dict[str, Any], alert_flagged: bool, alerts: int
) -> None:
    request = MONITOR_REQUEST.model_copy(update={"alert_flagged": alert_flagged})

    _, cloud = run_state_machine(definition, request.urls, request, site())

    assert len(cloud.alerts.sent) == alerts
    assert [item.succeeded for item in cloud.outcomes()] == [True, True]


def test_state_machine_and_orchestrator_agree_on_a_monitor_request(
    definition: dict[str, Any],
) -> None:
    _, cloud = run_state_machine(definition, MONITOR_REQUEST.urls, MONITOR_REQUEST, site())
    summary = run_orchestrator(MONITOR_REQUEST, site())

    machine = [item.model_dump(exclude={"attempts", "duration_ms"}) for item in cloud.outcomes()]
    assert machine == [item.model_dump(exclude={"attempts", "duration_ms"})
                       for item in summary.items]
