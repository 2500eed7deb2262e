"""The step registry (pipeline.steps) is the pipeline's one definition: the engines, the event
chain, template.yaml and the state machine all follow it, and what does not is named."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from baton import asl, wiring
from baton.deploy import load_template
from engines.events import CHAIN, rule_patterns
from orchestrator.settings import OrchestratorSettings
from pipeline.models import StoredRecord
from pipeline.policy import RetryPolicy, asl_retry
from pipeline.steps import ENGINES, STEPS, Step, _chained

# A throw-away fifth step: what a newcomer adding one would be told to add.
NOTIFIER = Step("notifier", "Notify owner", StoredRecord, StoredRecord, "baton.OwnerNotified.v1", 60)
WITH_NOTIFIER = _chained(*STEPS, NOTIFIER)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return asl.load()


def test_the_event_chain_is_the_registry():
    assert list(CHAIN) == [step.name for step in STEPS]
    assert set(rule_patterns()) == {step.name for step in STEPS} | {"tracker"}


def test_engine_names_are_defined_once():
    assert ENGINES == ("orchestrator", "stepfunctions", "choreography")


def test_the_template_wires_every_step(template: dict[str, Any]):
    assert wiring.problems(template) == []


def test_a_step_missing_from_the_template_is_named_with_what_to_add(template: dict[str, Any]):
    found = wiring.problems(template, WITH_NOTIFIER)

    assert found, "an unwired step must be reported"
    assert all("otifier" in problem for problem in found)
    joined = "\n".join(found)
    for needed in ("NotifierFunction", "NOTIFIER_FUNCTION_NAME", "NotifierFunctionArn",
                   "NotifierFunctionName", "NotifierLogGroup", "notifier.entry.lambda_handler"):
        assert needed in joined


def test_a_step_without_the_engines_layer_is_reported(template: dict[str, Any]):
    bare = copy.deepcopy(template)
    del bare["Resources"]["StoreFunction"]["Properties"]["Layers"]

    assert wiring.problems(bare) == [
        "StoreFunction: Layers [!Ref EnginesLayer] (its entry point imports the choreography "
        "runtime)"]


def test_what_the_distributed_map_needs_on_aws_is_named(template: dict[str, Any]):
    bare = copy.deepcopy(template)
    machine = bare["Resources"]["PipelineStateMachine"]["Properties"]
    machine["Policies"] = [policy for policy in machine["Policies"] if "Statement" not in policy]

    found = wiring.problems(bare)

    assert [problem.split(" allowing ")[1].split(" ")[0] for problem in found] == [
        "states:StartExecution", "states:StopExecution", "s3:GetObject"]
    del machine["Name"]
    assert wiring.problems(bare)[0] == ("PipelineStateMachine: Name !Sub <name> (its policy "
                                        "names the machine itself)")


def test_a_changed_timeout_is_reported(template: dict[str, Any]):
    slower = tuple(replace(step, timeout_seconds=90) if step.name == "store" else step
                   for step in STEPS)

    assert wiring.problems(template, slower) == [
        "StoreFunction: Timeout is 60, the registry says 90 (Step.timeout_seconds)"]


def test_the_state_machine_invokes_every_step_in_order(definition: dict[str, Any]):
    assert asl.problems(definition) == []
    assert [step for _, step in asl.step_tasks(definition)] == list(STEPS)


def test_the_state_machine_file_is_what_baton_build_writes(definition: dict[str, Any]):
    assert asl.render(definition) == definition, (
        "statemachines/pipeline.asl.json differs from the step registry: run `baton build`")
    assert asl.dump(definition) == asl.DEFINITION.read_text()


def test_a_step_missing_from_the_state_machine_is_named(definition: dict[str, Any]):
    assert asl.problems(definition, WITH_NOTIFIER) == [
        "no Task invokes step 'notifier': add a Task named 'Notify owner' with FunctionName "
        "${NotifierFunctionArn} after the Task of 'store', and NotifierFunctionArn to the state "
        "machine's DefinitionSubstitutions"]


def test_a_policy_change_is_written_into_every_task_by_sync(tmp_path: Path):
    patient = RetryPolicy(retry_on=("TransientError",), final=("PermanentError",),
                          interval_seconds=5, backoff_rate=3.0, max_attempts=6)
    steps = tuple(replace(step, policy=patient) for step in STEPS)
    copy = tmp_path / "pipeline.asl.json"
    copy.write_text(asl.DEFINITION.read_text())

    assert asl.sync(copy, steps) is True
    assert asl.sync(copy, steps) is False  # written once, then in step
    retries = [state["Retry"] for scope in asl.scopes(json.loads(copy.read_text()))
               for state in scope["States"].values() if isinstance(asl.step_of(state), Step)]
    assert retries == [asl_retry(patient)] * len(STEPS)


def test_the_orchestrator_reads_one_variable_per_step(monkeypatch):
    for step in STEPS:
        monkeypatch.setenv(step.env_var, f"fn-{step.name}")
    monkeypatch.setenv("RUNS_TABLE_NAME", "runs")
    monkeypatch.setenv("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:000000000000:alerts")

    settings = OrchestratorSettings()  # type: ignore[call-arg]  # from the environment
    assert settings.function_names() == {s.name: f"fn-{s.name}" for s in STEPS}

    monkeypatch.delenv(STEPS[-1].env_var)
    with pytest.raises(ValueError, match=STEPS[-1].env_var):
        OrchestratorSettings()  # type: ignore[call-arg]
