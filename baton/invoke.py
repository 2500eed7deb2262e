"""`baton invoke`: call one deployed function by its logical name; every failure names the function."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from botocore.exceptions import ClientError, ReadTimeoutError

from baton import deploy
from baton.errors import BatonError
from baton.targets import client
from engines.client import Deployment
from pipeline.steps import ORCHESTRATOR, STEPS

# Logical function names and the stack outputs that hold their deployed names: every step of the
# registry, and the orchestrator.
FUNCTIONS = {step.name: step.output for step in STEPS} | {
    ORCHESTRATOR: Deployment.OUTPUTS["orchestrator_function"]}


@dataclass(frozen=True)
class Invocation:
    """What one invocation returned: the function's answer, its log tail, its error if any."""

    function: str
    name: str
    status: int
    body: str = ""
    log_tail: str = ""
    error: str | None = None  # "errorType: errorMessage" when the function itself failed

    def pretty_body(self) -> str:
        """The answer, indented when it is JSON."""
        try:
            return json.dumps(json.loads(self.body), indent=2)
        except json.JSONDecodeError:
            return self.body


def function_name(target: str, stack: str, logical: str) -> str:
    """The deployed name of a logical function (scraper, …), from the stack outputs."""
    if logical not in FUNCTIONS:
        raise BatonError(f"unknown function {logical!r}; choose one of: {', '.join(FUNCTIONS)}")
    outputs = deploy.stack_outputs(target, stack)
    if FUNCTIONS[logical] not in outputs:
        raise BatonError(f"stack {stack} has no {logical} function (output {FUNCTIONS[logical]})")
    return outputs[FUNCTIONS[logical]]


def _hint(target: str, code: str, message: str) -> str:
    """What to do about an invoke the target refused, when baton can tell."""
    if code == "ResourceNotFoundException":
        return f"the stack's outputs name a function that is gone: redeploy with baton deploy " \
               f"--target {target}"
    if "state: Failed" in message or "state: Pending" in message or code == "ResourceConflictException":
        return "the target could not create the function" + (
            "; LocalStack runs functions only in Docker containers: start LocalStack with Docker"
            if target == "localstack" else "")
    if target == "localstack" and code in ("ServiceException", "InternalError", "500"):
        return ("LocalStack could not start the function's environment; it runs functions in "
                "Docker containers, so Docker must be available to it (see its log)")
    return ""


def invoke(target: str, stack: str, logical: str, payload: bytes = b"{}",
           asynchronous: bool = False) -> Invocation:
    """Invoke ``logical`` on ``target``; a refused invoke is a BatonError naming function and cause."""
    name = function_name(target, stack, logical)
    lambdas = client("lambda", target)
    try:
        if asynchronous:
            queued = lambdas.invoke(FunctionName=name, Payload=payload, InvocationType="Event")
            return Invocation(logical, name, int(queued["StatusCode"]))
        response = lambdas.invoke(FunctionName=name, Payload=payload, LogType="Tail")
        body = response["Payload"].read().decode(errors="replace")
    except ClientError as error:
        details = error.response.get("Error", {})
        code, message = str(details.get("Code", "error")), str(details.get("Message", error))
        hint = _hint(target, code, message)
        raise BatonError(f"could not invoke {logical} ({name}) on {target}: {code}: {message}"
                         + (f"\n{hint}" if hint else "")) from error
    except ReadTimeoutError as error:
        raise BatonError(f"could not invoke {logical} ({name}) on {target}: no answer within "
                         f"the client's timeout ({error})") from error
    log_tail = base64.b64decode(response.get("LogResult") or b"").decode(errors="replace")
    error_text = None
    if response.get("FunctionError"):
        error_text = f"{response['FunctionError']} error"
        try:
            answer = json.loads(body)
            error_text = f"{answer.get('errorType', error_text)}: {answer.get('errorMessage', '')}"
        except (json.JSONDecodeError, AttributeError):
            pass
    return Invocation(logical, name, int(response["StatusCode"]), body, log_tail, error_text)
