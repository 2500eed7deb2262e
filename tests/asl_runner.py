"""A tiny JSONPath-mode ASL interpreter: just what statemachines/pipeline.asl.json uses.

Not an emulator: it exists so unit tests can push data through the state machine's paths
(Parameters, ResultSelector, ResultPath, Catch, Retry, Choice, Map) without a cloud, and compare
its outcomes with the orchestrator's. Supported: Pass, Task, Succeed, Fail (with ErrorPath and
CausePath; it raises ExecutionFailed, as the execution fails), Choice (StringEquals, BooleanEquals,
IsNull, And, Or, Not), Map (inline or distributed, run sequentially; a distributed Map's items
from ItemsPath or from a JSON ItemReader on s3:getObject, read through ``read_object``);
InputPath, a Task's OutputPath; paths ``$``, ``$.a.b``, ``$$.Map.Item.Value(.a.b)`` and
``$$.Map.Item.Index``; the intrinsics States.Format, States.JsonToString, States.ArrayLength and
States.ArrayGetItem. Retry counts tries like ASL; waits are not taken.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

# (resource, parameters) -> result; raises TaskFailed to fail the task.
TaskHandler = Callable[[str, dict[str, Any]], Any]
# (bucket, key) -> the object's text; raises KeyError when there is none.
ObjectReader = Callable[[str, str], str]
S3_GET_OBJECT = "arn:aws:states:::s3:getObject"


class TaskFailed(Exception):
    """A task failure as ASL sees it: an error name and a cause string."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class ExecutionFailed(Exception):
    """A Fail state reached: the execution (an iteration, and with it its Map) fails."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


def get_path(data: Any, path: str, context: dict[str, Any] | None = None) -> Any:
    """The value at a reference path; KeyError when it does not exist (as States.Runtime)."""
    if path.startswith("$$"):
        data, path = context or {}, path[1:]
    if path == "$":
        return data
    for part in path[2:].split("."):
        data = data[part]
    return data


def _intrinsic(expression: str, data: Any, context: dict[str, Any]) -> Any:
    name, _, rest = expression.partition("(")
    args_text = rest[:-1]
    if name == "States.Format":
        match = re.fullmatch(r"'((?:[^'\\]|\\.)*)'\s*,\s*(.*)", args_text)
        assert match, expression
        template, paths = match[1], [arg.strip() for arg in match[2].split(",")]
        for path in paths:
            template = template.replace("{}", str(get_path(data, path, context)), 1)
        return template
    # Paths or JSON literals, none of them holding a comma: enough for this machine.
    args = [get_path(data, arg, context) if arg.startswith("$") else json.loads(arg)
            for arg in (text.strip() for text in args_text.split(","))]
    if name == "States.JsonToString":
        return json.dumps(args[0], separators=(",", ":"))
    if name == "States.ArrayLength":
        return len(args[0])
    if name == "States.ArrayGetItem":
        array, index = args
        return array[index]  # IndexError when out of range (as States.Runtime)
    raise NotImplementedError(name)


def render(template: Any, data: Any, context: dict[str, Any] | None = None) -> Any:
    """A Parameters/ResultSelector/ItemSelector template applied to ``data``."""
    context = context or {}
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = (
                    _intrinsic(value, data, context)
                    if value.startswith("States.")
                    else get_path(data, value, context)
                )
            else:
                out[key] = render(value, data, context)
        return out
    if isinstance(template, list):
        return [render(value, data, context) for value in template]
    return template


def put_result(data: Any, result_path: str | None, result: Any) -> Any:
    """``data`` with ``result`` placed at ``result_path`` (None: discard, "$": replace)."""
    if result_path is None:
        return data
    if result_path == "$":
        return result
    data = copy.deepcopy(data)
    target = data
    parts = result_path[2:].split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = result
    return data


def _choice_matches(rule: dict[str, Any], data: Any) -> bool:
    if "Or" in rule:
        return any(_choice_matches(inner, data) for inner in rule["Or"])
    if "And" in rule:
        return all(_choice_matches(inner, data) for inner in rule["And"])
    if "Not" in rule:
        return not _choice_matches(rule["Not"], data)
    value = get_path(data, rule["Variable"])
    if "StringEquals" in rule:
        return bool(value == rule["StringEquals"])
    if "BooleanEquals" in rule:
        return value is rule["BooleanEquals"]
    if "IsNull" in rule:
        return (value is None) == rule["IsNull"]
    raise NotImplementedError(rule)


def _names(rule: dict[str, Any], failure: TaskFailed) -> bool:
    return failure.error in rule["ErrorEquals"] or "States.ALL" in rule["ErrorEquals"]


def _run_task(state: dict[str, Any], data: Any, tasks: TaskHandler) -> tuple[Any, str | None]:
    """(output, next state name) of a Task, after its retries and catches."""
    parameters = render(state.get("Parameters", {}), data)
    tries: dict[int, int] = {}
    while True:
        try:
            result = tasks(state["Resource"], parameters)
            break
        except TaskFailed as failure:
            # ASL: the first retrier naming the error decides; each retrier counts its own tries.
            index = next(
                (i for i, retrier in enumerate(state.get("Retry", [])) if _names(retrier, failure)),
                None,
            )
            if index is not None:
                tries[index] = tries.get(index, 0) + 1
                if tries[index] <= state["Retry"][index].get("MaxAttempts", 3):
                    continue  # retry, without waiting
            for catcher in state.get("Catch", []):
                if _names(catcher, failure):
                    caught = {"Error": failure.error, "Cause": failure.cause}
                    return put_result(data, catcher.get("ResultPath", "$"), caught), catcher["Next"]
            raise
    if "ResultSelector" in state:
        result = render(state["ResultSelector"], result)
    data = put_result(data, state.get("ResultPath", "$"), result)
    if "OutputPath" in state:
        data = get_path(data, state["OutputPath"])
    return data, state.get("Next")


def _map_items(state: dict[str, Any], data: Any, context: dict[str, Any],
               read_object: ObjectReader | None) -> list[Any]:
    """The items a Map iterates: its ItemsPath, or what its ItemReader reads from S3."""
    reader = state.get("ItemReader")
    if reader is None:
        return list(get_path(data, state.get("ItemsPath", "$"), context))
    if reader["Resource"] != S3_GET_OBJECT or reader.get("ReaderConfig", {}).get("InputType") != "JSON":
        raise NotImplementedError(reader)
    mode = state["ItemProcessor"]["ProcessorConfig"]["Mode"]
    assert mode == "DISTRIBUTED", "ItemReader needs a distributed Map"
    assert "ItemsPath" not in state, "ItemReader and ItemsPath exclude each other"
    location = render(reader["Parameters"], data, context)
    if read_object is None:
        raise ValueError("this machine reads its items from S3: pass read_object")
    items = json.loads(read_object(location["Bucket"], location["Key"]))
    assert isinstance(items, list), "a JSON ItemReader reads an array"
    return items


def run_machine(
    machine: dict[str, Any], data: Any, tasks: TaskHandler, context: dict[str, Any] | None = None,
    read_object: ObjectReader | None = None,
) -> Any:
    """Run ``machine`` (a definition or a Map's ItemProcessor) on ``data``; its output.
    ``read_object`` gives a Map's ItemReader the S3 objects it reads."""
    context = context or {}
    name: str | None = machine["StartAt"]
    while name is not None:
        state = machine["States"][name]
        kind = state["Type"]
        if kind == "Pass":
            # InputPath narrows what Parameters see; ResultPath still places into the raw input.
            effective = get_path(data, state["InputPath"], context) if "InputPath" in state else data
            result = render(state["Parameters"], effective, context) if "Parameters" in state else effective
            data = put_result(data, state.get("ResultPath", "$"), result)
            name = state.get("Next")
        elif kind == "Task":
            data, name = _run_task(state, data, tasks)
        elif kind == "Choice":
            name = next(
                (rule["Next"] for rule in state["Choices"] if _choice_matches(rule, data)),
                state.get("Default"),
            )
            assert name is not None, "no Choice rule matched and no Default"
        elif kind == "Map":
            outputs = []
            for index, item in enumerate(_map_items(state, data, context, read_object)):
                item_context = {**context, "Map": {"Item": {"Index": index, "Value": item}}}
                item_input = render(state["ItemSelector"], data, item_context)
                outputs.append(run_machine(state["ItemProcessor"], item_input, tasks, item_context,
                                           read_object))
            data = put_result(data, state.get("ResultPath", "$"), outputs)
            name = state.get("Next")
        elif kind == "Succeed":
            return data
        elif kind == "Fail":
            raise ExecutionFailed(*(
                get_path(data, state[f"{field}Path"], context) if f"{field}Path" in state
                else state.get(field, "") for field in ("Error", "Cause")))
        else:
            raise NotImplementedError(kind)
        # An End state's next is None, which ends the loop; a caught Task goes to its catcher's
        # Next even when it is an End state.
    return data
