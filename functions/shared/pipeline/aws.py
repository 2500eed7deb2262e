"""Every AWS client of the functions, and the one reading of AWS failures as contract errors.

``client(service, profile)`` builds each client on first use (so warm starts reuse it and moto
can start before it exists) and keeps one per service, profile and region. Every profile sets
its connect and read timeouts explicitly, below the timeout of the function that uses it: a hung
connection then fails as a TransientError the engines retry, instead of as the sandbox's timeout.
Tests start each test as a cold container (tests/conftest.py clears the registry).

``translate(error, action)`` is the single policy that turns botocore's errors into
``TransientError`` / ``PermanentError`` (see its docstring).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    ConnectionError,
    CredentialRetrievalError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.parsers import JSONParser, ResponseParserFactory
from botocore.useragent import UserAgentString

from pipeline.errors import PermanentError, TransientError


@dataclass(frozen=True)
class Profile:
    """How a client waits and retries: timeouts in seconds, botocore's attempts (1 = no retry);
    whether botocore checks each request's parameters against the API model before sending it."""

    name: str
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    validate_parameters: bool = True

    def config(self) -> Config:
        """The botocore Config of this profile (standard retry mode: backoff with jitter), with
        its User-Agent built once (see ``user_agent``)."""
        return Config(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            user_agent=user_agent("standard"),
            parameter_validation=self.validate_parameters,
        )

    def with_read_timeout(self, seconds: float) -> Profile:
        """The same profile with another read timeout (a caller that knows how long to wait)."""
        return replace(self, read_timeout=seconds)


# The step functions' timeout is 60 s at least (pipeline.steps): three attempts of at most 2 + 15 s
# (and botocore's backoff between them, about 3 s) stay inside it; a local cloud on a busy machine
# needs the 15 s.
DEFAULT = Profile("default", connect_timeout=2, read_timeout=15, max_attempts=3)
# The orchestrator's step invokes: one try (the engine's policy retries; botocore retrying too
# would multiply attempts and run a step twice), and a read timeout the caller sets above the
# step's own timeout, so a slow step ends as Sandbox.Timedout rather than as a read error.
STEP_INVOKE = Profile("step-invoke", connect_timeout=5, read_timeout=70, max_attempts=1)
# The orchestrator's asynchronous re-invocation of itself: retries on, since a lost
# continuation would strand the run's remaining items; an Event invoke answers at once.
CONTINUATION = Profile("continuation", connect_timeout=5, read_timeout=10, max_attempts=5)
# Large DynamoDB batch writes of items built by ``dynamodb.to_item`` (a monitor sweep's states and
# checks): boto3's serializer already refused whatever DynamoDB cannot store, and botocore's
# validation walking every attribute of every item again was half the client's CPU of a sweep's
# settle. DynamoDB still validates each request (a ValidationException: PermanentError).
BULK_WRITE = replace(DEFAULT, name="bulk-write", validate_parameters=False)


@functools.cache
def user_agent(retry_mode: str) -> str:
    """The User-Agent botocore would build for a boto3 client in ``retry_mode``, built once.

    botocore builds it afresh twice for every request only to add the SDK features the request
    used (its ``m/`` part, usage telemetry): 0.12 ms of the 0.40 ms of CPU a small DynamoDB call
    costs its client on this machine. A supplied user agent is sent as it is, followed by the
    session's extra part (boto3's ``Botocore/<version>``, so it is left out here): the same
    header, built once."""
    builder = UserAgentString.from_environment()
    builder.set_session_config(session_user_agent_name="Boto3",
                               session_user_agent_version=boto3.__version__,
                               session_user_agent_extra=None)
    return builder.with_client_config(Config(
        retries={"mode": retry_mode},
        user_agent_appid=os.environ.get("AWS_SDK_UA_APP_ID"),
    )).to_string()


def client(service: str, profile: Profile = DEFAULT, *, region: str | None = None) -> Any:
    """The boto3 client of ``service`` with ``profile``'s timeouts and retries, built once."""
    return _client(service, profile, region)


@functools.cache
def _client(service: str, profile: Profile, region: str | None) -> Any:
    return session().client(service, region_name=region, config=profile.config())


@functools.cache
def session() -> boto3.session.Session:
    """The boto3 session every client of baton is built from: boto3's own, but reading DynamoDB's
    attribute values as they were sent (``_AttributeValuesAsSent``)."""
    core = botocore.session.get_session()
    core.register_component("response_parser_factory", _Parsers())
    return boto3.session.Session(botocore_session=core)


class _Parsers(ResponseParserFactory):
    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return _AttributeValuesAsSent()
        return super().create_parser(protocol_name)


