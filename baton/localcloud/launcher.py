"""Start MiniStack with the small changes that make it behave like AWS Lambda where baton relies on it.

This file runs on MiniStack's own interpreter (its virtualenv has no baton package), so it imports
nothing from baton. Every change is guarded: the MiniStack version must be the pinned one and each
replaced snippet must appear exactly once, otherwise the launcher stops with a message naming the
snippet, instead of silently running an emulator that drifted from AWS.

The changes:
1. Function code runs on a separate interpreter (``BATON_LAMBDA_PYTHON``): a virtualenv holding
   only what the AWS Python runtime ships (boto3), so a package missing from a function's code or
   layers fails to import, as on AWS. Stock MiniStack runs handlers on its own interpreter.
2. A raised exception keeps its class name as ``errorType`` (stock: always
   ``Runtime.HandlerError``), so Step Functions ``Retry``/``Catch`` on ``TransientError`` match.
3. An import failure is reported as ``Runtime.ImportModuleError`` with AWS's message.
4. The root logger gets the handler the AWS runtime installs, so stdlib ``logging`` output reaches
   CloudWatch Logs (stock: lost).
5. An inline Map honours ``MaxConcurrencyPath`` (stock: ignored, so every item ran at once).
6. An EventBridge rule invokes its Lambda target asynchronously, with the function's async retry
   policy and OnFailure destination (stock: a bare call, so a failed event was lost), and the
   failure record counts the invocations made (stock: always 3). A throttled asynchronous event
   waits for capacity instead of spending a retry (stock: throttles went to the dead-letter queue
   even though AWS keeps retrying them for up to the event's maximum age).
7. CloudFormation applies a function's ``ReservedConcurrentExecutions`` (stock: ignored).
8. A layer is extracted once per content and shared read-only by every worker, as /opt is on AWS
   (stock: extracted again for each worker, ~0.7 s per cold start for a 6 MB layer here).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sys
import textwrap
from collections.abc import Callable
from typing import Any

GUARDED_VERSION = "1.5.33"


class GuardError(SystemExit):
    """The MiniStack code this launcher adjusts is not the code it was written against."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"baton launcher: MiniStack changed, {what}. The launcher was written for MiniStack "
            f"{GUARDED_VERSION}; update baton/localcloud/launcher.py for the new version."
        )


def replace_once(text: str, old: str, new: str, where: str) -> str:
    """Replace ``old`` by ``new`` in ``text``; it must occur exactly once."""
    count = text.count(old)
    if count != 1:
        raise GuardError(f"{where}: expected the guarded snippet once, found it {count} times:\n{old}")
    return text.replace(old, new)


def patch_function(owner: Any, name: str, module: Any, edits: list[tuple[str, str]]) -> None:
    """Recompile ``owner.name`` from its source with ``edits`` applied, in ``module``'s globals."""
    source = textwrap.dedent(inspect.getsource(getattr(owner, name)))
    for old, new in edits:
        source = replace_once(source, old, new, f"{module.__name__}.{name}")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<baton patch of {module.__name__}.{name}>", "exec"), module.__dict__, namespace)
    setattr(owner, name, namespace[name])


class FunctionInitError(RuntimeError):
    """A function failed to initialise; carries the AWS ``errorType`` to the invoke response."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def shared_layer_dir(layer_data: bytes) -> str:
    """Where the layer with these bytes is (or will be) extracted, under MiniStack's TMPDIR."""
    digest = hashlib.sha256(layer_data).hexdigest()[:20]
    return os.path.join(os.environ.get("TMPDIR", "/tmp"), "baton-layers", digest)


def publish_layer_dir(partial: str) -> str:
    """Move a freshly extracted layer to its shared place; the first of racing workers wins."""
    final = partial.rsplit(".partial-", 1)[0]
    try:
        os.rename(partial, final)
    except OSError:  # another worker published the same layer first: use theirs
        import shutil

        shutil.rmtree(partial, ignore_errors=True)
    return final


