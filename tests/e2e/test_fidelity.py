"""The local cloud behaves like AWS wherever the pipeline depends on it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from baton.build import build_layer
from tests.e2e.conftest import ROLE, zip_handler


def invoke(lambdas: Any, name: str, event: dict) -> tuple[str | None, dict]:
    response = lambdas.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return response.get("FunctionError"), json.loads(response["Payload"].read())


def log_messages(logs: Any, function: str, marker: str, timeout_s: float = 15.0) -> list[str]:
    """The log lines of ``function`` that mention ``marker``, waiting for them to arrive."""
    deadline = time.monotonic() + timeout_s
    found: list[str] = []
    while time.monotonic() < deadline:
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        found = [e["message"] for e in events if marker in e["message"]]
        if found:
            return found
        time.sleep(0.25)
    return found


@pytest.fixture(scope="session")
def probe_layer(aws: Callable[[str], Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    """A layer with Powertools and pydantic, built by baton's layer builder."""
    layer_zip = build_layer(Path(__file__).parent / "probe_layer", Path("build"))
    published = aws("lambda").publish_layer_version(
        LayerName="fidelity-probe", Content={"ZipFile": layer_zip.read_bytes()},
        CompatibleRuntimes=["python3.11"],
    )
    return str(published["LayerVersionArn"])


def test_raised_exception_keeps_its_class_name_as_error_type(deploy_function, aws):
    name = deploy_function("fidelity.raise_transient", ("fidelity.py",))

    function_error, payload = invoke(aws("lambda"), name, {"item": "a"})

    assert function_error == "Unhandled"
    assert payload["errorType"] == "TransientError"
    assert payload["errorMessage"] == "upstream hiccup for a"


def _run_state_machine(aws: Any, definition: dict, execution_input: str = "{}") -> tuple[dict, list[dict]]:
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"fidelity-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE,
    )["stateMachineArn"]
    try:
        execution = sfn.start_execution(stateMachineArn=machine, input=execution_input)["executionArn"]
        deadline = time.monotonic() + 60
        while (result := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "state machine did not finish in 60 s"
            time.sleep(0.2)
        history = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        return result, history
    finally:
        sfn.delete_state_machine(stateMachineArn=machine)


def _task(function_arn: str, retry_on: list[str]) -> dict:
    return {
        "StartAt": "Call flaky function",
        "States": {
            "Call flaky function": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload": {"item": "b"}},
                "Retry": [{"ErrorEquals": retry_on, "IntervalSeconds": 1, "MaxAttempts": 2,
                           "BackoffRate": 1.0}],
                "Catch": [{"ErrorEquals": ["TransientError"], "ResultPath": "$.caught",
                           "Next": "Record failure"}],
                "End": True,
            },
            "Record failure": {"Type": "Pass", "End": True},
        },
    }


def _attempts(history: list[dict]) -> int:
    return sum(1 for event in history if event["type"] == "TaskScheduled")


def test_step_functions_retry_and_catch_match_the_error_class(deploy_function, aws):
    name = deploy_function("fidelity.raise_transient", ("fidelity.py",))
    arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]

    result, history = _run_state_machine(aws, _task(arn, ["TransientError"]))

    assert result["status"] == "SUCCEEDED"
    assert _attempts(history) == 3  # the first call and two retries
    caught = json.loads(result["output"])["caught"]
    assert caught["Error"] == "TransientError"
    assert "upstream hiccup for b" in caught["Cause"]


def test_step_functions_do_not_retry_on_a_different_error_name(deploy_function, aws):
    name = deploy_function("fidelity.raise_transient", ("fidelity.py",))
    arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]

    result, history = _run_state_machine(aws, _task(arn, ["SomeOtherError"]))

    assert result["status"] == "SUCCEEDED"  # still caught, by the Catch on TransientError
    assert _attempts(history) == 1


