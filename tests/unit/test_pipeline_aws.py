"""The client registry and the one policy that reads botocore's errors as contract errors."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from botocore import __version__ as botocore_version
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.parsers import BaseJSONParser
from botocore.useragent import UserAgentString

from pipeline import aws
from pipeline.errors import PermanentError, TransientError
from pipeline.monitor_state import MonitorTable

FUNCTION_TIMEOUT_S = 60  # template.yaml's Globals: every step function
LONG_FUNCTION_TIMEOUT_S = 900  # the orchestrator and the monitor


def client_error(code: str, status: int, **extra: Any) -> ClientError:
    """A ClientError as botocore builds it from an AWS answer."""
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": "from the service"},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **extra,
    }
    return ClientError(response, "Operation")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("SlowDown", 503),
        ("ThrottlingException", 400),
        ("Throttling", 400),
        ("TooManyRequestsException", 429),
        ("ProvisionedThroughputExceededException", 400),
        ("RequestLimitExceeded", 400),
        ("RequestTimeout", 400),
        ("InternalError", 500),
        ("ServiceUnavailable", 503),
        ("TransactionInProgressException", 400),
        ("SomethingNew", 502),  # any 5xx, whatever its code
        ("", 429),  # any 429, even without a code
    ],
)
def test_throttling_and_service_failures_are_transient(code: str, status: int) -> None:
    translated = aws.translate(client_error(code, status), "writing s3://b/k")

    assert isinstance(translated, TransientError)
    assert str(translated).startswith("writing s3://b/k failed")


@pytest.mark.parametrize(
    ("code", "status", "meaning"),
    [
        ("NoSuchKey", 404, "the object does not exist"),
        ("NoSuchBucket", 404, "the bucket does not exist"),
        ("404", 404, "does not exist"),
        ("AccessDenied", 403, "access denied"),
        ("403", 403, "access denied"),
        ("AccessDeniedException", 400, "access denied"),
        ("InvalidObjectState", 403, "archived"),
        ("ResourceNotFoundException", 400, "does not exist"),
        ("ValidationException", 400, "ValidationException"),
        ("TextSizeLimitExceededException", 400, "TextSizeLimitExceededException"),
    ],
)
def test_requests_wrong_for_what_they_found_are_permanent(code: str, status: int, meaning: str) -> None:
    translated = aws.translate(client_error(code, status), "reading s3://b/k")

    assert isinstance(translated, PermanentError)
    assert code in str(translated) and meaning in str(translated)


@pytest.mark.parametrize(
    "error",
    [
        ConnectTimeoutError(endpoint_url="https://s3.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://s3.amazonaws.com"),
        EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"),
    ],
)
def test_network_errors_of_the_sdk_are_transient(error: Exception) -> None:
    assert isinstance(aws.translate(error, "reading"), TransientError)


@pytest.mark.parametrize(
    "error", [ParamValidationError(report="Bucket is required"), NoRegionError()]
)
def test_configuration_and_programming_errors_of_the_sdk_are_permanent(error: Exception) -> None:
    assert isinstance(aws.translate(error, "reading"), PermanentError)


@pytest.mark.parametrize(
    ("reasons", "kind"),
    [
        ([{"Code": "None"}, {"Code": "TransactionConflict"}], TransientError),
        ([{"Code": "ThrottlingError"}], TransientError),
        ([], TransientError),  # some emulators give no reasons: retry, bounded by the policy
        ([{"Code": "None"}, {"Code": "ValidationError"}], PermanentError),
    ],
)
def test_a_cancelled_transaction_is_transient_only_for_contention(
    reasons: list[dict[str, str]], kind: type[Exception]
) -> None:
    error = client_error("TransactionCanceledException", 400, CancellationReasons=reasons)

    assert isinstance(aws.translate(error, "storing"), kind)


def test_other_exceptions_come_back_unchanged() -> None:
    error = ValueError("not from AWS")

    assert aws.translate(error, "storing") is error


def test_a_client_is_built_once_per_service_and_profile() -> None:
    s3 = aws.client("s3")

    assert aws.client("s3") is s3
    assert aws.client("s3", aws.CONTINUATION) is not s3
    assert aws.client("sns") is not s3


def test_a_region_is_part_of_the_client_key() -> None:
    assert aws.client("comprehend", region="eu-west-1").meta.region_name == "eu-west-1"
    assert aws.client("comprehend").meta.region_name == "us-east-1"  # tests/conftest.py


@pytest.mark.parametrize(
    ("profile", "function_timeout"),
    [
        (aws.DEFAULT, FUNCTION_TIMEOUT_S),
        (aws.CONTINUATION, LONG_FUNCTION_TIMEOUT_S),
        (aws.STEP_INVOKE, LONG_FUNCTION_TIMEOUT_S),
    ],
)
def test_every_profile_waits_less_than_its_function_may_run(
    profile: aws.Profile, function_timeout: int
) -> None:
    config = aws.client("s3", profile).meta.config

    assert config.connect_timeout == profile.connect_timeout
    assert config.read_timeout == profile.read_timeout
    # Each attempt may wait to connect and then to read; all of them fit in the function's time.
    assert profile.max_attempts * (profile.connect_timeout + profile.read_timeout) < function_timeout


def test_invokes_that_must_not_run_twice_are_tried_once() -> None:
    assert aws.client("lambda", aws.STEP_INVOKE).meta.config.retries["total_max_attempts"] == 1


def test_the_step_invoke_read_timeout_is_set_by_its_caller() -> None:
    profile = aws.STEP_INVOKE.with_read_timeout(75)

    assert aws.client("lambda", profile).meta.config.read_timeout == 75
    assert aws.client("lambda", profile) is not aws.client("lambda", aws.STEP_INVOKE)


def sent_user_agents(dynamodb: Any, calls: int) -> list[str]:
    """The User-Agent headers of ``calls`` ListTables requests, answered without a network."""
    sent: list[str] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.headers["User-Agent"].decode())
        return AWSResponse(request.url, 200, {}, FakeRaw(b'{"TableNames": []}'))

    dynamodb.meta.events.register("before-send.dynamodb.ListTables", answer)
    for _ in range(calls):
        dynamodb.list_tables()
    return sent


class FakeRaw:
    """The raw stream of an HTTP answer's body."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def test_the_user_agent_is_built_once_and_is_the_sdks_own(monkeypatch: pytest.MonkeyPatch) -> None:
    default = sent_user_agents(boto3.client("dynamodb", config=Config(
        retries={"mode": "standard", "total_max_attempts": 3})), 1)[0]
    dynamodb = aws.client("dynamodb")
    builds: list[UserAgentString] = []
    real_build = UserAgentString._build_sdk_metadata

    def build(self: UserAgentString) -> Any:
        builds.append(self)
        return real_build(self)

    monkeypatch.setattr(UserAgentString, "_build_sdk_metadata", build)

    sent = sent_user_agents(dynamodb, 3)

    assert builds == []  # not rebuilt for each request
    # What botocore builds for every request, but the request's SDK features (usage telemetry).
    assert sent == [re.sub(r" m/\S+", "", default)] * 3
    assert sent[0].startswith(f"Boto3/{boto3.__version__} md/Botocore#")
    # Powertools, once imported, appends its own part to every request's header (PT/...).
    assert "cfg/retry-mode#standard" in sent[0] and f" Botocore/{botocore_version}" in sent[0]


