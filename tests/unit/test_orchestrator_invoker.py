"""The invoker turns a Lambda invoke's failure back into the error name the policy matches."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from orchestrator.engine import StepError, error_name
from orchestrator.invoker import LambdaInvoker
from pipeline.errors import PermanentError, TransientError


class FakeLambda:
    """Answers every invoke with one canned response (or raises one error)."""

    def __init__(self, payload: Any = None, function_error: bool = False,
                 raises: Exception | None = None) -> None:
        self.body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.function_error = function_error
        self.raises = raises
        self.requests: list[dict[str, Any]] = []

    def invoke(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.raises:
            raise self.raises
        response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(self.body)}
        if self.function_error:
            response["FunctionError"] = "Unhandled"
        return response


def invoker(client: FakeLambda) -> LambdaInvoker:
    return LambdaInvoker({"scraper": "baton-scraper"}, read_timeout=75, client=client)


def test_a_successful_invoke_returns_the_payload_of_a_sync_call() -> None:
    client = FakeLambda({"run_id": "r"})

    assert invoker(client)("scraper", {"url": "http://a.test/"}) == {"run_id": "r"}
    [request] = client.requests
    assert request["FunctionName"] == "baton-scraper"
    assert request["InvocationType"] == "RequestResponse"
    assert json.loads(request["Payload"]) == {"url": "http://a.test/"}


@pytest.mark.parametrize(("error_type", "expected"), [
    ("TransientError", TransientError), ("PermanentError", PermanentError),
])
def test_contract_errors_come_back_as_their_classes(error_type: str, expected: type) -> None:
    client = FakeLambda({"errorType": error_type, "errorMessage": "HTTP 503"}, function_error=True)

    with pytest.raises(expected, match="HTTP 503"):
        invoker(client)("scraper", {})


def test_other_function_errors_keep_their_name() -> None:
    client = FakeLambda({"errorType": "ValidationError", "errorMessage": "url"}, function_error=True)

    with pytest.raises(StepError) as caught:
        invoker(client)("scraper", {})
    assert error_name(caught.value) == "ValidationError"


def test_a_timeout_reported_as_a_bare_message_is_sandbox_timedout() -> None:
    client = FakeLambda({"errorMessage": "Task timed out after 60.00 seconds"}, function_error=True)

    with pytest.raises(StepError) as caught:
        invoker(client)("scraper", {})
    assert caught.value.error_type == "Sandbox.Timedout"


def test_invoke_api_failures_get_step_functions_names() -> None:
    throttled = ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "rate"}}, "Invoke")

    with pytest.raises(StepError) as caught:
        invoker(FakeLambda(raises=throttled))("scraper", {})
    assert caught.value.error_type == "Lambda.TooManyRequestsException"


def test_a_read_timeout_is_an_sdk_client_exception() -> None:
    with pytest.raises(StepError) as caught:
        invoker(FakeLambda(raises=ReadTimeoutError(endpoint_url="http://x")))("scraper", {})
    assert caught.value.error_type == "Lambda.SdkClientException"