def test_a_throttled_lambda_task_fails_with_the_name_its_retry_matches(deploy_function, aws):
    name = deploy_function("fidelity.raise_transient", ("fidelity.py",))
    aws("lambda").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    definition = _task(arn, ["Lambda.TooManyRequestsException"])
    definition["States"]["Call flaky function"]["Catch"][0]["ErrorEquals"] = [
        "Lambda.TooManyRequestsException"]

    result, history = _run_state_machine(aws, definition)

    assert result["status"] == "SUCCEEDED"  # retried, then caught: the name matched both times
    assert _attempts(history) == 3
    assert json.loads(result["output"])["caught"]["Error"] == "Lambda.TooManyRequestsException"


def test_package_outside_code_and_layers_fails_initialisation(deploy_function, aws):
    name = deploy_function("needs_missing_package.handler", ("needs_missing_package.py",))

    function_error, payload = invoke(aws("lambda"), name, {})

    assert function_error == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'pydantic'" in payload["errorMessage"]


def test_same_package_imports_when_a_layer_provides_it(deploy_function, aws, probe_layer):
    name = deploy_function("powertools_logger.handler", ("powertools_logger.py",),
                           layers=[probe_layer])

    function_error, payload = invoke(aws("lambda"), name, {"marker": "layer-ok"})

    assert function_error is None
    assert payload == {"logged": "layer-ok"}


def test_handler_past_its_timeout_fails_with_the_lambda_timeout_error(deploy_function, aws):
    name = deploy_function("fidelity.sleep_past_timeout", ("fidelity.py",), timeout=1)

    function_error, payload = invoke(aws("lambda"), name, {"seconds": 5})

    assert function_error == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]


def test_stdlib_logging_reaches_cloudwatch_logs(deploy_function, aws):
    name = deploy_function("fidelity.log_with_stdlib", ("fidelity.py",))
    marker = f"stdlib-{uuid.uuid4().hex[:8]}"

    invoke(aws("lambda"), name, {"marker": marker})

    lines = log_messages(aws("logs"), name, marker)
    assert any(line.startswith("[INFO]") and f"stdlib says {marker}" in line for line in lines)


def test_powertools_logger_reaches_cloudwatch_logs(deploy_function, aws, probe_layer):
    name = deploy_function("powertools_logger.handler", ("powertools_logger.py",),
                           layers=[probe_layer])
    marker = f"powertools-{uuid.uuid4().hex[:8]}"

    invoke(aws("lambda"), name, {"marker": marker})

    lines = log_messages(aws("logs"), name, marker)
    records = [json.loads(line) for line in lines]
    assert any(r["message"] == "powertools says" and r["marker"] == marker for r in records)


@pytest.mark.parametrize(("variables", "expected"), [
    ({}, "false"),  # no daemon here: the SDK is switched off
    ({"AWS_XRAY_SDK_ENABLED": "true"}, "true"),  # the function's own choice wins
    ({"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000"}, None),  # a daemon it names keeps it on
])
def test_xray_sdk_is_off_where_no_daemon_listens(aws, variables, expected):
    lambdas = aws("lambda")
    name = f"t-tracing-{uuid.uuid4().hex[:8]}"
    lambdas.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE,
        Handler="fidelity.tracing_environment", Code={"ZipFile": zip_handler("fidelity.py")},
        TracingConfig={"Mode": "Active"}, Environment={"Variables": variables},
    )
    try:
        error, seen = invoke(lambdas, name, {})
    finally:
        lambdas.delete_function(FunctionName=name)

    assert error is None, seen
    assert seen["AWS_XRAY_SDK_ENABLED"] == expected
    # Still traced as far as the handler can see: its trace id, which its log lines carry.
    assert seen["_X_AMZN_TRACE_ID"].startswith("Root=1-")


