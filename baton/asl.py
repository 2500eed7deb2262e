"""The state machine's per-step parts, written from the step registry (``pipeline.steps``).

``statemachines/pipeline.asl.json`` is written by hand for what only Step Functions does (the
Map, the 304 Choice, the outcomes it assembles), but each step's Task takes its ``Retry`` and
``Catch`` from the registry: ``baton build`` rewrites them (``sync``), a test checks the file
is in step (``render(definition) == definition``), and ``problems`` names any step the
definition lacks, so a policy change is one edit in ``pipeline/policy.py``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.policy import RECORD_POLICY, RetryPolicy, asl_catch, asl_retry
from pipeline.steps import STEPS, Step

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "statemachines" / "pipeline.asl.json"
FAILURE_PATH = "$.failure"  # where every step's Catch puts the error, for its outcome
# Functions a Task may invoke besides the steps: the engine's own, with their retry policy.
ENGINE_FUNCTIONS: dict[str, RetryPolicy] = {"TrackerFunctionArn": RECORD_POLICY}
_SUBSTITUTION = re.compile(r"^\$\{(\w+)\}$")


def load(path: Path = DEFINITION) -> dict[str, Any]:
    """The definition as JSON."""
    return dict(json.loads(path.read_text()))


def dump(definition: dict[str, Any]) -> str:
    """The definition as the file keeps it (two-space indent, final newline)."""
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def scopes(machine: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The definition and every nested ItemProcessor/Iterator/Branch: each names its own states."""
    yield machine
    for state in machine["States"].values():
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from scopes(state[key])
        for branch in state.get("Branches", []):
            yield from scopes(branch)


def _substitution(state: dict[str, Any]) -> str | None:
    """The DefinitionSubstitutions name a Task's FunctionName is, if it is one."""
    if state.get("Type") != "Task":
        return None
    match = _SUBSTITUTION.match(str(state.get("Parameters", {}).get("FunctionName", "")))
    return match[1] if match else None


def step_of(state: dict[str, Any], steps: Sequence[Step] = STEPS) -> Step | str | None:
    """The registry step a Task invokes, the substitution name when it is no step and no engine
    function, or None."""
    name = _substitution(state)
    if name is None or name in ENGINE_FUNCTIONS:
        return None
    return next((step for step in steps if step.arn_substitution == name), name)



def step_tasks(machine: dict[str, Any], steps: Sequence[Step] = STEPS) -> list[tuple[str, Step]]:
    """(state name, step) of every Task invoking a registry step, along the success path."""
    found: list[tuple[str, Step]] = []
    for scope in scopes(machine):
        name: str | None = scope["StartAt"]
        seen: set[str] = set()
        while name is not None and name not in seen:
            seen.add(name)
            state = scope["States"].get(name, {})
            step = step_of(state, steps)
            if isinstance(step, Step):
                found.append((name, step))
            name = state.get("Next", state.get("Default"))
    return found


def problems(machine: dict[str, Any], steps: Sequence[Step] = STEPS) -> list[str]:
    """What the definition lacks or gets wrong against the registry, one sentence each."""
    found: list[str] = []
    tasks = step_tasks(machine, steps)
    for scope in scopes(machine):
        for name, state in scope["States"].items():
            step = step_of(state, steps)
            if isinstance(step, str):
                found.append(f"Task {name!r} invokes ${{{step}}}, which names no step of "
                             "pipeline.steps (a step's substitution is ${<Title>FunctionArn})")
            elif isinstance(step, Step) and "Catch" not in state:
                found.append(f"Task {name!r} has no Catch: add one going to its failure state")
    invoked = [step.name for _, step in tasks]
    previous = None
    for step in steps:
        if step.name not in invoked:
            where = f"after the Task of {previous.name!r}" if previous else "first in the Map"
            found.append(f"no Task invokes step {step.name!r}: add a Task named {step.state!r} "
                         f"with FunctionName ${{{step.arn_substitution}}} {where}, and "
                         f"{step.arn_substitution} to the state machine's DefinitionSubstitutions")
        previous = step
    if invoked != [step.name for step in steps if step.name in invoked]:
        found.append(f"the Tasks run the steps in the order {invoked}, the registry's is "
                     f"{[step.name for step in steps]}")
    for name, step in tasks:
        if name != step.state:
            found.append(f"the Task of step {step.name!r} is named {name!r}; the registry "
                         f"(Step.state) says {step.state!r}")
    return found


def render(machine: dict[str, Any], steps: Sequence[Step] = STEPS) -> dict[str, Any]:
    """``machine`` with every step Task's Retry and Catch as the registry says."""
    rendered = copy.deepcopy(machine)
    for scope in scopes(rendered):
        for state in scope["States"].values():
            engine_function = _substitution(state)
            if engine_function in ENGINE_FUNCTIONS:
                state["Retry"] = asl_retry(ENGINE_FUNCTIONS[engine_function])
                continue
            step = step_of(state, steps)
            if not isinstance(step, Step):
                continue
            state["Retry"] = asl_retry(step.policy)
            if "Catch" in state:
                state["Catch"] = asl_catch(state["Catch"][0]["Next"], FAILURE_PATH)
    return rendered


def sync(path: Path = DEFINITION, steps: Sequence[Step] = STEPS) -> bool:
    """Rewrite the per-step parts of the definition at ``path``; True when the file changed."""
    text = path.read_text()
    rendered = dump(render(json.loads(text), steps))
    if rendered == text:
        return False
    path.write_text(rendered)
    return True