SPAWN_EDITS = [
    (
        "raise RuntimeError(f\"Worker init failed: {response.get('error')}\")",
        'raise FunctionInitError(response.get("errorType") or "Runtime.HandlerError", '
        'response.get("error") or "init failed")',
    ),
    (  # before the edit below, which adds a second, deeper-indented append
        "                layers_dirs.append(layer_dir)\n",
        "                layers_dirs.append(baton_publish_layer_dir(layer_dir))\n",
    ),
    (
        'layer_dir = os.path.join(self._tmpdir, f"layer_{len(layers_dirs)}")\n'
        "                os.makedirs(layer_dir)\n",
        "layer_dir = baton_shared_layer_dir(layer_data)\n"
        "                if os.path.isdir(layer_dir):\n"
        "                    layers_dirs.append(layer_dir)\n"
        "                    continue\n"
        '                layer_dir += f".partial-{os.getpid()}-{id(self)}"\n'
        "                os.makedirs(layer_dir, exist_ok=True)\n",
    ),
]


# Installed on the worker's root logger, as the AWS Python runtime does (awslambdaric's format).
WORKER_LOGGING = r'''
import logging as _baton_logging
import time as _baton_time
class _BatonRequestId(_baton_logging.Filter):
    request_id = ""
    def filter(self, record):
        record.aws_request_id = self.request_id
        return True
_baton_request_id = _BatonRequestId()
_baton_handler = _baton_logging.StreamHandler(sys.stderr)
_baton_formatter = _baton_logging.Formatter(
    "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S")
_baton_formatter.converter = _baton_time.gmtime
_baton_handler.setFormatter(_baton_formatter)
_baton_handler.addFilter(_baton_request_id)
_baton_logging.getLogger().addHandler(_baton_handler)
_baton_logging.getLogger().setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper())
'''

# The worker script is a string inside MiniStack; "\\n" below is the two characters it contains.
WORKER_EDITS = [
    (
        "    sys.stdout = sys.stderr\n",
        "    sys.stdout = sys.stderr\n" + textwrap.indent(WORKER_LOGGING, "    "),
    ),
    (
        '        _real_stdout.write(json.dumps({"status": "error", "error": str(e)}) + "\\n")\n',
        "        if isinstance(e, ImportError):\n"
        '            _t = "Runtime.ImportModuleError"\n'
        "            _m = f\"Unable to import module '{module_name}': {e}\"\n"
        "        elif isinstance(e, SyntaxError):\n"
        '            _t = "Runtime.UserCodeSyntaxError"\n'
        "            _m = f\"Syntax error in module '{module_name}': {e}\"\n"
        "        else:\n"
        "            _t, _m = type(e).__name__, str(e)\n"
        '        _real_stdout.write(json.dumps({"status": "error", "error": _m, "errorType": _t}) + "\\n")\n',
    ),
    (
        '        _function_name = init.get("function_name", "")\n',
        '        _function_name = init.get("function_name", "")\n'
        '        _baton_request_id.request_id = _ms_ctx.get("request_id", "")\n',
    ),
    (
        '"error": str(e), "trace": traceback.format_exc()}',
        '"error": str(e), "errorType": type(e).__name__, "trace": traceback.format_exc()}',
    ),
]


MAP_EDITS = [
    (
        '    max_conc = state_def.get("MaxConcurrency", 0)\n',
        '    max_conc = state_def.get("MaxConcurrency", 0)\n'
        '    if "MaxConcurrencyPath" in state_def:\n'
        '        max_conc = int(\n'
        '            _resolve_path_or_ctx(state_def["MaxConcurrencyPath"], effective, ctx) or 0)\n',
    ),
]


EVENTBRIDGE_EDITS = [
    (
        "    threading.Thread(\n"
        "        target=lambda_svc._execute_function_with_config_scope, args=(exec_record, event), "
        "daemon=True\n"
        "    ).start()\n",
        "    lambda_svc.invoke_async_with_retry(exec_record, event)\n",
    ),
]

ASYNC_INVOKE_EDITS = [
    (
        "            last_result = _execute_function(func, event)\n",
        "            last_result = _execute_function(func, event)\n"
        "            while last_result.get(\"throttle\") and time.time() - started < max_event_age:\n"
        "                time.sleep(secrets.SystemRandom().uniform(0.2, 0.6))\n"
        "                last_result = _execute_function(func, event)\n"
        "            last_result[\"baton_invoke_count\"] = attempt + 1\n",
    ),
]

ASYNC_FAILURE_EDITS = [
    (
        '"approximateInvokeCount": 3,',
        '"approximateInvokeCount": result.get("baton_invoke_count", 3),',
    ),
]