def test_map_max_concurrency_path_bounds_the_iterations(deploy_function, aws, tmp_path):
    name = deploy_function("fidelity.count_concurrent", ("fidelity.py",))
    arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    definition = {
        "StartAt": "Each item",
        "States": {"Each item": {
            "Type": "Map", "ItemsPath": "$.items", "MaxConcurrencyPath": "$.limit",
            "ItemSelector": {"folder.$": "$.folder"},
            "ItemProcessor": {"StartAt": "Count", "States": {"Count": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload.$": "$"},
                "OutputPath": "$.Payload", "End": True}}},
            "End": True}},
    }
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(name=f"fidelity-map-{uuid.uuid4().hex[:8]}",
                                       definition=json.dumps(definition),
                                       roleArn=ROLE)["stateMachineArn"]
    try:
        execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(
            {"items": [1, 2, 3, 4], "limit": 1, "folder": str(tmp_path)}))["executionArn"]
        while (result := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            time.sleep(0.2)
    finally:
        sfn.delete_state_machine(stateMachineArn=machine)

    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"]) == [{"others": 0}] * 4


def test_eventbridge_target_failures_retry_then_reach_the_on_failure_queue(deploy_function, aws):
    name = deploy_function("fidelity.raise_transient", ("fidelity.py",))
    lambdas, events, sqs = aws("lambda"), aws("events"), aws("sqs")
    arn = lambdas.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    queue = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    lambdas.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}})
    bus = events.create_event_bus(Name=f"{name}-bus")["EventBusArn"].rsplit("/", 1)[-1]
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["fidelity"]}))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "fn", "Arn": arn}])

    events.put_events(Entries=[{"Source": "fidelity", "DetailType": "probe", "EventBusName": bus,
                                "Detail": json.dumps({"item": "c"})}])

    deadline = time.monotonic() + 30
    messages: list[dict] = []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    assert messages, "no failure record reached the OnFailure queue in 30 s"
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2  # the call and one retry
    assert record["responsePayload"]["errorType"] == "TransientError"
    assert record["requestPayload"]["detail"] == {"item": "c"}


def test_throttled_async_events_wait_for_capacity_instead_of_failing(deploy_function, aws,
                                                                    tmp_path):
    name = deploy_function("fidelity.leave_a_mark", ("fidelity.py",))
    lambdas, sqs = aws("lambda"), aws("sqs")
    queue = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    lambdas.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    lambdas.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}})

    for index in range(3):  # three at once, one at a time allowed
        lambdas.invoke(FunctionName=name, InvocationType="Event",
                       Payload=json.dumps({"folder": str(tmp_path), "name": f"m{index}"}).encode())

    deadline = time.monotonic() + 30
    while len(list(tmp_path.iterdir())) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m0", "m1", "m2"]
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", []) == []


def invocation_blocks(logs: Any, function: str, request_ids: list[str],
                      timeout_s: float = 15.0) -> dict[str, list[str]]:
    """Each invocation's lines in the function's log, from its START line to its END line."""
    deadline = time.monotonic() + timeout_s
    blocks: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        blocks, current = {}, None
        for event in events:
            message = event["message"]
            if message.startswith("START RequestId: "):
                current = message.split()[2]
                blocks[current] = []
            elif message.startswith("END RequestId: "):
                current = None
            elif current is not None:
                blocks[current].append(message)
        if all(request_id in blocks for request_id in request_ids):
            return blocks
        time.sleep(0.25)
    return blocks


def test_every_log_line_reaches_the_invocation_that_wrote_it(deploy_function, aws):
    name = deploy_function("log_lines.handler", ("log_lines.py",))
    lambdas = aws("lambda")
    returned = [invoke(lambdas, name, {"marker": f"m{index}", "lines": 3}) for index in range(3)]
    raised = invoke(lambdas, name, {"marker": "m3", "lines": 3, "raise": True})
    ids = [payload["request_id"] for _, payload in returned]
    ids.append(raised[1]["errorMessage"].rsplit(" ", 1)[-1])

    blocks = invocation_blocks(aws("logs"), name, ids)

    assert raised[0] == "Unhandled"
    for index, request_id in enumerate(ids):
        lines = blocks[request_id]
        assert [line for line in lines if f"m{index} print" in line] == [
            f"m{index} print {n} of {request_id}" for n in range(3)]
        assert sum(f"m{index} logging" in line and request_id in line for line in lines) == 3
        assert lines.count(f"m{index} last line of {request_id}") == 1
        assert not any(f"m{other} " in line for line in lines for other in range(4) if other != index)


# -- payload limits as AWS enforces them ---------------------------------------------------------

LAMBDA_SYNC_LIMIT = 6_291_456
LAMBDA_ASYNC_LIMIT = 1_048_576
STATES_LIMIT = 262_144
EVENTS_LIMIT = 1_048_576