class _AttributeValuesAsSent(JSONParser):
    """botocore's JSON parser, except that a DynamoDB attribute value is kept as it came.

    botocore walks every attribute of every item down its API model, only to rebuild the same
    dicts and strings (the wire form of an attribute value is its parsed form): four fifths of the
    client's CPU of reading a run's 2,000 outcomes or a sweep's states. A value that botocore
    would change is parsed the usual way: one holding a binary (base64 on the wire, bytes once
    parsed), a null or a member the model does not know (dropped), at any depth."""

    def _handle_structure(self, shape: Any, value: Any) -> Any:
        if shape.name == "AttributeValue" and shape.members.keys() >= _ATTRIBUTE_TYPES \
                and _kept(value):
            return value
        return super()._handle_structure(shape, value)


# DynamoDB's attribute types, but the binaries.
_ATTRIBUTE_TYPES = frozenset({"S", "N", "SS", "NS", "M", "L", "NULL", "BOOL"})


def _kept(value: Any) -> bool:
    """Whether botocore would parse a DynamoDB attribute value into itself."""
    if not isinstance(value, dict) or not value.keys() <= _ATTRIBUTE_TYPES \
            or None in value.values():
        return False
    if "M" in value:
        inner = value["M"]
        return isinstance(inner, dict) and all(_kept(each) for each in inner.values())
    if "L" in value:
        inner = value["L"]
        return isinstance(inner, list) and all(_kept(each) for each in inner)
    return True


# Codes that mean "not now": throttling, contention, the service's own trouble.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "TransactionInProgressException",
        "TransactionConflictException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
# Reasons a DynamoDB transaction is cancelled that a later attempt may not meet.
TRANSIENT_CANCELLATIONS = frozenset(
    {"TransactionConflict", "ProvisionedThroughputExceeded", "ThrottlingError"}
)
# botocore's own errors of the network: the request may not have reached AWS, or its answer
# did not come back whole.
_TRANSIENT_SDK_ERRORS = (
    ConnectionError,  # connect timeout, endpoint unreachable, proxy, TLS
    HTTPClientError,  # read timeout, connection closed, broken response stream
    IncompleteReadError,
    ChecksumError,
    FlexibleChecksumError,
    CredentialRetrievalError,  # the credentials endpoint is a network call too
)


# What the commonest permanent codes mean, for the error message.
_MEANINGS = {
    "NoSuchKey": "the object does not exist",
    "NoSuchBucket": "the bucket does not exist",
    "404": "it does not exist",
    "NotFound": "it does not exist",
    "ResourceNotFoundException": "the resource does not exist",
    "403": "access denied",
    "AccessDenied": "access denied",
    "AccessDeniedException": "access denied",
    "InvalidObjectState": "the object is archived",
}


def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError, e.g. "ConditionalCheckFailedException"."""
    return str(error.response.get("Error", {}).get("Code", ""))


def translate(error: Exception, action: str) -> Exception:
    """The contract error for an AWS failure of ``action``; other exceptions come back unchanged.

    One policy for S3, DynamoDB, SNS, EventBridge, Comprehend and Lambda calls, because the
    engines decide on the class alone: TransientError is retried with backoff, PermanentError
    fails the item at once. The question is whether the same request can succeed later:

    - transient: throttling (any throttling code, HTTP 429), the service's own failures (5xx,
      InternalError…), request timeouts (408), contention (a DynamoDB transaction cancelled by a
      conflict or throttling, or without reasons), and botocore's network errors (connect and
      read timeouts, unreachable endpoint, connection reset, truncated or corrupted response);
    - permanent: every other answer of AWS, which are the 4xx ones: the request itself is wrong
      for the state it found (missing key or bucket, access denied, object in an invalid state,
      validation), and sending it again unchanged meets the same answer; and botocore's other
      errors (invalid parameters, no region or credentials configured), which are bugs or
      configuration, not luck.

    Callers that expect a particular code (a failed condition, a missing item) test for it with
    ``error_code`` before translating.
    """
    if isinstance(error, ClientError):
        code = error_code(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        what = code or status or error
        if _is_transient(error, code, status):
            return TransientError(f"{action} failed: {what}")
        meaning = f" ({_MEANINGS[code]})" if code in _MEANINGS else ""
        return PermanentError(f"{action} failed: {what}{meaning}")
    if isinstance(error, _TRANSIENT_SDK_ERRORS):
        return TransientError(f"{action} failed: {error}")
    if isinstance(error, BotoCoreError):
        return PermanentError(f"{action} failed: {error}")
    return error


def _is_transient(error: ClientError, code: str, status: int) -> bool:
    if code == "TransactionCanceledException":
        reasons = {reason.get("Code") for reason in error.response.get("CancellationReasons", [])}
        return not reasons - {"None", None} or bool(reasons & TRANSIENT_CANCELLATIONS)
    return code in TRANSIENT_CODES or status in (408, 429) or status >= 500