CFN_LAMBDA_CREATE_EDITS = [
    (
        '"concurrency": None,',
        '"concurrency": (int(props["ReservedConcurrentExecutions"])\n'
        '                        if "ReservedConcurrentExecutions" in props else None),',
    ),
]

CFN_LAMBDA_UPDATE_EDITS = [
    (
        '    _reconcile_tag_map(func.setdefault("tags", {}), old_props, new_props)\n',
        '    _reconcile_tag_map(func.setdefault("tags", {}), old_props, new_props)\n'
        '    func["concurrency"] = (int(new_props["ReservedConcurrentExecutions"])\n'
        '                           if "ReservedConcurrentExecutions" in new_props else None)\n',
    ),
]


def apply_patches(lambda_python: str) -> None:
    """Adjust the imported MiniStack modules in place; raises GuardError on any drift."""
    import ministack
    from ministack.core import lambda_runtime
    from ministack.services import eventbridge, lambda_svc, stepfunctions
    from ministack.services.cloudformation import provisioners

    version = getattr(ministack, "__version__", None) or _installed_version("ministack")
    if version != GUARDED_VERSION:
        raise GuardError(f"installed version is {version}")

    script = lambda_runtime._PYTHON_WORKER_SCRIPT
    for old, new in WORKER_EDITS:
        script = replace_once(script, old, new, "the Python worker script")
    lambda_runtime._PYTHON_WORKER_SCRIPT = script

    original_detect: Callable[[str], tuple[str, str]] = lambda_runtime._detect_runtime_binary

    def detect_runtime_binary(runtime: str) -> tuple[str, str]:
        binary, worker_script = original_detect(runtime)
        if runtime.startswith("python"):
            return lambda_python, worker_script
        return binary, worker_script

    lambda_runtime._detect_runtime_binary = detect_runtime_binary

    lambda_runtime.FunctionInitError = FunctionInitError
    lambda_runtime.baton_shared_layer_dir = shared_layer_dir
    lambda_runtime.baton_publish_layer_dir = publish_layer_dir
    patch_function(lambda_runtime.Worker, "_spawn", lambda_runtime, SPAWN_EDITS)
    patch_function(stepfunctions, "_run_map_items", stepfunctions, MAP_EDITS)
    patch_function(eventbridge, "_dispatch_to_lambda", eventbridge, EVENTBRIDGE_EDITS)
    patch_function(lambda_svc, "invoke_async_with_retry", lambda_svc, ASYNC_INVOKE_EDITS)
    patch_function(lambda_svc, "_route_async_failure", lambda_svc, ASYNC_FAILURE_EDITS)
    # CloudFormation dispatches through a table of handlers, which holds the functions themselves.
    handlers = provisioners._RESOURCE_HANDLERS["AWS::Lambda::Function"]
    for action, name, edits in (("create", "_lambda_create", CFN_LAMBDA_CREATE_EDITS),
                                ("update", "_lambda_update", CFN_LAMBDA_UPDATE_EDITS)):
        if handlers.get(action) is not getattr(provisioners, name):
            raise GuardError(f"the CloudFormation {action} handler of AWS::Lambda::Function moved")
        patch_function(provisioners, name, provisioners, edits)
        handlers[action] = getattr(provisioners, name)
    patch_function(
        lambda_svc,
        "_execute_function_warm",
        lambda_svc,
        [
            (
                'error_type = "Runtime.HandlerError"\n',
                'error_type = result.get("errorType") or "Runtime.HandlerError"\n',
            ),
            (
                '"body": {"errorMessage": str(e), "errorType": type(e).__name__},',
                '"body": {"errorMessage": str(e), '
                '"errorType": getattr(e, "error_type", type(e).__name__)},',
            ),
        ],
    )


def _installed_version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def main() -> None:
    lambda_python = os.environ.get("BATON_LAMBDA_PYTHON", "")
    if not os.path.isfile(lambda_python):
        raise SystemExit(f"baton launcher: BATON_LAMBDA_PYTHON is not an interpreter: {lambda_python!r}")
    apply_patches(lambda_python)
    from ministack.app import main as ministack_main

    sys.argv = ["ministack"]
    ministack_main()


if __name__ == "__main__":
    main()
