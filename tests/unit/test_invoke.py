"""`baton invoke` failures name the function and the cause, never a botocore traceback."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from baton import invoke
from baton.errors import BatonError

OUTPUTS = {"ScraperFunctionName": "baton-scraper"}


class FakeLambda:
    def __init__(self, answer: dict[str, Any] | None = None, error: ClientError | None = None):
        self.answer, self.error = answer, error

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return dict(self.answer or {})


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(invoke.deploy, "stack_outputs", lambda target, stack: OUTPUTS)

    def use(fake: FakeLambda) -> None:
        monkeypatch.setattr(invoke, "client", lambda service, target: fake)

    return use


def refused(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Invoke")


def test_a_function_localstack_could_not_create_is_named_with_the_docker_hint(deployed):
    deployed(FakeLambda(error=refused(
        "ResourceConflictException", "The operation cannot be performed at this time. "
        "The function is currently in the following state: Failed")))

    with pytest.raises(BatonError) as failure:
        invoke.invoke("localstack", "baton", "scraper")

    message = str(failure.value)
    assert message.startswith("could not invoke scraper (baton-scraper) on localstack: "
                              "ResourceConflictException: ")
    assert "state: Failed" in message
    assert "Docker" in message


def test_an_environment_localstack_could_not_start_is_explained(deployed):
    deployed(FakeLambda(error=refused("ServiceException", "Internal error while executing lambda")))

    with pytest.raises(BatonError, match=r"scraper \(baton-scraper\).*ServiceException.*\n"
                                         r"LocalStack could not start the function's environment"):
        invoke.invoke("localstack", "baton", "scraper")


def test_a_missing_function_says_to_redeploy(deployed):
    deployed(FakeLambda(error=refused("ResourceNotFoundException", "Function not found")))

    with pytest.raises(BatonError, match="redeploy with baton deploy --target aws"):
        invoke.invoke("aws", "baton", "scraper")


def test_a_function_error_is_returned_with_its_type_and_message(deployed):
    body = {"errorType": "FetchError", "errorMessage": "host not allowed"}
    deployed(FakeLambda({"StatusCode": 200, "FunctionError": "Unhandled",
                         "Payload": io.BytesIO(json.dumps(body).encode())}))

    result = invoke.invoke("local", "baton", "scraper")

    assert result.error == "FetchError: host not allowed"
    assert json.loads(result.pretty_body()) == body


def test_a_function_missing_from_the_stack_outputs_is_named(deployed):
    with pytest.raises(BatonError, match="stack baton has no store function"):
        invoke.function_name("local", "baton", "store")
