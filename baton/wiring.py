"""template.yaml's per-step wiring, checked against the step registry (``pipeline.steps``).

CloudFormation cannot loop, so each step's resources are written out in the template; this
module says, in one sentence each, what a step lacks there: its function (one for all three
engines), its entry point, timeout, rule pattern and event bus, the orchestrator's variable and
permission, the state machine's substitution, the stack output the CLI reads and the log groups;
and what the state machine's Distributed Map needs that SAM does not grant by itself.
A test runs it on the real template (and on a registry with an extra step, to show the messages).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from baton import asl
from engines.events import rule_patterns
from pipeline.steps import EVENT_SOURCE, STEPS, Step

ORCHESTRATOR = "OrchestratorFunction"
STATE_MACHINE = "PipelineStateMachine"
TRACKER = "TrackerFunction"
ENGINES_LAYER = "EnginesLayer"


def _function_problems(resources: dict[str, Any], globals_: dict[str, Any], step: Step) -> list[str]:
    """What the step's function (one for every engine) lacks: code, entry point, timeout, and
    what its entry point needs to consume the choreography's events."""
    logical_id, handler = step.resource, f"{step.name}.entry.lambda_handler"
    resource = resources.get(logical_id)
    if resource is None:
        return [f"step {step.name!r}: no resource {logical_id} (AWS::Serverless::Function, "
                f"CodeUri functions/{step.name}/, Handler {handler})"]
    found = []
    properties = resource.get("Properties", {})
    if properties.get("CodeUri") != f"functions/{step.name}/":
        found.append(f"{logical_id}: CodeUri should be functions/{step.name}/")
    if properties.get("Handler") != handler:
        found.append(f"{logical_id}: Handler should be {handler}")
    timeout = properties.get("Timeout", globals_.get("Timeout"))
    if timeout != step.timeout_seconds:
        found.append(f"{logical_id}: Timeout is {timeout}, the registry says "
                     f"{step.timeout_seconds} (Step.timeout_seconds)")
    consumes = {"source": [EVENT_SOURCE], "detail-type": [step.consumes]}
    if _rule_patterns(resource) != [consumes]:
        found.append(f"{logical_id}: one EventBridgeRule event with Pattern {consumes}")
    if "EVENT_BUS_NAME" not in properties.get("Environment", {}).get("Variables", {}):
        found.append(f"{logical_id}: Environment variable EVENT_BUS_NAME")
    if {"Ref": ENGINES_LAYER} not in properties.get("Layers", []):
        found.append(f"{logical_id}: Layers [!Ref {ENGINES_LAYER}] (its entry point imports the "
                     "choreography runtime)")
    return found


def _rule_patterns(resource: dict[str, Any]) -> list[Any]:
    events = resource.get("Properties", {}).get("Events", {})
    return [event.get("Properties", {}).get("Pattern") for event in events.values()
            if event.get("Type") == "EventBridgeRule"]


def _log_group_problem(resources: dict[str, Any], function_id: str) -> str | None:
    log_group = function_id.removesuffix("Function") + "LogGroup"
    expected = {"Fn::Sub": f"/aws/lambda/${{{function_id}}}"}
    if resources.get(log_group, {}).get("Properties", {}).get("LogGroupName") != expected:
        return f"no {log_group} (AWS::Logs::LogGroup named /aws/lambda/${{{function_id}}})"
    return None


def _statements(properties: dict[str, Any]) -> list[dict[str, Any]]:
    return [statement for policy in properties.get("Policies", []) if isinstance(policy, dict)
            for statement in policy.get("Statement", [])]


def _grants(statements: list[dict[str, Any]], action: str, resource: Any) -> bool:
    """Whether a statement allows ``action`` on exactly ``resource`` (one of its resources)."""
    for statement in statements:
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        if (action in (actions if isinstance(actions, list) else [actions])
                and resource in (resources if isinstance(resources, list) else [resources])):
            return True
    return False