def padded(size: int) -> bytes:
    """A compact JSON object of exactly ``size`` bytes."""
    return b'{"pad":"' + b"x" * (size - len(b'{"pad":""}')) + b'"}'


def _refusal(call: Callable[[], Any]) -> tuple[str, int, str]:
    """The error code, HTTP status and message the local cloud refused ``call`` with."""
    with pytest.raises(ClientError) as refused:
        call()
    error, metadata = refused.value.response["Error"], refused.value.response["ResponseMetadata"]
    return error["Code"], metadata["HTTPStatusCode"], error["Message"]


def _failure(history: list[dict]) -> dict:
    failed = [e["executionFailedEventDetails"] for e in history if e["type"] == "ExecutionFailed"]
    assert failed, "the execution has no ExecutionFailed event"
    return dict(failed[-1])


def test_invoke_over_the_synchronous_payload_limit_is_refused_as_on_aws(deploy_function, aws):
    name = deploy_function("payloads.measure", ("payloads.py",))
    lambdas = aws("lambda")

    code, status, message = _refusal(
        lambda: lambdas.invoke(FunctionName=name, Payload=padded(LAMBDA_SYNC_LIMIT + 1)))
    answered = lambdas.invoke(FunctionName=name, Payload=padded(LAMBDA_SYNC_LIMIT))

    assert (code, status) == ("RequestEntityTooLargeException", 413)
    assert message == "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    assert json.loads(answered["Payload"].read()) == {"received": LAMBDA_SYNC_LIMIT}


def test_asynchronous_invoke_over_1_mb_is_refused_as_on_aws(deploy_function, aws, tmp_path):
    name = deploy_function("payloads.measure", ("payloads.py",))
    lambdas = aws("lambda")

    code, status, message = _refusal(lambda: lambdas.invoke(
        FunctionName=name, InvocationType="Event", Payload=padded(LAMBDA_ASYNC_LIMIT + 1)))
    accepted = lambdas.invoke(FunctionName=name, InvocationType="Event", Payload=padded(LAMBDA_ASYNC_LIMIT))

    assert (code, status) == ("RequestEntityTooLargeException", 413)
    assert message == (f"{LAMBDA_ASYNC_LIMIT + 1} byte payload is too large for the Event invocation type "
                       f"(limit {LAMBDA_ASYNC_LIMIT} bytes)")
    assert accepted["StatusCode"] == 202


