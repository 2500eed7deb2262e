"""One Lambda execution environment as a host process, for LocalStack without Docker.

LocalStack's own environments are containers running its Go ``init`` (AWS's runtime interface
emulator): the init reports ready, takes invokes on ``POST /invoke`` and posts each result back to
LocalStack's executor endpoint. This script speaks the same protocol on 127.0.0.1, on the
interpreter the harness chose (the Lambda runtime's: only boto3 besides the standard library), with
the function's code and layers on ``sys.path`` as the AWS Python runtime puts them. It is started
by ``localstack_lambda_executor.py`` with the environment LocalStack gives a container, plus:

    BATON_RUNTIME_PORT    the port to take invokes on
    BATON_RUNTIME_PATH    the code folder, then each layer's ``python`` folder (os.pathsep)

One invoke at a time, as in a container: LocalStack sends the next only after the result.
The AWS runtime's behaviours the pipeline relies on are kept: an error is reported with its
exception class as ``errorType`` (what Step Functions' Retry and Catch match), an import failure
as ``Runtime.ImportModuleError``, everything written to stdout and stderr goes to the
invocation's log (stdlib logging with the runtime's format and request id, WARNING and above
unless AWS_LAMBDA_LOG_LEVEL says otherwise), and ``context.get_remaining_time_in_millis()``
counts down from the function's timeout.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import queue
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INVOKES: queue.Queue[dict[str, Any]] = queue.Queue()


class Context:
    """The Lambda context object handlers receive."""

    def __init__(self, request_id: str, function_arn: str, timeout_s: float) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class RequestIdFilter(logging.Filter):
    """Adds the current request id to each record, as the AWS runtime's handler does."""

    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


class Output:
    """The process's stdout and stderr, captured at the file descriptors as the Lambda runtime
    captures them (so a logger holding its own reference to ``sys.stdout``, as Powertools' does,
    is captured too): each line is copied to the environment's log and kept for the invocation's
    log, up to the end marker ``end()`` writes after the handler returns."""

    MARK = "\x00baton-invocation-end\x00\n"

    def __init__(self) -> None:
        self.log = os.fdopen(os.dup(1), "w", buffering=1, errors="replace")
        read, write = os.pipe()
        os.dup2(write, 1)
        os.dup2(write, 2)
        os.close(write)
        self.reader = os.fdopen(read, "r", errors="replace")
        self.kept: list[str] = []
        self.ended = threading.Event()
        threading.Thread(target=self.pump, daemon=True).start()

    def pump(self) -> None:
        for line in self.reader:
            if line == self.MARK:
                self.ended.set()
                continue
            self.log.write(line)
            self.kept.append(line)

    def end(self) -> str:
        """Everything written since the last end (waits until the marker has been read)."""
        sys.stdout.flush()
        sys.stderr.flush()
        self.ended.clear()
        os.write(1, self.MARK.encode())
        self.ended.wait(timeout=5)
        text, self.kept = "".join(self.kept), []
        return text


def post(path: str, body: bytes) -> None:
    """POST ``body`` to LocalStack's executor endpoint for this environment."""
    url = os.environ["LOCALSTACK_RUNTIME_ENDPOINT"] + path
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()


def error_body(error_type: str, message: str, trace: list[str]) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type,
                       "stackTrace": trace}).encode()


def load_handler() -> tuple[Callable[..., Any] | None, bytes | None]:
    """The handler named by _HANDLER, or the error body every invoke then answers with."""
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        return None, error_body("Runtime.ImportModuleError",
                                f"Unable to import module '{module_name}': {error}", [])
    except SyntaxError as error:
        return None, error_body("Runtime.UserCodeSyntaxError",
                                f"Syntax error in module '{module_name}': {error}", [])
    except Exception as error:  # the module's own code failed at import: AWS names its class
        return None, error_body(type(error).__name__, str(error),
                                traceback.format_exception(error))
    handler = getattr(module, function_name, None)
    if not callable(handler):
        return None, error_body("Runtime.HandlerNotFound",
                                f"Handler '{function_name}' missing on module '{module_name}'", [])
    return handler, None


def run_invocations(handler: Callable[..., Any] | None, init_error: bytes | None,
                    request_ids: RequestIdFilter, output: Output) -> None:
    """Run each invoke in turn on the main thread; post its logs, then its result."""
    timeout_s = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
    while True:
        invoke = INVOKES.get()
        request_id = str(invoke["invoke-id"])
        request_ids.request_id = request_id
        # The AWS runtime's per-invocation trace header (X-Ray's SDK reads it from here).
        os.environ["_X_AMZN_TRACE_ID"] = str(invoke.get("trace-id") or "")
        outcome = "response"
        try:
            if handler is None:
                body = init_error or b"{}"
                outcome = "error"
            else:
                event = json.loads(invoke.get("payload") or "null")
                result = handler(event, Context(request_id, str(invoke["invoked-function-arn"]),
                                                timeout_s))
                body = json.dumps(result).encode()
        except Exception as error:
            traceback.print_exc()
            body = error_body(type(error).__name__, str(error),
                              traceback.format_list(traceback.extract_tb(error.__traceback__)))
            outcome = "error"
        post(f"/invocations/{request_id}/logs", json.dumps({"logs": output.end()}).encode())
        post(f"/invocations/{request_id}/{outcome}", body)


class InvokeHandler(BaseHTTPRequestHandler):
    """Takes LocalStack's ``POST /invoke`` and queues it for the main thread."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/invoke":
            self.send_response(404)
            self.end_headers()
            return
        INVOKES.put(payload)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the function's own output is the environment's log."""


def main() -> None:
    """Serve invokes until LocalStack stops the environment (it terminates the process)."""
    sys.path[:0] = [path for path in os.environ["BATON_RUNTIME_PATH"].split(os.pathsep) if path]
    output = Output()
    request_ids = RequestIdFilter()
    handler_out = logging.StreamHandler(sys.stderr)
    handler_out.setFormatter(logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S"))
    handler_out.addFilter(request_ids)
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    root.addHandler(handler_out)
    root.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper())  # the runtime's default
    handler, init_error = load_handler()
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["BATON_RUNTIME_PORT"])), InvokeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    post(f"/status/{os.environ['LOCALSTACK_RUNTIME_ID']}/ready", b"{}")
    run_invocations(handler, init_error, request_ids, output)


if __name__ == "__main__":
    main()