def distributed_map_problems(template: dict[str, Any], definition: dict[str, Any]) -> list[str]:
    """What the state machine's role lacks for a Distributed Map in ``definition`` reading its
    items from the data bucket: on AWS it starts child executions of the machine itself (which
    its policy can name only through a fixed Name) and reads the items with s3:GetObject."""
    distributed = [state for scope in asl.scopes(definition)
                   for state in scope["States"].values()
                   if state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode")
                   == "DISTRIBUTED"]
    if not distributed:
        return []
    machine = template.get("Resources", {}).get(STATE_MACHINE, {}).get("Properties", {})
    statements = _statements(machine)
    name = machine.get("Name", {}).get("Fn::Sub") if isinstance(machine.get("Name"), dict) else None
    found: list[str] = []
    if name is None:
        found.append(f"{STATE_MACHINE}: Name !Sub <name> (its policy names the machine itself)")
    else:
        arn = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
        if not _grants(statements, "states:StartExecution", {"Fn::Sub": f"{arn}:stateMachine:{name}"}):
            found.append(f"{STATE_MACHINE}: a Statement allowing states:StartExecution on "
                         f"!Sub {arn}:stateMachine:{name} (its Distributed Map's child executions)")
        if not _grants(statements, "states:StopExecution", {"Fn::Sub": f"{arn}:execution:{name}/*:*"}):
            found.append(f"{STATE_MACHINE}: a Statement allowing states:StopExecution on "
                         f"!Sub {arn}:execution:{name}/*:* (a failed Map Run stops its children)")
    if any("ItemReader" in state for state in distributed) and not _grants(
            statements, "s3:GetObject", {"Fn::Sub": "${DataBucket.Arn}/runs/*"}):
        found.append(f"{STATE_MACHINE}: a Statement allowing s3:GetObject on "
                     "!Sub ${DataBucket.Arn}/runs/* (where its ItemReader reads a run's items)")
    return found


def problems(template: dict[str, Any], steps: Sequence[Step] = STEPS,
             definition: dict[str, Any] | None = None) -> list[str]:
    """What ``template`` lacks for the registry's steps and the state machine ``definition``
    (by default statemachines/pipeline.asl.json), one sentence each (empty: all wired)."""
    resources = template.get("Resources", {})
    globals_ = template.get("Globals", {}).get("Function", {})
    outputs = template.get("Outputs", {})
    patterns = rule_patterns()
    orchestrator = resources.get(ORCHESTRATOR, {}).get("Properties", {})
    machine = resources.get(STATE_MACHINE, {}).get("Properties", {})
    found: list[str] = []
    for step in steps:
        found += _function_problems(resources, globals_, step)
        reference = {"Ref": step.resource}
        variables = orchestrator.get("Environment", {}).get("Variables", {})
        if variables.get(step.env_var) != reference:
            found.append(f"{ORCHESTRATOR}: Environment variable {step.env_var}: !Ref "
                         f"{step.resource}")
        invoke = {"LambdaInvokePolicy": {"FunctionName": reference}}
        if invoke not in orchestrator.get("Policies", []):
            found.append(f"{ORCHESTRATOR}: Policies entry LambdaInvokePolicy for {step.resource}")
        if invoke not in machine.get("Policies", []):
            found.append(f"{STATE_MACHINE}: Policies entry LambdaInvokePolicy for {step.resource}")
        substitution = machine.get("DefinitionSubstitutions", {}).get(step.arn_substitution)
        if substitution != {"Fn::GetAtt": [step.resource, "Arn"]}:
            found.append(f"{STATE_MACHINE}: DefinitionSubstitutions {step.arn_substitution}: "
                         f"!GetAtt {step.resource}.Arn")
        if outputs.get(step.output, {}).get("Value") != reference:
            found.append(f"Outputs: {step.output} with Value !Ref {step.resource}")
        if (problem := _log_group_problem(resources, step.resource)) is not None:
            found.append(problem)
    tracker = resources.get(TRACKER, {})
    if _rule_patterns(tracker) != [patterns["tracker"]]:
        found.append(f"{TRACKER}: one EventBridgeRule event with Pattern {patterns['tracker']}")
    found += distributed_map_problems(template, asl.load() if definition is None else definition)
    return found
