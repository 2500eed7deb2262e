"""Fault injection inside the local cloud: off until a run asks for it, never beyond it.

Runs on MiniStack's interpreter (no baton package there): the catalogue, the SPEC parser and the
draw are ``baton/faults.py``, loaded from its file. The launcher's patch table wires the hooks
below into MiniStack (patch ``faults-on-demand``):

- ``http_request``: the admin path ``/_baton/faults`` (PUT sets a spec, seed, run id and the
  functions Lambda faults may hit; GET reads the counters; DELETE clears and returns them), and
  the data faults (DynamoDB, S3, SNS) answered in AWS's error shape instead of the call;
- ``invoke_fault``: Lambda throttles and service errors, at the one point every invocation passes
  (the Invoke API, Step Functions tasks, asynchronous events);
- ``after_run``: a crash or a timeout, once the handler has run in its warm worker;
- ``deliver_async`` / ``deliver_event``: a duplicated asynchronous invoke, a duplicated or late
  EventBridge event.

Only calls made by the functions and by the local cloud's own dispatch are touched: an API call
signed with another access key than the ones the local cloud gives its functions (the CLI's
``test`` key: ``baton run``'s follow and poll, ``baton check``) is served as usual.
"""

from __future__ import annotations

import contextvars
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

try:  # imported as part of baton (the tests)
    from baton.localcloud import outside
except ImportError:  # on MiniStack's interpreter, beside the launcher
    import outside  # type: ignore[no-redef]

CATALOGUE_FILE = Path(__file__).resolve().parent.parent / "faults.py"
ADMIN_PATH = "/_baton/faults"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/[^/]+/([^/]+)/aws4_request")
Response = tuple[int, dict[str, str], bytes]
# Set while an asynchronous invocation is queued: its retry thread inherits the context.
_QUEUED = contextvars.ContextVar("baton_fault_queued", default=False)


@cache
def catalogue() -> Any:
    """baton/faults.py, loaded from its file."""
    return outside.load("baton_faults_catalogue", CATALOGUE_FILE, "the fault catalogue")


def function_key(access_key: str) -> bool:
    """Whether an access key is one the local cloud gives its functions: the account id, or an
    execution-role session key (with authentication on)."""
    return (access_key.isdigit() and len(access_key) == 12) or access_key.startswith("ASIA")