def _sized_task(function_arn: str, size: int) -> dict:
    """A task whose function returns ``size`` bytes, kept out of the state output by ResultSelector."""
    everything = ["States.ALL"]
    return {
        "StartAt": "Make result",
        "States": {
            "Make result": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload": {"size": size}},
                "ResultSelector": {"status.$": "$.StatusCode"},
                "Retry": [{"ErrorEquals": everything, "IntervalSeconds": 1, "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": everything, "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }


def test_task_result_over_256_kib_fails_the_execution_uncaught(deploy_function, aws):
    name = deploy_function("payloads.sized_result", ("payloads.py",))
    arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]

    over, over_history = _run_state_machine(aws, _sized_task(arn, STATES_LIMIT))
    under, _ = _run_state_machine(aws, _sized_task(arn, STATES_LIMIT - 4096))

    assert over["status"] == "FAILED"
    assert _failure(over_history)["error"] == "States.DataLimitExceeded"
    assert _attempts(over_history) == 1  # States.ALL neither retries nor catches it, as on AWS
    assert under["status"] == "SUCCEEDED"
    assert json.loads(under["output"]) == {"status": 200}


def _collecting_map(function_arn: str) -> dict:
    return {
        "StartAt": "Each size",
        "States": {"Each size": {
            "Type": "Map", "ItemsPath": "$.sizes",
            "ItemProcessor": {"StartAt": "Make result", "States": {"Make result": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload": {"size.$": "$"}},
                "OutputPath": "$.Payload", "End": True}}},
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
            "End": True},
            "Caught": {"Type": "Pass", "End": True}},
    }


def test_map_collecting_over_256_kib_fails_the_execution(deploy_function, aws):
    name = deploy_function("payloads.sized_result", ("payloads.py",))
    arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    item = 100_000  # each result well under the limit: only their collection is over it

    over, over_history = _run_state_machine(aws, _collecting_map(arn), json.dumps({"sizes": [item] * 3}))
    under, _ = _run_state_machine(aws, _collecting_map(arn), json.dumps({"sizes": [item] * 2}))

    assert over["status"] == "FAILED"
    failure = _failure(over_history)
    assert failure["error"] == "States.DataLimitExceeded"
    assert "Each size" in failure["cause"]
    assert under["status"] == "SUCCEEDED"
    assert [len(result["blob"]) for result in json.loads(under["output"])] == [item, item]


def test_execution_input_over_256_kib_is_refused_at_start(aws):
    sfn = aws("stepfunctions")
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": "ok", "End": True}}}
    machine = sfn.create_state_machine(name=f"fidelity-input-{uuid.uuid4().hex[:8]}",
                                       definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    try:
        code, status, message = _refusal(lambda: sfn.start_execution(
            stateMachineArn=machine, input=padded(STATES_LIMIT + 1).decode()))
        started = sfn.start_execution(stateMachineArn=machine, input=padded(STATES_LIMIT).decode())
        while (result := sfn.describe_execution(executionArn=started["executionArn"]))["status"] == "RUNNING":
            time.sleep(0.2)
    finally:
        sfn.delete_state_machine(stateMachineArn=machine)

    assert (code, status) == ("ValidationException", 400)
    assert "Value at 'input' failed to satisfy constraint" in message
    assert "262144 bytes" in message
    assert result["status"] == "SUCCEEDED"


def test_put_events_over_1_mb_is_refused_as_on_aws(aws):
    events = aws("events")

    def entry(detail_bytes: int) -> dict:
        return {"Source": "fidelity", "DetailType": "probe", "Detail": padded(detail_bytes).decode()}

    fixed = len("fidelity") + len("probe")  # AWS counts Source and DetailType too
    one_over = _refusal(lambda: events.put_events(Entries=[entry(EVENTS_LIMIT - fixed + 1)]))
    together_over = _refusal(lambda: events.put_events(Entries=[entry(600_000), entry(600_000)]))
    accepted = events.put_events(Entries=[entry(EVENTS_LIMIT - fixed)])

    refusal = ("ValidationException", 400, "Total size of the entries in the request is over the limit.")
    assert one_over == refusal
    assert together_over == refusal  # the limit is on the request, not on each entry
    assert accepted["FailedEntryCount"] == 0
    assert accepted["Entries"][0]["EventId"]


def test_condition_expressions_are_checked_the_same_way_each_time(aws):
    # The local cloud remembers each expression's grammar check (launcher patch): a malformed
    # expression must still be refused every time, and a valid one still evaluated per item.
    dynamodb = aws("dynamodb")
    table = f"conditions-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                {"AttributeName": "sk", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                     {"AttributeName": "sk", "KeyType": "RANGE"}])
    for sk, size in (("a", 1), ("b", 5), ("c", 9)):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": sk},
                                                 "size": {"N": str(size)}})
    refusals = []
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            dynamodb.put_item(TableName=table, Item={"pk": {"S": "p"}, "sk": {"S": "d"}},
                              ConditionExpression="attribute_not_exists(pk) AND AND size > :s",
                              ExpressionAttributeValues={":s": {"N": "1"}})
        refusals.append(refused.value.response["Error"])
    big = [dynamodb.query(TableName=table, KeyConditionExpression="pk = :p",
                          FilterExpression="size > :s",
                          ExpressionAttributeValues={":p": {"S": "p"}, ":s": {"N": str(limit)}},
                          )["Items"] for limit in (2, 6)]

    assert refusals[0]["Code"] == "ValidationException"
    assert refusals[0] == refusals[1]
    assert "Invalid ConditionExpression" in refusals[0]["Message"]
    assert [[item["sk"]["S"] for item in items] for items in big] == [["b", "c"], ["c"]]
    assert "d" not in [item["sk"]["S"] for item in dynamodb.scan(TableName=table)["Items"]]