def test_only_bulk_writes_of_serialized_items_skip_the_clients_validation() -> None:
    malformed = {"TableName": "states", "Item": {"pk": {"S": 5}}}  # a number where a string goes
    for profile in (aws.DEFAULT, aws.STEP_INVOKE, aws.CONTINUATION):
        with pytest.raises(ParamValidationError):
            aws.client("dynamodb", profile).put_item(**malformed)
    bulk = aws.client("dynamodb", aws.BULK_WRITE)
    sent: list[bytes] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.body)
        return AWSResponse(request.url, 200, {}, FakeRaw(b"{}"))

    bulk.meta.events.register("before-send.dynamodb.PutItem", answer)
    bulk.put_item(**malformed)  # sent: DynamoDB itself answers such a request

    assert len(sent) == 1
    assert bulk.meta.config.retries == aws.client("dynamodb").meta.config.retries
    assert MonitorTable("states").bulk_client is bulk
    assert MonitorTable("states").client is aws.client("dynamodb")


def answered_query(dynamodb: Any, body: bytes) -> dict[str, Any]:
    """A Query's parsed answer, DynamoDB's answer being ``body``."""
    def answer(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, 200, {}, FakeRaw(body))

    dynamodb.meta.events.register("before-send.dynamodb.Query", answer)
    answered = dynamodb.query(TableName="runs", KeyConditionExpression="pk = :pk",
                              ExpressionAttributeValues={":pk": {"S": "RUN#1"}})
    answered.pop("ResponseMetadata")
    return dict(answered)