class Faults:
    """The faults a run asked for, how often each request was seen, and what was injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rules: tuple[Any, ...] = ()
        self.seed = 0
        self.run_id = ""
        self.functions: frozenset[str] = frozenset()
        self.seen: Counter[tuple[str, str]] = Counter()
        self.injected: Counter[str] = Counter()

    def clear(self) -> dict[str, Any]:
        """Turn injection off; the state as it was (with its counters)."""
        with self._lock:
            before = self.state()
            self.rules, self.seed, self.run_id, self.functions = (), 0, "", frozenset()
            self.seen, self.injected = Counter(), Counter()
        return before

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Start injecting what ``settings`` asks (spec, seed, run_id, functions); ValueError if bad."""
        rules = catalogue().parse(str(settings.get("spec", "")))
        seed = settings.get("seed", 0)
        functions = settings.get("functions", [])
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be a whole number, got {seed!r}")
        if not isinstance(functions, list) or not all(isinstance(f, str) for f in functions):
            raise ValueError("functions must be a list of function names")
        with self._lock:
            self.rules, self.seed = rules, seed
            self.run_id = str(settings.get("run_id", ""))
            self.functions = frozenset(functions)
            self.seen, self.injected = Counter(), Counter()

    def state(self) -> dict[str, Any]:
        """What is injected, and how many of each kind so far."""
        return {"active": bool(self.rules), "spec": ",".join(map(str, self.rules)),
                "seed": self.seed, "run_id": self.run_id, "functions": sorted(self.functions),
                "injected": dict(self.injected)}

    def strike(self, point: str, what: str, skip: frozenset[str] = frozenset()) -> Any:
        """The rule at ``point`` (other than the kinds in ``skip``) striking this attempt of the
        request ``what``, counted as injected; None if none strikes."""
        rules = [rule for rule in self.rules
                 if catalogue().KINDS[rule.kind].point == point and rule.kind not in skip]
        if not rules:
            return None
        request = catalogue().identity(what, self.run_id)
        with self._lock:
            self.seen[point, request] += 1
            occurrence = self.seen[point, request]
        for rule in rules:
            if catalogue().strikes(rule, self.seed, request, occurrence):
                with self._lock:
                    self.injected[rule.kind] += 1
                return rule
        return None

    def strikes(self, point: str, what: str) -> list[str]:
        """Every kind at ``point`` striking this attempt of ``what`` (for delivery faults, which
        combine: an event may be both late and duplicated)."""
        rules = [rule for rule in self.rules if catalogue().KINDS[rule.kind].point == point]
        if not rules:
            return []
        request = catalogue().identity(what, self.run_id)
        with self._lock:
            self.seen[point, request] += 1
            occurrence = self.seen[point, request]
        struck = [rule.kind for rule in rules
                  if catalogue().strikes(rule, self.seed, request, occurrence)]
        with self._lock:
            self.injected.update(struck)
        return struck

    def delay_s(self, what: str) -> float:
        """How late a delayed event is delivered: 0.5 to 3 s, drawn like the fault itself."""
        request = catalogue().identity(what, self.run_id)
        return 0.5 + 2.5 * catalogue().draw(self.seed, "event.delay.seconds", request, 0)

    # ---- hooks -------------------------------------------------------------------------------

    def http_request(self, method: str, path: str, headers: Mapping[str, str],
                     body: bytes) -> Response | None:
        """The admin path's answer, or a data fault's AWS error; None to serve the call as usual."""
        if path == ADMIN_PATH:
            return self.admin(method, body)
        if not self.rules:
            return None
        found = _CREDENTIAL.search(headers.get("authorization", ""))
        if found is None or not function_key(found.group(1)):
            return None
        service = found.group(2)
        operation = headers.get("x-amz-target", "").rpartition(".")[2]
        text = body.decode("latin-1") if isinstance(body, bytes | bytearray) else str(body or "")
        # Only a write can meet a conflicting transaction.
        skip = frozenset() if operation in _CONFLICTING else frozenset({"dynamodb.conflict"})
        rule = self.strike(service, f"{service}|{operation}|{method}|{path}|{text}", skip)
        return None if rule is None else data_error(rule.kind, operation, headers, text)

    def admin(self, method: str, body: bytes) -> Response:
        """PUT sets the faults, GET reads them, DELETE clears them; each answers the state."""
        if method == "GET":
            return _json(200, self.state())
        if method == "DELETE":
            return _json(200, self.clear())
        if method != "PUT":
            return _json(405, {"message": f"{method} not allowed: PUT, GET or DELETE"})
        try:
            settings = json.loads(body or b"{}")
            if not isinstance(settings, dict):
                raise ValueError("the body must be a JSON object")
            self.configure(settings)
        except ValueError as error:  # SpecError and JSONDecodeError are ValueErrors
            return _json(400, {"message": str(error)})
        return _json(200, self.state())

    def invoke_fault(self, config: Mapping[str, Any], event: Any) -> dict[str, Any] | None:
        """A throttle or service error instead of running the function, or None."""
        name = str(config.get("FunctionName", ""))
        if not self.rules or name not in self.functions:
            return None
        rule = self.strike(catalogue().INVOKE, f"{name}|{_text(event)}")
        if rule is None:
            return None
        if rule.kind == "lambda.throttle":
            message = "Rate Exceeded."
            # __type for the Invoke API's 429, errorType for a Step Functions task (its name there).
            return {"throttle": True, "error": True, "log": "",
                    "body": {"__type": "TooManyRequestsException", "message": message,
                             "Reason": "CallerRateLimitExceeded", "retryAfterSeconds": "1",
                             "errorType": "Lambda.TooManyRequestsException",
                             "errorMessage": message}}
        message = "An error occurred and the request cannot be processed."
        # The async queue gives a 5xx back to the queue and tries again, as it does a throttle,
        # without spending one of the function's retries: marked as a throttle there.
        return {"error": True, "baton_status": 500, "log": "", "throttle": _QUEUED.get(),
                "body": {"__type": "ServiceException", "Message": message,
                         "errorType": "Lambda.ServiceException", "errorMessage": message}}

    def after_run(self, worker: Any, config: Mapping[str, Any], event: Any, request_id: str,
                  result: dict[str, Any]) -> dict[str, Any]:
        """The worker's answer, or, for a crash or a timeout, its error with the worker killed."""
        name = str(config.get("FunctionName", ""))
        if not self.rules or name not in self.functions:
            return result
        rule = self.strike(catalogue().RUN, f"{name}|{_text(event)}")
        if rule is None:
            return result
        _kill(worker)
        if rule.kind == "lambda.crash":
            error_type = "Runtime.ExitError"
            message = f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"
        else:
            error_type = "Sandbox.Timedout"
            message = (f"RequestId: {request_id} Error: Task timed out after "
                       f"{float(config.get('Timeout', 3)):.2f} seconds")
        return {"status": "error", "error": message, "errorType": error_type,
                "log": result.get("log", "")}

    def deliver_async(self, record: Mapping[str, Any], event: Any,
                      invoke: Callable[[Any, Any], None],
                      headers: Mapping[str, str] | None = None) -> None:
        """Queue an asynchronous invocation, twice when a duplicate delivery strikes it."""
        copies = 1
        if self.rules and (headers is None or _from_function(headers)):
            name = str((record.get("config") or record).get("FunctionName", ""))
            if self.strike(catalogue().ASYNC, f"{name}|{_text(event)}") is not None:
                copies = 2
        queued = _QUEUED.set(True)
        try:
            for _ in range(copies):
                invoke(record, event)
        finally:
            _QUEUED.reset(queued)

    def deliver_event(self, record: Mapping[str, Any], event: Any,
                      invoke: Callable[[Any, Any], None]) -> None:
        """Deliver an EventBridge event to its Lambda target: late, twice, or as it comes."""
        if not self.rules:
            invoke(record, event)
            return
        name = str((record.get("config") or record).get("FunctionName", ""))
        what = f"{name}|{_text(event)}"
        struck = self.strikes(catalogue().EVENT, what)
        copies = 2 if "event.duplicate" in struck else 1

        def deliver() -> None:
            for _ in range(copies):
                self.deliver_async(record, event, invoke)

        if "event.delay" in struck:
            timer = threading.Timer(self.delay_s(what), deliver)
            timer.daemon = True
            timer.start()
        else:
            deliver()


