"""Fault injection: the SPEC and its errors, the seeded draw, `baton run --faults` on bad input,
and the local cloud's injector driven through its hooks with fakes."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from baton import faults
from baton.cli import main
from baton.localcloud import faults as injector

GOOD = "http://127.0.0.1:8765/pages/garden"
FUNCTION_AUTH = ("AWS4-HMAC-SHA256 Credential=000000000000/20261130/us-east-1/{service}/"
                 "aws4_request, SignedHeaders=host, Signature=x")
CLI_AUTH = "AWS4-HMAC-SHA256 Credential=test/20261130/us-east-1/{service}/aws4_request, Signature=x"


# ---- the SPEC --------------------------------------------------------------------------------

def test_a_spec_names_kinds_with_a_rate_or_an_attempt():
    assert faults.parse(" lambda.throttle=0.1, lambda.crash=@2 ,s3.slowdown=1") == (
        faults.Rule("lambda.throttle", rate=0.1), faults.Rule("lambda.crash", nth=2),
        faults.Rule("s3.slowdown", rate=1.0))
    assert ",".join(map(str, faults.parse("lambda.throttle=0.10,lambda.crash=@2"))) == (
        "lambda.throttle=0.1,lambda.crash=@2")


@pytest.mark.parametrize(("spec", "named"), [
    ("", "empty fault spec"),
    ("lambda.throttle", "'lambda.throttle': expected kind=rate or kind=@k"),
    ("lambda.throttle=", "'lambda.throttle=': expected kind=rate"),
    ("=0.1", "'=0.1': expected kind=rate"),
    ("lambda.thrott=0.1", "unknown fault kind 'lambda.thrott' in 'lambda.thrott=0.1'"),
    ("lambda.crash=0.1,lambda.crash=@1", "'lambda.crash' given twice"),
    ("lambda.crash=lots", "'lambda.crash=lots': the rate must be a number"),
    ("lambda.crash=0", "'lambda.crash=0': the rate must be above 0 and at most 1"),
    ("lambda.crash=1.5", "the rate must be above 0 and at most 1"),
    ("lambda.crash=nan", "the rate must be above 0 and at most 1"),
    ("lambda.crash=@0", "'lambda.crash=@0': @k needs a whole number k >= 1"),
    ("lambda.crash=@x", "@k needs a whole number"),
    ("lambda.crash=0.1,", "bad fault '': expected kind=rate"),
])
def test_a_bad_spec_is_refused_naming_the_bad_part(spec, named):
    with pytest.raises(faults.SpecError, match=named.replace("(", r"\(").replace("*", r"\*")):
        faults.parse(spec)


def test_help_lists_every_kind_with_the_aws_error_it_produces(capsys):
    assert main(["run", "--faults", "help"]) == 0
    out = capsys.readouterr().out
    for kind in faults.CATALOGUE:
        assert f"  {kind.name} " in out
    for error in ("TooManyRequestsException", "ServiceException", "Runtime.ExitError",
                  "Sandbox.Timedout", "ProvisionedThroughputExceededException",
                  "TransactionConflict", "SlowDown", "Throttling"):
        assert error in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--faults", "lambda.boom=0.1"], "argument --faults: unknown fault kind 'lambda.boom'"),
    (["--faults", "lambda.crash=2"], "argument --faults: bad fault 'lambda.crash=2'"),
    (["--faults", "lambda.crash=0.1", "--seed", "x"], "argument --seed"),
    (["--faults", "lambda.crash=0.1", "--target", "aws"], "--faults works only with the local cloud"),
    (["--faults", "lambda.crash=0.1", "--target", "localstack"], "never reach LocalStack or AWS"),
    (["--faults", "lambda.crash=0.1", "--no-wait"], "drop --no-wait"),
])
def test_baton_run_refuses_bad_faults_with_exit_2_before_contacting_anything(argv, message, capsys):
    try:
        code = main(["run", "--url", GOOD, *argv])
    except SystemExit as exit_:  # argparse's own usage errors
        code = int(exit_.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err


# ---- the draw --------------------------------------------------------------------------------

def test_the_identity_of_a_request_ignores_run_id_timestamps_and_request_ids():
    one = '{"run_id": "run-1", "at": "2026-11-30T05:00:00.123+00:00", "id": "%s", "url": "u"}'
    first = faults.identity(one % "0b8e2d5c-8a5e-4a57-9a6b-9a1d7b4e0c11", "run-1")
    assert first == faults.identity(
        (one % "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b").replace("05:00:00.123", "06:59:01.5")
        .replace("run-1", "run-2"), "run-2")
    assert first != faults.identity((one % "x").replace('"u"', '"v"'), "run-1")


def test_the_draw_depends_on_the_request_and_its_attempt_not_on_arrival_order():
    rule = faults.Rule("lambda.crash", rate=0.2)
    calls = [(f"request-{n}", attempt) for n in range(200) for attempt in (1, 2, 3)]
    forward = {call: faults.strikes(rule, 7, *call) for call in calls}
    backward = {call: faults.strikes(rule, 7, *call) for call in reversed(calls)}
    other_seed = {call: faults.strikes(rule, 8, *call) for call in calls}
    assert forward == backward
    assert forward != other_seed


def test_a_rate_strikes_about_that_fraction_and_at_k_strikes_the_kth_attempt_only():
    rule = faults.Rule("s3.slowdown", rate=0.1)
    struck = sum(faults.strikes(rule, 1, f"r{n}", 1) for n in range(10_000))
    assert 800 < struck < 1200
    second = faults.Rule("s3.slowdown", nth=2)
    assert [faults.strikes(second, 1, "r", attempt) for attempt in (1, 2, 3)] == [False, True, False]


# ---- the local cloud's injector ----------------------------------------------------------------

@pytest.fixture
def cloud() -> injector.Faults:
    return injector.Faults()


def put(cloud: injector.Faults, spec: str, **settings: Any) -> tuple[int, dict[str, Any]]:
    answer = cloud.http_request(
        "PUT", injector.ADMIN_PATH, {}, json.dumps({"spec": spec, **settings}).encode())
    assert answer is not None
    return answer[0], json.loads(answer[2])


def dynamodb_call(cloud: injector.Faults, operation: str = "PutItem", auth: str = FUNCTION_AUTH,
                  body: str = '{"TableName": "t", "Item": {"pk": {"S": "a"}}}') -> Any:
    return cloud.http_request("POST", "/", {
        "authorization": auth.format(service="dynamodb"),
        "x-amz-target": f"DynamoDB_20120810.{operation}"}, body.encode())


def test_the_admin_path_sets_reads_and_clears_the_faults(cloud):
    assert put(cloud, "dynamodb.throttle=@1", seed=3, run_id="run-1") == (200, {
        "active": True, "spec": "dynamodb.throttle=@1", "seed": 3, "run_id": "run-1",
        "functions": [], "injected": {}})
    assert dynamodb_call(cloud) is not None
    status, _, body = cloud.http_request("DELETE", injector.ADMIN_PATH, {}, b"")
    assert (status, json.loads(body)["injected"]) == (200, {"dynamodb.throttle": 1})
    assert json.loads(cloud.http_request("GET", injector.ADMIN_PATH, {}, b"")[2])["active"] is False
    assert dynamodb_call(cloud) is None  # cleared: served as usual


@pytest.mark.parametrize(("settings", "message"), [
    ({"spec": "nope=1"}, "unknown fault kind 'nope'"),
    ({"spec": "s3.slowdown=0.1", "seed": "7"}, "seed must be a whole number"),
    ({"spec": "s3.slowdown=0.1", "functions": "f"}, "functions must be a list"),
])
def test_the_admin_path_refuses_bad_settings_and_keeps_injection_off(cloud, settings, message):
    status, _, body = cloud.http_request("PUT", injector.ADMIN_PATH, {},
                                         json.dumps(settings).encode())
    assert status == 400 and message in json.loads(body)["message"]
    assert cloud.state()["active"] is False


def test_data_faults_answer_in_the_services_error_shape_and_only_to_functions(cloud):
    put(cloud, "dynamodb.throttle=1")
    assert dynamodb_call(cloud, auth=CLI_AUTH) is None  # the CLI's follow and poll are served
    status, _, body = dynamodb_call(cloud)
    assert status == 400 and json.loads(body)["__type"].endswith(
        "#ProvisionedThroughputExceededException")
    put(cloud, "dynamodb.conflict=1")
    assert dynamodb_call(cloud, "GetItem") is None  # a read meets no transaction conflict
    assert json.loads(dynamodb_call(cloud, "UpdateItem")[2])["__type"].endswith(
        "#TransactionConflictException")
    cancelled = json.loads(dynamodb_call(cloud, "TransactWriteItems",
                                         body='{"TransactItems": [{}, {}]}')[2])
    assert cancelled["CancellationReasons"][0]["Code"] == "TransactionConflict"
    assert [reason["Code"] for reason in cancelled["CancellationReasons"]] == [
        "TransactionConflict", "None"]
    put(cloud, "s3.slowdown=1,sns.throttle=1")
    status, _, body = cloud.http_request("PUT", "/bucket/key",
                                         {"authorization": FUNCTION_AUTH.format(service="s3")}, b"x")
    assert status == 503 and b"<Code>SlowDown</Code>" in body
    status, _, body = cloud.http_request("POST", "/", {
        "authorization": FUNCTION_AUTH.format(service="sns")}, b"Action=Publish")
    assert status == 400 and b"<Code>Throttling</Code>" in body


def test_lambda_faults_strike_only_the_functions_named(cloud):
    put(cloud, "lambda.throttle=@1,lambda.service=@2", functions=["step"])
    assert cloud.invoke_fault({"FunctionName": "orchestrator"}, {"a": 1}) is None
    throttled = cloud.invoke_fault({"FunctionName": "step"}, {"a": 1})
    assert throttled is not None and throttled["throttle"] and throttled["body"]["__type"] == (
        "TooManyRequestsException")
    assert throttled["body"]["errorType"] == "Lambda.TooManyRequestsException"
    failed = cloud.invoke_fault({"FunctionName": "step"}, {"a": 1})
    assert failed is not None and failed["baton_status"] == 500 and not failed["throttle"]
    assert failed["body"]["errorType"] == "Lambda.ServiceException"
    assert cloud.invoke_fault({"FunctionName": "step"}, {"a": 1}) is None  # third attempt passes
    assert cloud.state()["injected"] == {"lambda.throttle": 1, "lambda.service": 1}


class FakeProcess:
    def __init__(self) -> None:
        self.killed = False

    def poll(self) -> int | None:
        return -9 if self.killed else None

    def kill(self) -> None:
        self.killed = True

    def wait(self, timeout: float) -> int:
        return -9


class FakeWorker:
    def __init__(self) -> None:
        self._proc = FakeProcess()


@pytest.mark.parametrize(("spec", "error_type", "message"), [
    ("lambda.crash=1", "Runtime.ExitError", "Error: Runtime exited with error: signal: killed"),
    ("lambda.timeout=1", "Sandbox.Timedout", "Error: Task timed out after 60.00 seconds"),
])
def test_a_crash_or_a_timeout_kills_the_worker_and_loses_its_answer(cloud, spec, error_type,
                                                                    message):
    put(cloud, spec, functions=["step"])
    worker = FakeWorker()
    answer = {"status": "ok", "result": {"stored": True}, "log": "line"}
    result = cloud.after_run(worker, {"FunctionName": "step", "Timeout": 60}, {}, "req-1", answer)
    assert (result["status"], result["errorType"], result["log"]) == ("error", error_type, "line")
    assert result["error"] == f"RequestId: req-1 {message}"
    assert worker._proc.killed
    untouched = FakeWorker()
    assert cloud.after_run(untouched, {"FunctionName": "other"}, {}, "r", answer) is answer
    assert not untouched._proc.killed


def test_duplicated_and_late_deliveries(cloud):
    put(cloud, "invoke.duplicate=1")
    delivered: list[Any] = []
    record = {"config": {"FunctionName": "step"}}
    cloud.deliver_async(record, {"n": 1}, lambda _, event: delivered.append(event),
                        {"authorization": FUNCTION_AUTH.format(service="lambda")})
    cloud.deliver_async(record, {"n": 2}, lambda _, event: delivered.append(event),
                        {"authorization": CLI_AUTH.format(service="lambda")})
    assert delivered == [{"n": 1}, {"n": 1}, {"n": 2}]  # the CLI's own invoke is not doubled

    put(cloud, "event.duplicate=1,event.delay=1")
    arrived = threading.Event()
    events: list[Any] = []

    def invoke(_: Any, event: Any) -> None:
        events.append(event)
        if len(events) == 2:
            arrived.set()

    cloud.deliver_event(record, {"detail": 1}, invoke)
    assert events == []  # late: not yet
    assert arrived.wait(timeout=30)
    assert events == [{"detail": 1}, {"detail": 1}]
    assert cloud.state()["injected"] == {"event.duplicate": 1, "event.delay": 1}