def test_attribute_values_are_read_as_botocore_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    nested = {"M": {"etag": {"S": '"v1"'}, "attempts": {"N": "3"}, "ok": {"BOOL": True},
                    "none": {"NULL": True}, "steps": {"L": [{"S": "scraper"}, {"N": "-1.5"}]}}}
    items = [
        {"pk": {"S": "RUN#1"}, "outcome": nested, "tags": {"SS": ["a", "b"]}},
        # A binary at any depth is base64 on the wire and bytes once parsed.
        {"pk": {"S": "RUN#1"}, "raw": {"B": "aGk="}, "deep": {"L": [{"M": {"b": {"B": "aGk="}}}]}},
        {"pk": {"S": "RUN#1"}, "set": {"BS": ["aGk="]}},
    ]
    body = json.dumps({"Items": items, "Count": 3, "ScannedCount": 3}).encode()

    walked: list[Any] = []  # attribute values walked down botocore's model
    walk = BaseJSONParser._handle_structure

    def recording(self: Any, shape: Any, value: Any) -> Any:
        if shape.name == "AttributeValue":
            walked.append(value)
        return walk(self, shape, value)

    monkeypatch.setattr(BaseJSONParser, "_handle_structure", recording)
    ours = answered_query(aws.client("dynamodb"), body)
    ours_walked, walked[:] = list(walked), []

    assert ours == answered_query(boto3.client("dynamodb"), body)
    # botocore's own client walks each of the 17 values; ours only those holding a binary.
    assert len(walked) == 17
    assert ours_walked == [{"B": "aGk="}, {"L": [{"M": {"b": {"B": "aGk="}}}]},
                           {"M": {"b": {"B": "aGk="}}}, {"B": "aGk="}, {"BS": ["aGk="]}]
    assert ours["Items"][0]["outcome"] == nested  # as sent
    assert ours["Items"][1]["deep"] == {"L": [{"M": {"b": {"B": b"hi"}}}]}
    assert ours["Items"][2]["set"] == {"BS": [b"hi"]}


@pytest.mark.parametrize("value", [
    {"M": None}, {"L": [None]}, {"S": "a", "N": None}, {"Q": "an unknown type"},
    {"M": {"inner": {"L": [{"S": "x"}, None]}}}, {"L": [{"NULL": True}, {"BOOL": False}]},
])
def test_attribute_values_botocore_would_change_are_parsed_as_it_does(value: Any) -> None:
    body = json.dumps({"Items": [{"pk": {"S": "RUN#1"}, "odd": value}]}).encode()

    assert (answered_query(aws.client("dynamodb"), body)
            == answered_query(boto3.client("dynamodb"), body))