_CONFLICTING = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"})


def _from_function(headers: Mapping[str, str]) -> bool:
    found = _CREDENTIAL.search(headers.get("authorization", "") or headers.get("Authorization", ""))
    return found is not None and function_key(found.group(1))


def _text(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _json(status: int, body: Mapping[str, Any]) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _kill(worker: Any) -> None:
    """Kill the worker's process, as the sandbox dies under a crash or a timeout; the pool starts
    a new one for the next invocation (it restarts any worker whose process has exited)."""
    process = getattr(worker, "_proc", None)
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def data_error(kind: str, operation: str, headers: Mapping[str, str], text: str) -> Response:
    """AWS's answer for a data fault, in the protocol of the call."""
    request_id = "baton-fault"
    if kind == "dynamodb.throttle":
        return _dynamodb(400, "ProvisionedThroughputExceededException",
                         "The level of configured provisioned throughput for the table was "
                         "exceeded. Consider increasing your provisioning level with the "
                         "UpdateTable API.")
    if kind == "dynamodb.conflict":
        if operation == "TransactWriteItems":
            try:
                count = len(json.loads(text).get("TransactItems", [])) or 1
            except (ValueError, AttributeError):
                count = 1
            reasons = ["TransactionConflict"] + ["None"] * (count - 1)
            return _dynamodb(400, "TransactionCanceledException",
                             "Transaction cancelled, please refer cancellation reasons for "
                             f"specific reasons [{', '.join(reasons)}]",
                             CancellationReasons=[
                                 {"Code": code, **({"Message": "Transaction is ongoing for the "
                                                               "item"} if code != "None" else {})}
                                 for code in reasons])
        return _dynamodb(400, "TransactionConflictException", "Transaction is ongoing for the item")
    if kind == "s3.slowdown":
        return 503, {"Content-Type": "application/xml"}, (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please '
            f"reduce your request rate.</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
    # sns.throttle: the query protocol's XML, or JSON when the client speaks it
    if "json" in headers.get("content-type", ""):
        return 400, {"Content-Type": "application/x-amz-json-1.0",
                     "x-amzn-query-error": "Throttling;Sender"}, json.dumps(
            {"__type": "Throttling", "message": "Rate exceeded"}).encode()
    return 400, {"Content-Type": "text/xml"}, (
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender'
        "</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>"
        f"{request_id}</RequestId></ErrorResponse>").encode()


def _dynamodb(status: int, code: str, message: str, **extra: Any) -> Response:
    return status, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(
        {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra}).encode()


FAULTS = Faults()
catalogue()  # fail when the local cloud starts, not at the first run that asks for faults
