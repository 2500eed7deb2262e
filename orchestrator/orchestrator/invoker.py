"""Invoke a step's Lambda synchronously and turn its failure back into the contract's errors.

Step Functions matches ``Retry``/``Catch`` on the error name: the function's ``errorType`` for a
handler error, ``Lambda.<Code>`` for a failed Invoke call. This module gives the orchestrator the
same names, so one policy (pipeline.policy) decides for both engines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator.engine import StepError
from pipeline import aws
from pipeline.errors import PermanentError, TransientError

CONTRACT_ERRORS: dict[str, type[Exception]] = {
    "TransientError": TransientError,
    "PermanentError": PermanentError,
}


class LambdaInvoker:
    """``invoke(step, payload) -> dict`` over Lambda RequestResponse invokes."""

    def __init__(
        self, function_names: Mapping[str, str], *, read_timeout: float, client: Any = None
    ) -> None:
        self.function_names = dict(function_names)
        self.read_timeout = read_timeout
        self._client = client

    def __call__(self, step: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The step's JSON answer; raises the step's error when it failed."""
        client = self._client or aws.client("lambda", aws.STEP_INVOKE.with_read_timeout(self.read_timeout))
        try:
            response = client.invoke(
                FunctionName=self.function_names[step],
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode(),
            )
        except ClientError as error:
            # Step Functions' names for the Invoke API's own failures, e.g.
            # Lambda.TooManyRequestsException (retryable) or Lambda.ResourceNotFoundException.
            code = error.response.get("Error", {}).get("Code") or "AWSLambdaException"
            raise StepError(f"Lambda.{code}", str(error)) from error
        except BotoCoreError as error:  # connection failure, read timeout
            raise StepError("Lambda.SdkClientException", str(error)) from error
        body = response["Payload"].read()
        if response.get("FunctionError"):
            raise function_error(body)
        answer = json.loads(body)
        if not isinstance(answer, dict):
            raise StepError("ValidationError", f"{step} answered {type(answer).__name__}, not an object")
        return answer


def function_error(body: bytes) -> Exception:
    """The exception a failed invoke's payload describes: a contract error when it names one."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {"errorMessage": body.decode(errors="replace")}
    message = str(data.get("errorMessage", ""))
    error_type = data.get("errorType")
    if not error_type:
        # AWS reports a timeout as a bare message; Step Functions calls it Sandbox.Timedout.
        error_type = "Sandbox.Timedout" if "Task timed out" in message else "Lambda.Unknown"
    contract_error = CONTRACT_ERRORS.get(error_type)
    if contract_error is not None:
        return contract_error(message)
    return StepError(str(error_type), message)
