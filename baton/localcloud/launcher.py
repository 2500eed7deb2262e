"""Start MiniStack with the small changes that make it behave like AWS Lambda where baton relies on it.

This file runs on MiniStack's own interpreter (its virtualenv has no baton package), so it imports
nothing from baton. Every change is one entry of the ``PATCHES`` table below, which names the
stock MiniStack behaviour it changes and what it makes it do; ``python launcher.py --list`` prints
the table. Every change is guarded: the MiniStack version must be the one pinned in
``ministack-requirements.txt`` (beside this file) and each replaced snippet must appear exactly
once, otherwise the launcher stops with a message naming the patch and the snippet, instead of
silently running an emulator that drifted from AWS. ``python launcher.py --check`` applies every
patch and exits without serving (the test suite runs it on the pinned MiniStack).
"""

from __future__ import annotations

import contextvars
import copy
import hashlib
import importlib
import inspect
import io
import json
import os
import queue
import re
import shutil
import sys
import textwrap
import threading
import time
import zipfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache, partial
from pathlib import Path
from typing import Any

try:  # imported as part of baton (the tests)
    from baton.localcloud import asyncqueue, faults, forkserver, outside, warmpool
except ImportError:  # run as a script on MiniStack's interpreter, whose sys.path[0] is this folder
    import asyncqueue  # type: ignore[no-redef]
    import faults  # type: ignore[no-redef]
    import forkserver  # type: ignore[no-redef]
    import outside  # type: ignore[no-redef]
    import warmpool  # type: ignore[no-redef]

REQUIREMENTS = Path(__file__).with_name("ministack-requirements.txt")
HTTPGUARD = Path(__file__).resolve().parent.parent / "httpguard.py"


def pinned_version(requirements: Path = REQUIREMENTS) -> str:
    """The MiniStack version pinned in the requirements file beside this launcher."""
    found = re.search(r"^ministack==(\S+)\s*$", requirements.read_text(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"baton launcher: no 'ministack==<version>' line in {requirements}")
    return found.group(1)


class GuardError(SystemExit):
    """The MiniStack code this launcher adjusts is not the code it was written against."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"baton launcher: MiniStack changed, {what}. The launcher was written for MiniStack "
            f"{pinned_version()}; update baton/localcloud/launcher.py for the new version."
        )


def replace_once(text: str, old: str, new: str, where: str) -> str:
    """Replace ``old`` by ``new`` in ``text``; it must occur exactly once."""
    count = text.count(old)
    if count != 1:
        raise GuardError(f"{where}: expected the guarded snippet once, found it {count} times:\n{old}")
    return text.replace(old, new)


# -- what the patches refer to ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A function (recompiled from its edited source) or a string constant of a MiniStack module.

    ``registered_in`` is the path, from the module's globals, of a table entry that holds the
    function object itself (a dispatch table), so the recompiled function replaces it there too.
    """

    module: str
    attribute: str  # dotted inside the module: "Worker._spawn"
    registered_in: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.module}.{self.attribute}"


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` (which must occur exactly once) by ``new`` in ``target``."""

    target: Target
    old: str
    new: str


@dataclass(frozen=True)
class Patch:
    """One change to stock MiniStack: what it does today, what baton makes it do, and how."""

    name: str
    stock: str
    baton: str
    edits: tuple[Edit, ...]
    # Names the edited code refers to, installed in the globals of each edited module.
    provides: Mapping[str, Any] = field(default_factory=dict)


RUNTIME = "ministack.core.lambda_runtime"
LAMBDA = "ministack.services.lambda_svc"
PROVISIONERS = "ministack.services.cloudformation.provisioners"

WORKER_SCRIPT = Target(RUNTIME, "_PYTHON_WORKER_SCRIPT")
DETECT_RUNTIME = Target(RUNTIME, "_detect_runtime_binary")
SPAWN = Target(RUNTIME, "Worker._spawn")
WORKER_INVOKE = Target(RUNTIME, "Worker.invoke")
EXECUTE_WARM = Target(LAMBDA, "_execute_function_warm")
ASYNC_INVOKE = Target(LAMBDA, "invoke_async_with_retry")
ASYNC_FAILURE = Target(LAMBDA, "_route_async_failure")
RUN_MAP = Target("ministack.services.stepfunctions", "_run_map_items")
RUN_DISTRIBUTED_MAP = Target("ministack.services.stepfunctions", "_run_distributed_map")
DISPATCH_EVENT = Target("ministack.services.eventbridge", "_dispatch_to_lambda")
ASGI_APP = Target("ministack.app", "app")
LIFESPAN = Target("ministack.app", "_handle_lifespan")
REENTRANT = Target("ministack.core.concurrency", "run_reentrant")
REAPER = Target(LAMBDA, "_ensure_reaper_thread")
LAMBDA_GET_STATE = Target(LAMBDA, "get_state")
LAMBDA_RESTORE = Target(LAMBDA, "_restore_state")
SAVE_STATE = Target("ministack.core.persistence", "save_state")
PUBLISH_LAYER = Target(LAMBDA, "_publish_layer_version")
EVALUATE_CONDITION = Target("ministack.services.dynamodb", "_evaluate_condition")
CFN_LAYER_CREATE = Target(PROVISIONERS, "_lambda_layer_create",
                          ("_RESOURCE_HANDLERS", "AWS::Lambda::LayerVersion", "create"))
CFN_CREATE = Target(PROVISIONERS, "_lambda_create", ("_RESOURCE_HANDLERS", "AWS::Lambda::Function", "create"))
CFN_UPDATE = Target(PROVISIONERS, "_lambda_update", ("_RESOURCE_HANDLERS", "AWS::Lambda::Function", "update"))
STATES = "ministack.services.stepfunctions"
LAMBDA_REQUEST = Target(LAMBDA, "handle_request")
START_EXECUTION = Target(STATES, "_start_execution")
START_SYNC_EXECUTION = Target(STATES, "_start_sync_execution")
RUN_EXECUTION = Target(STATES, "_run_execution")
RUN_SUB_MACHINE = Target(STATES, "_run_sub_machine")
EXECUTE_TASK = Target(STATES, "_execute_task")
ERROR_MATCHES = Target(STATES, "_error_matches")
PUT_EVENTS = Target("ministack.services.eventbridge", "_put_events")
EXECUTE_FUNCTION = Target(LAMBDA, "_execute_function")
INVOKE = Target(LAMBDA, "_invoke")
CALL_LAMBDA = Target(STATES, "_call_lambda")
RELEASE_SLOT = Target(LAMBDA, "_release_execution_slot")


# -- code the patched MiniStack calls -----------------------------------------------------------


class FunctionInitError(RuntimeError):
    """A function failed to initialise; carries the AWS ``errorType`` to the invoke response."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def lambda_python() -> str:
    """The interpreter function code runs on (checked by ``main`` before MiniStack starts)."""
    return os.environ["BATON_LAMBDA_PYTHON"]


@lru_cache(maxsize=64)  # a layer's bytes object keeps its hash: later cold starts skip the digest
def shared_layer_dir(layer_data: bytes) -> str:
    """Where the layer with these bytes is (or will be) extracted, under MiniStack's TMPDIR."""
    digest = hashlib.sha256(layer_data).hexdigest()[:20]
    return os.path.join(os.environ.get("TMPDIR", "/tmp"), "baton-layers", digest)


def extract_layer(layer_data: bytes, name: str) -> str:
    """The layer's shared directory, extracted first if needed (the first of racing extractions wins)."""
    final = shared_layer_dir(layer_data)
    if os.path.isdir(final):
        return final
    partial = f"{final}.partial-{os.getpid()}-{threading.get_ident()}"
    os.makedirs(partial)
    try:
        with zipfile.ZipFile(io.BytesIO(layer_data)) as archive:
            root = os.path.realpath(partial)
            for member in archive.namelist():
                resolved = os.path.realpath(os.path.join(partial, member))
                if resolved != root and not resolved.startswith(root + os.sep):
                    raise RuntimeError(f"Failed to extract layer {name}: entry escapes its folder: {member}")
            archive.extractall(partial)
        os.rename(partial, final)
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile) as error:
        shutil.rmtree(partial, ignore_errors=True)
        if os.path.isdir(final):  # another worker published the same layer first: use theirs
            return final
        raise RuntimeError(f"Failed to extract layer {name}") from error
    except RuntimeError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def extract_published_layer(layer_data: bytes | None, name: str) -> None:
    """Extract a layer as it is published, so the first cold start after a deploy finds it ready."""
    if not layer_data:
        return
    try:
        folder = extract_layer(layer_data, name)
    except RuntimeError as error:  # publishing succeeds as before; the first cold start reports it
        print(f"baton launcher: {error}", file=sys.stderr)
        return
    if FORK_SERVERS.would_preload_from(folder):  # a dependency layer: most likely a function's first
        THREADS.run(partial(FORK_SERVERS.prestart, lambda_python(), folder, os.environ))


@cache
def httpguard() -> Any:
    """baton/httpguard.py, loaded from its file: baton itself is not installed on this interpreter."""
    return outside.load("baton_httpguard", HTTPGUARD, "the request guard")


Send = Callable[[dict[str, Any]], Awaitable[None]]


def _asgi_headers(scope: dict[str, Any]) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", [])}


async def refuse_foreign_request(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
                                 send: Send) -> bool:
    """Answer 403 to a request a web page or a DNS-rebinding attack could send; True if refused."""
    server = scope.get("server") or ("", os.environ.get("GATEWAY_PORT", "4566"))
    reason = httpguard().refusal(_asgi_headers(scope), int(server[1]))
    if reason is None:
        return False
    if scope["type"] == "websocket":
        await receive()  # the connect message, which must come before a close
        await send({"type": "websocket.close", "code": 1008})
        return True
    body = f"{reason}\n".encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
    return True


def echo_allowed_origin(scope: dict[str, Any], send: Send) -> Send:
    """Wrap ``send`` so no response carries a wildcard Allow-Origin; an allowed Origin is echoed."""
    origin = _asgi_headers(scope).get("origin")

    async def send_without_wildcard(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [(name, value) for name, value in message.get("headers", [])
                       if bytes(name).lower() != b"access-control-allow-origin"]
            if origin is not None:  # refused earlier unless it is on the allowlist
                headers += [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
            message = {**message, "headers": headers}
        await send(message)

    return send_without_wildcard


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


# Written by the worker after an invocation's output, flushed; \x1e (record separator) keeps it
# apart from any log text. The host reads the worker's stderr up to it instead of waiting for quiet.
END_OF_INVOCATION = "\x1ebaton-end-of-invocation "
END_OF_INVOCATION_CAP_S = 2.0  # only when the worker hangs with its stderr open


def drain_to_end_marker(worker: Any, request_id: str) -> str:
    """The log lines a Python worker wrote for ``request_id``, read up to its end-of-invocation marker."""
    marker = END_OF_INVOCATION + request_id
    lines: list[str] = []
    deadline = time.monotonic() + END_OF_INVOCATION_CAP_S
    while True:
        try:
            line = worker._stderr_queue.get(timeout=0.05)
        except queue.Empty:
            reader = worker._stderr_thread
            if reader is None or not reader.is_alive() or time.monotonic() > deadline:
                break  # the worker is gone (killed after an error): what arrived is all there is
            continue
        head, found, _ = line.partition(END_OF_INVOCATION)
        if head:  # text written without a final newline shares the marker's line
            lines.append(head)
        if found and line.endswith(marker):
            break
    return "\n".join(lines)


class ReusedThreads:
    """Runs each job at once on an idle thread, or on a new one when none is idle.

    Never queues a job behind another (a handler that invokes a function waits on a job that runs
    another request: a bounded pool could deadlock), yet the warm path no longer starts a thread
    per invocation, which cost a GIL hand-off to a bootstrapping thread each time.
    """

    IDLE_S = 60.0  # an idle thread ends after this long unused

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []

    def run(self, job: Callable[[], None], name: str = "baton-thread") -> None:
        """Run ``job`` on another thread now."""
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), daemon=True, name=name).start()
        inbox.put(job)

    def start(self, target: Callable[[], object]) -> _Running:
        """Run ``target`` on another thread; the handle answers ``join(timeout)`` and ``is_alive()``."""
        running = _Running()

        def job() -> None:
            try:
                target()
            finally:
                running.done.set()

        self.run(job)
        return running

    def _serve(self, inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            try:
                job = inbox.get(timeout=self.IDLE_S)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:  # nobody took this thread meanwhile: end it
                        self._idle.remove(inbox)
                        return
                job = inbox.get()  # taken just now: its job is on the way
            try:
                job()
            except BaseException:  # the job reports its own errors; SystemExit ends this thread
                return
            with self._lock:
                self._idle.append(inbox)


class _Running:
    """A job on a reused thread, seen as a thread: ``join(timeout)`` then ``is_alive()``."""

    def __init__(self) -> None:
        self.done = threading.Event()

    def join(self, timeout: float | None = None) -> None:
        self.done.wait(timeout)

    def is_alive(self) -> bool:
        return not self.done.is_set()


THREADS = ReusedThreads()


# -- warm workers capped in total (warmpool.py) ---------------------------------------------------


@cache
def warm_workers() -> warmpool.WarmWorkers:
    """MiniStack's warm worker pools, leased within the cap on warm workers in total."""
    from ministack.core import lambda_runtime as runtime

    return warmpool.WarmWorkers(runtime._lock, runtime._workers, runtime.acquire_worker,
                                runtime.kill_workers, THREADS.run)


# -- Python workers forked from a zygote (forkserver.py) ------------------------------------------

FORK_SERVERS = forkserver.ForkServers()


def prestart_zygote(config: Mapping[str, Any]) -> None:
    """Start, on another thread, the zygote a Python function's first cold start will fork from.

    A zygote takes ~0.7 s to preload: started as the function is deployed, not at its first
    invoke, the first run after a deploy is as fast as the next. Its key is computed as the
    worker's spawn computes it (the same interpreter, first layer folder, environment); the
    function's later layers do not choose its zygote.
    """
    if not str(config.get("Runtime", "")).startswith("python"):
        return

    def start() -> None:
        from ministack.services.lambda_svc import _resolve_layer_zip

        first = ""
        for ref in config.get("Layers", [])[:1]:
            data = _resolve_layer_zip(ref)
            if not data:
                return  # the cold start reports the missing layer
            first = extract_layer(data, ref if isinstance(ref, str) else ref.get("Arn", ""))
        variables = config.get("Environment", {}).get("Variables", {})
        FORK_SERVERS.prestart(lambda_python(), first, {**os.environ, **variables})

    def start_logged() -> None:
        try:
            start()
        except Exception as error:  # the first cold start starts it (or reports what fails)
            print(f"baton launcher: zygote not started ahead: {error}", file=sys.stderr)

    THREADS.run(start_logged)


STOCK_WORKER_POPEN = textwrap.indent(textwrap.dedent("""\
    self._proc = subprocess.Popen(
        [binary, worker_path],
        cwd=code_dir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        env=spawn_env,
    )
"""), " " * 4)


# -- asynchronous events queued per function (asyncqueue.py) --------------------------------------

ASYNC_QUEUES = asyncqueue.AsyncQueues(THREADS.run)
# The slot the queue took for an event, used by its first attempt; and when the event was queued.
_RESERVED_SLOT: contextvars.ContextVar[Any] = contextvars.ContextVar("baton_reserved_slot", default=None)
_EVENT_QUEUED_AT: contextvars.ContextVar[float | None] = contextvars.ContextVar("baton_event_queued_at",
                                                                                default=None)
ASYNC_EVENTS_FILE = "baton-async-events.json"


def take_reserved_slot() -> tuple[Any, None] | None:
    """The concurrency slot queued for this event's first attempt, as ``_acquire_execution_slot``
    answers it; None (the attempt takes its own) once taken or when there is none."""
    slot = _RESERVED_SLOT.get()
    if slot is None:
        return None
    _RESERVED_SLOT.set(None)
    return slot, None


def event_started() -> float:
    """When the asynchronous event being run was queued (its age counts from there)."""
    queued = _EVENT_QUEUED_AT.get()
    return time.time() if queued is None else queued


def queue_async_event(func: dict[str, Any], event: Any, context: contextvars.Context,
                      attempts: Callable[[], None]) -> None:
    """Queue an asynchronous invoke; ``attempts`` (MiniStack's retry loop) runs once it has a slot."""
    from ministack.services import lambda_svc as svc

    config = func.get("config") or func
    invoke_config = (func.get("event_invoke_config")
                     or (func.get("event_invoke_configs") or {}).get("$LATEST") or {})
    queued_at = time.time()

    def take_slot() -> Any:
        return svc._acquire_execution_slot(func, config)[0]

    def run(slot: Any) -> None:
        context.run(_run_queued, attempts, slot, queued_at)

    ASYNC_QUEUES.put(asyncqueue.Pending(
        key=svc._inflight_key(config), take_slot=take_slot, run=run, enqueued=queued_at,
        max_age_s=float(invoke_config.get("MaximumEventAgeInSeconds", 21600)),
        saved={"function": config.get("FunctionName"), "event": event}))


def _run_queued(attempts: Callable[[], None], slot: Any, queued_at: float) -> None:
    from ministack.services import lambda_svc as svc

    _RESERVED_SLOT.set(slot)
    _EVENT_QUEUED_AT.set(queued_at)
    try:
        attempts()
    finally:
        if take_reserved_slot() is not None:  # the attempts ended before using it
            svc._release_execution_slot(slot)


def save_async_events(state_dir: str) -> None:
    """Write the asynchronous events not yet done (started ones first) beside the saved state."""
    path = os.path.join(state_dir, ASYNC_EVENTS_FILE)
    temporary = f"{path}.tmp-{threading.get_ident()}"
    os.makedirs(state_dir, exist_ok=True)
    with open(temporary, "w") as file:
        json.dump(ASYNC_QUEUES.snapshot(), file, default=str)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def restore_async_events(state_dir: str) -> int:
    """Queue again the events a save listed (their functions restored already); how many."""
    from ministack.services import lambda_svc as svc

    try:
        with open(os.path.join(state_dir, ASYNC_EVENTS_FILE)) as file:
            saved = json.load(file)
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as error:
        print(f"baton launcher: cannot read the saved asynchronous events: {error}", file=sys.stderr)
        return 0
    queued = 0
    for record in saved if isinstance(saved, list) else []:
        func = svc._functions.get(record.get("function")) if isinstance(record, dict) else None
        if func is None:
            print(f"baton launcher: dropped a saved asynchronous event of a function that no longer "
                  f"exists: {record!r:.200}", file=sys.stderr)
            continue
        svc.invoke_async_with_retry(func, record.get("event"))
        queued += 1
    return queued


# With --persist: how often the state is saved while requests come in (BATON_PERSIST_INTERVAL_S).
PERSIST_INTERVAL_S = 2.0
HEALTH_PATHS = ("/_ministack/health", "/_localstack/health", "/health")


class PeriodicSaver:
    """Saves MiniStack's state every interval in which requests came, and once more after them.

    The extra save after a busy interval catches what a save taken while requests were still
    changing the state missed (MiniStack logs a failed save and keeps the previous file).
    """

    def __init__(self) -> None:
        self.requests = 0  # counted on the event loop, read by the saver thread
        self.lock = threading.Lock()

    def note_request(self, scope: dict[str, Any]) -> None:
        """Count a request that may change state (anything but a health probe)."""
        if scope.get("path") not in HEALTH_PATHS:
            self.requests += 1

    def save_now(self) -> None:
        """Save every service's state and the pending asynchronous events (one save at a time:
        the shutdown's waits for the saver's)."""
        from ministack.app import _build_persistence_save_dict
        from ministack.core.persistence import STATE_DIR, save_all

        with self.lock:
            save_all(_build_persistence_save_dict())
            try:
                save_async_events(STATE_DIR)
            except OSError as error:  # the previous file stays, as for a failed service save
                print(f"baton launcher: cannot save the asynchronous events: {error}", file=sys.stderr)

    def start(self) -> None:
        """Queue again the saved asynchronous events, then start saving in the background (after
        the persisted state was loaded)."""
        from ministack.core.persistence import STATE_DIR

        restore_async_events(STATE_DIR)
        interval = float(os.environ.get("BATON_PERSIST_INTERVAL_S", PERSIST_INTERVAL_S))
        threading.Thread(target=self._run, args=(interval,), name="baton-persist", daemon=True).start()

    def _run(self, interval: float) -> None:
        saved_at, settle = 0, False
        while True:
            time.sleep(interval)
            current = self.requests
            if current == saved_at and not settle:
                continue
            settle, saved_at = current != saved_at, current
            self.save_now()


SAVER = PeriodicSaver()


@lru_cache(maxsize=64)  # a layer's bytes object keeps its hash: later saves skip the digest
def _content_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _layer_records(layers: Any) -> Any:
    """The (scoped key, record) pairs of MiniStack's layer store, whatever its scoping."""
    return getattr(layers, "_data", layers).items()


def externalize_layers(layers: Any, referenced: set[str]) -> Any:
    """A copy of the layer store to save, each version's content replaced by a blob reference."""
    from ministack.services import lambda_svc as svc

    saved = type(layers)()
    for key, layer in _layer_records(layers):
        versions = []
        for version in layer.get("versions", []):
            record = {name: copy.deepcopy(value) for name, value in version.items() if name != "_zip_data"}
            content = version.get("_zip_data")
            if isinstance(content, bytes) and content:
                sha = _content_sha(content)
                if not os.path.exists(os.path.join(svc.CODE_BLOB_DIR, f"{sha}.zip")):
                    svc._write_code_blob(content)
                referenced.add(sha)
                record["_zip_data"] = {svc._BLOB_REF_KEY: sha}
            else:
                record["_zip_data"] = content
            versions.append(record)
        getattr(saved, "_data", saved)[key] = {**copy.deepcopy({k: v for k, v in layer.items()
                                                                if k != "versions"}),
                                               "versions": versions}
    return saved


def internalize_layers(layers: Any, blobs: dict[str, bytes | None]) -> Any:
    """The saved layer store with each blob reference replaced by the content it names (in place)."""
    from ministack.services import lambda_svc as svc

    for _, layer in _layer_records(layers):
        for version in layer.get("versions", []):
            content = version.get("_zip_data")
            if isinstance(content, dict) and svc._BLOB_REF_KEY in content:
                sha = content[svc._BLOB_REF_KEY]
                if sha not in blobs:
                    blobs[sha] = svc._read_code_blob(sha)
                    # Extracted again in the background (each start has a fresh TMPDIR), so the
                    # first cold start after a restart finds it ready too.
                    name = str(version.get("LayerVersionArn", sha))
                    THREADS.run(partial(extract_published_layer, blobs[sha], name))
                version["_zip_data"] = blobs[sha]
    return layers


# MiniStack's per-worker layer extraction, replaced whole by the shared one above.
STOCK_LAYER_EXTRACTION = textwrap.indent(textwrap.dedent("""\
    layer_dir = os.path.join(self._tmpdir, f"layer_{len(layers_dirs)}")
    os.makedirs(layer_dir)
    lzip = os.path.join(self._tmpdir, f"layer_{len(layers_dirs)}.zip")
    try:
        with open(lzip, "wb") as lf:
            lf.write(layer_data)
        with zipfile.ZipFile(lzip) as lzf:
            # Validate paths to prevent zip-slip attacks
            for member in lzf.namelist():
                resolved = os.path.realpath(os.path.join(layer_dir, member))
                if not resolved.startswith(os.path.realpath(layer_dir) + os.sep) and resolved != os.path.realpath(layer_dir):
                    raise RuntimeError(f"Zip entry escapes target dir: {member}")
            lzf.extractall(layer_dir)
    except (OSError, zipfile.BadZipFile, zipfile.LargeFileError) as e:
        logger.error("Failed to extract layer %s", layer_arn, exc_info=True)
        raise RuntimeError(f"Failed to extract layer {layer_arn}") from e
    layers_dirs.append(layer_dir)
"""), " " * 16)  # noqa: E501 (MiniStack's lines, verbatim)


def reap_interval_s() -> float:
    """How often to look for idle extra workers: a third of their allowed idle time, 1 to 30 s."""
    return min(30.0, max(1.0, float(os.environ.get("LAMBDA_WARM_TTL_SECONDS", "300")) / 3))


# -- payload limits as AWS enforces them ----------------------------------------------------------
# AWS's documented quotas, in bytes. The asynchronous Lambda and EventBridge figures are the ones
# AWS raised from 256 KB to 1 MB in January 2026.

LAMBDA_SYNC_REQUEST_LIMIT = 6_291_456  # Invoke, RequestResponse (and response streaming)
LAMBDA_ASYNC_REQUEST_LIMIT = 1_048_576  # Invoke, InvocationType Event
STATES_DATA_LIMIT = 262_144  # a state's input or output, a task's result, an execution's input
EVENTS_REQUEST_LIMIT = 1_048_576  # PutEvents: the sum of its entries' sizes
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
EVENTS_TIME_SIZE = 14  # what a PutEvents entry's Time counts for, whatever its value


def _aws_error(code: str, message: str, status: int) -> tuple[int, dict[str, str], bytes]:
    from ministack.core.responses import error_response_json

    response: tuple[int, dict[str, str], bytes] = error_response_json(code, message, status)
    return response


def refuse_large_invoke(body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes] | None:
    """AWS's 413 RequestEntityTooLargeException for an Invoke body over its invocation type's limit."""
    invocation_type = next((value for name, value in headers.items()
                            if name.lower() == "x-amz-invocation-type"), "RequestResponse")
    size = len(body or b"")
    if invocation_type == "Event" and size > LAMBDA_ASYNC_REQUEST_LIMIT:
        return _aws_error("RequestEntityTooLargeException",
                          f"{size} byte payload is too large for the Event invocation type "
                          f"(limit {LAMBDA_ASYNC_REQUEST_LIMIT} bytes)", 413)
    if invocation_type != "Event" and size > LAMBDA_SYNC_REQUEST_LIMIT:
        return _aws_error("RequestEntityTooLargeException",
                          f"Request must be smaller than {LAMBDA_SYNC_REQUEST_LIMIT} bytes for the "
                          "InvokeFunction operation", 413)
    return None


def refuse_large_execution_input(input_text: Any) -> tuple[int, dict[str, str], bytes] | None:
    """AWS's ValidationException for a StartExecution input over 256 KiB (UTF-8 bytes)."""
    if isinstance(input_text, str) and len(input_text.encode("utf-8")) > STATES_DATA_LIMIT:
        return _aws_error("ValidationException",
                          "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                          f"Member must have size less than or equal to {STATES_DATA_LIMIT} bytes in "
                          "UTF-8 encoding", 400)
    return None


def state_data_size(value: Any) -> int:
    """The size Step Functions counts for state data: its JSON text, compact, in UTF-8 bytes."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def check_state_data(value: Any, state: str, what: str) -> None:
    """Fail the execution with States.DataLimitExceeded if ``value`` is over 256 KiB."""
    size = state_data_size(value)
    if size > STATES_DATA_LIMIT:
        from ministack.services.stepfunctions import _ExecutionError

        raise _ExecutionError(DATA_LIMIT_EXCEEDED,
                              f"The state/task '{state}' {what} has a size exceeding the maximum number "
                              f"of bytes service limit ({size} bytes, limit {STATES_DATA_LIMIT})")


def lambda_task_error(body: Mapping[str, Any]) -> str:
    """The error a Lambda Task fails with: the function's errorType, or for a refused invoke
    (a throttle, a missing function) ``Lambda.`` and the service exception's name, as on AWS."""
    if body.get("errorType"):
        return str(body["errorType"])
    return f"Lambda.{body['__type']}" if body.get("__type") else "Lambda.Unknown"


def put_events_entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as EventBridge calculates it (Time, Source, DetailType, Detail, Resources)."""
    def utf8(value: Any) -> int:
        return len(value.encode("utf-8")) if isinstance(value, str) else 0

    return ((EVENTS_TIME_SIZE if entry.get("Time") is not None else 0)
            + utf8(entry.get("Source")) + utf8(entry.get("DetailType")) + utf8(entry.get("Detail"))
            + sum(utf8(resource) for resource in entry.get("Resources") or []))


def refuse_large_put_events(entries: Any) -> tuple[int, dict[str, str], bytes] | None:
    """AWS's ValidationException for a PutEvents request whose entries total more than 1 MB."""
    total = sum(put_events_entry_size(entry) for entry in entries if isinstance(entry, Mapping))
    if total > EVENTS_REQUEST_LIMIT:
        return _aws_error("ValidationException",
                          "Total size of the entries in the request is over the limit.", 400)
    return None


# -- X-Ray off where no daemon listens ------------------------------------------------------------

XRAY_SDK_ENABLED = "AWS_XRAY_SDK_ENABLED"  # the X-Ray SDKs' own switch
XRAY_DAEMON_ADDRESS = "AWS_XRAY_DAEMON_ADDRESS"


def without_xray_daemon(environment: dict[str, str]) -> None:
    """Turn the X-Ray SDK off in a worker's ``environment``: the local cloud has no X-Ray daemon,
    so the segments it would build and send by UDP go nowhere. A value the function or the cloud
    sets itself wins, and so does a daemon named by AWS_XRAY_DAEMON_ADDRESS (one the user runs)."""
    if XRAY_DAEMON_ADDRESS not in environment:
        environment.setdefault(XRAY_SDK_ENABLED, "false")


# -- DynamoDB: an expression's grammar checked once ---------------------------------------------


@lru_cache(maxsize=1024)
def condition_syntax_error(expr: str, slot: str) -> str | None:
    """MiniStack's grammar check of a condition expression, remembered: its answer depends on the
    expression (and the parameter it came from) alone, and MiniStack asks it for every item a
    Query or Scan evaluates and for every conditional write."""
    from ministack.services.dynamodb import _condition_syntax_error

    result: str | None = _condition_syntax_error(expr, slot)
    return result


# -- the table ------------------------------------------------------------------------------------
# The worker script is a string inside MiniStack; "\\n" in its edits is the two characters it holds.

PATCHES: tuple[Patch, ...] = (
    Patch(
        name="closed-to-browsers-and-rebinding",
        stock="answers every Origin with Access-Control-Allow-Origin: * and approves every "
              "preflight, and accepts any Host, so any web page (or a DNS-rebinding name) can "
              "create and invoke functions, which run as the user",
        baton="answers 403 to a Host other than the loopback address with its port and to an "
              "Origin not in BATON_ALLOWED_ORIGINS (preflights included), and echoes an allowed "
              "Origin instead of the wildcard (baton/httpguard.py)",
        edits=(Edit(ASGI_APP,
                    '    if scope["type"] in ("http", "websocket"):\n'
                    "        send = _with_date_header(send)\n",
                    '    if scope["type"] in ("http", "websocket"):\n'
                    "        send = _with_date_header(send)\n"
                    "        if await baton_refuse_foreign_request(scope, receive, send):\n"
                    "            return\n"
                    "        send = baton_echo_allowed_origin(scope, send)\n"),),
        provides={"baton_refuse_foreign_request": refuse_foreign_request,
                  "baton_echo_allowed_origin": echo_allowed_origin},
    ),
    Patch(
        name="lambda-runtime-interpreter",
        stock="runs Python handlers on MiniStack's own interpreter, so every package of the "
              "emulator's virtualenv is importable by function code",
        baton="runs them on BATON_LAMBDA_PYTHON, a virtualenv holding only what the AWS Python "
              "runtime ships (boto3), so a package missing from a function's code or layers fails "
              "to import, as on AWS",
        edits=(Edit(DETECT_RUNTIME, "return sys.executable, _PYTHON_WORKER_SCRIPT",
                    "return baton_lambda_python(), _PYTHON_WORKER_SCRIPT"),),
        provides={"baton_lambda_python": lambda_python},
    ),
    Patch(
        name="error-type-is-the-exception-class",
        stock="reports every handler exception as errorType Runtime.HandlerError",
        baton="keeps the exception's class name as errorType, so Step Functions Retry/Catch on "
              "TransientError match",
        edits=(
            Edit(WORKER_SCRIPT, '"error": str(e), "trace": traceback.format_exc()}',
                 '"error": str(e), "errorType": type(e).__name__, "trace": traceback.format_exc()}'),
            Edit(EXECUTE_WARM, 'error_type = "Runtime.HandlerError"\n',
                 'error_type = result.get("errorType") or "Runtime.HandlerError"\n'),
        ),
    ),
    Patch(
        name="import-error-is-runtime-import-module-error",
        stock="reports a handler module that fails to import as a generic 'Worker init failed' "
              "RuntimeError",
        baton="reports Runtime.ImportModuleError (or Runtime.UserCodeSyntaxError) with AWS's message",
        edits=(
            Edit(WORKER_SCRIPT,
                 '        _real_stdout.write(json.dumps({"status": "error", "error": str(e)}) + "\\n")\n',
                 "        if isinstance(e, ImportError):\n"
                 '            _t = "Runtime.ImportModuleError"\n'
                 "            _m = f\"Unable to import module '{module_name}': {e}\"\n"
                 "        elif isinstance(e, SyntaxError):\n"
                 '            _t = "Runtime.UserCodeSyntaxError"\n'
                 "            _m = f\"Syntax error in module '{module_name}': {e}\"\n"
                 "        else:\n"
                 "            _t, _m = type(e).__name__, str(e)\n"
                 '        _real_stdout.write(json.dumps({"status": "error", "error": _m, "errorType": _t})'
                 ' + "\\n")\n'),
            Edit(SPAWN, "raise RuntimeError(f\"Worker init failed: {response.get('error')}\")",
                 'raise FunctionInitError(response.get("errorType") or "Runtime.HandlerError", '
                 'response.get("error") or "init failed")'),
            Edit(EXECUTE_WARM, '"body": {"errorMessage": str(e), "errorType": type(e).__name__},',
                 '"body": {"errorMessage": str(e), '
                 '"errorType": getattr(e, "error_type", type(e).__name__)},'),
        ),
        provides={"FunctionInitError": FunctionInitError},
    ),
    Patch(
        name="stdlib-logging-reaches-cloudwatch",
        stock="installs no handler on the worker's root logger, so stdlib logging output is lost",
        baton="installs the handler and format the AWS Python runtime does (with the request id), "
              "so logging output reaches CloudWatch Logs",
        edits=(
            Edit(WORKER_SCRIPT, "    sys.stdout = sys.stderr\n",
                 "    sys.stdout = sys.stderr\n" + textwrap.indent(WORKER_LOGGING, "    ")),
            Edit(WORKER_SCRIPT, '        _function_name = init.get("function_name", "")\n',
                 '        _function_name = init.get("function_name", "")\n'
                 '        _baton_request_id.request_id = _ms_ctx.get("request_id", "")\n'),
        ),
    ),
    Patch(
        name="end-of-invocation-is-signalled",
        stock="guesses where an invocation's log output ends by polling the worker's stderr: it "
              "waits for 5 ms of quiet after the last line, or 50 ms when the handler logs nothing "
              "(a warm invoke of a silent handler cost ~55 ms)",
        baton="the Python worker flushes its streams and writes an end-of-invocation marker; the "
              "host reads up to it, so no invocation waits on a timer and each line is logged "
              "with the invocation that wrote it",
        edits=(
            Edit(WORKER_SCRIPT, "        _real_stdout.flush()\n\nrun()\n",
                 "        for _baton_stream in (sys.stdout, sys.stderr):\n"
                 "            try:\n"
                 "                _baton_stream.flush()\n"
                 "            except Exception:\n"
                 "                pass\n"
                 "        sys.__stderr__.write(" + repr(END_OF_INVOCATION)
                 + ' + _ms_ctx.get("request_id", "") + "\\n")\n'
                 "        sys.__stderr__.flush()\n"
                 "        _real_stdout.flush()\n\nrun()\n"),
            Edit(WORKER_INVOKE, '        response["log"] = self._drain_stderr_bounded()\n',
                 '        response["log"] = (baton_drain_to_end_marker(self, request_id)\n'
                 '                           if self.config.get("Runtime", "python").startswith("python")\n'
                 "                           else self._drain_stderr_bounded())\n"),
        ),
        provides={"baton_drain_to_end_marker": drain_to_end_marker},
    ),
    Patch(
        name="crash-safe-persistence",
        stock="with PERSIST_STATE saves the state only on a graceful shutdown (kill -9 or a power "
              "cut loses everything since the start), through a temporary file that is neither "
              "unique to its writer nor synced to disk",
        baton="also saves it every BATON_PERSIST_INTERVAL_S (2 s) in which requests came, each "
              "service's file written to a temporary file of its own, synced, then renamed over "
              "the old one, so a crash loses at most that interval and never leaves a file "
              "that cannot be loaded",
        edits=(
            Edit(ASGI_APP, '    if scope["type"] != "http":\n        return\n',
                 '    if scope["type"] != "http":\n        return\n'
                 "    if PERSIST_STATE:\n"
                 "        baton_saver.note_request(scope)\n"),
            Edit(LIFESPAN, "            if PERSIST_STATE:\n                _load_persisted_state()\n",
                 "            if PERSIST_STATE:\n                _load_persisted_state()\n"
                 "                baton_saver.start()\n"),
            Edit(LIFESPAN,
                 "            if PERSIST_STATE:\n                save_all(_build_persistence_save_dict())\n",
                 "            if PERSIST_STATE:\n                baton_saver.save_now()\n"),
            Edit(SAVE_STATE, '        tmp = path + ".tmp"\n',
                 '        tmp = f"{path}.tmp-{baton_thread_id()}"\n'),
            Edit(SAVE_STATE, "                    f, default=_json_default,\n                )\n",
                 "                    f, default=_json_default,\n                )\n"
                 "                f.flush()\n"
                 "                os.fsync(f.fileno())\n"),
        ),
        provides={"baton_saver": SAVER, "baton_thread_id": threading.get_ident},
    ),
    Patch(
        name="layer-content-saved-once",
        stock="saves every layer version's content inline, base64 in lambda.json (75 MB for "
              "baton's layer), at each save",
        baton="saves it once per content as a file beside the function code blobs, referenced "
              "from lambda.json, so the periodic save stays small; on restore each layer is "
              "extracted again in the background",
        edits=(
            Edit(LAMBDA_GET_STATE, "    _prune_orphan_code_blobs(referenced)\n",
                 "    baton_layers = baton_externalize_layers(_layers, referenced)\n"
                 "    _prune_orphan_code_blobs(referenced)\n"),
            Edit(LAMBDA_GET_STATE, '        "layers": copy.deepcopy(_layers),\n',
                 '        "layers": baton_layers,\n'),
            Edit(LAMBDA_RESTORE, '        _layers.update(data.get("layers", {}))\n',
                 '        _layers.update(baton_internalize_layers(data.get("layers", {}), blobs))\n'),
        ),
        provides={"baton_externalize_layers": externalize_layers,
                  "baton_internalize_layers": internalize_layers},
    ),
    Patch(
        name="idle-workers-reaped-promptly",
        stock="looks for idle extra workers every 30 s, so a short LAMBDA_WARM_TTL_SECONDS is "
              "honoured up to 30 s late",
        baton="looks every third of that idle time (1 to 30 s)",
        edits=(Edit(REAPER, "                time.sleep(30)\n",
                    "                time.sleep(baton_reap_interval_s())\n"),),
        provides={"baton_reap_interval_s": reap_interval_s},
    ),
    Patch(
        name="warm-path-reuses-threads",
        stock="starts two threads for every synchronous invoke (one to run it, one to read the "
              "worker's answer), each start waiting for the new thread to get going",
        baton="runs both on idle threads kept for reuse (a new one only when none is idle, so "
              "nothing waits behind another invocation)",
        edits=(
            Edit(REENTRANT, "        threading.Thread(target=_run, daemon=True, name=thread_name).start()\n",
                 "        baton_threads.run(_run, thread_name)\n"),
            Edit(WORKER_INVOKE,
                 "        reader = threading.Thread(target=_read_response, daemon=True)\n"
                 "        reader.start()\n",
                 "        reader = baton_threads.start(_read_response)\n"),
        ),
        provides={"baton_threads": THREADS},
    ),
    Patch(
        name="map-max-concurrency-path",
        stock="ignores a Map's MaxConcurrencyPath (inline or distributed), so every item runs at "
              "once (a Distributed Map's 64 at most)",
        baton="reads the Map's concurrency limit from MaxConcurrencyPath",
        edits=(Edit(RUN_MAP, '    max_conc = state_def.get("MaxConcurrency", 0)\n',
                    '    max_conc = state_def.get("MaxConcurrency", 0)\n'
                    '    if "MaxConcurrencyPath" in state_def:\n'
                    '        max_conc = int(\n'
                    '            _resolve_path_or_ctx(state_def["MaxConcurrencyPath"], effective, ctx)'
                    ' or 0)\n'),
               Edit(RUN_DISTRIBUTED_MAP,
                    '    max_conc = int(state_def.get("MaxConcurrency") or 0)\n',
                    '    max_conc = int(state_def.get("MaxConcurrency") or 0)\n'
                    '    if "MaxConcurrencyPath" in state_def:\n'
                    '        max_conc = int(\n'
                    '            _resolve_path_or_ctx(state_def["MaxConcurrencyPath"], effective, ctx)'
                    ' or 0)\n')),
    ),
    Patch(
        name="eventbridge-target-is-an-async-invoke",
        stock="calls a rule's Lambda target on a bare thread, so a failed event is lost",
        baton="invokes it asynchronously, with the function's async retry policy and OnFailure "
              "destination",
        edits=(Edit(DISPATCH_EVENT,
                    "    threading.Thread(\n"
                    "        target=lambda_svc._execute_function_with_config_scope, "
                    "args=(exec_record, event), daemon=True\n"
                    "    ).start()\n",
                    "    lambda_svc.invoke_async_with_retry(exec_record, event)\n"),),
    ),
    Patch(
        name="async-events-queue-per-function",
        stock="starts a thread for every asynchronous event; one throttled by the function's or the "
              "account's concurrency spends a retry and goes to the dead-letter queue, and the failure "
              "record always says approximateInvokeCount 3",
        baton="queues asynchronous events per function, in order, and starts the oldest as soon as a "
              "concurrency slot is released (to the function with the fewest running), up to its "
              "maximum age, as AWS keeps retrying throttles; "
              "with --persist the events not yet done are saved with the state and run again after a "
              "restart (baton/localcloud/asyncqueue.py); the failure record counts the invocations made",
        edits=(
            Edit(ASYNC_INVOKE, "        started = time.time()\n",
                 "        started = baton_event_started()\n"),
            Edit(ASYNC_INVOKE, "            last_result = _execute_function(func, event)\n",
                 "            last_result = _execute_function(func, event)\n"
                 "            while last_result.get(\"throttle\") and "
                 "time.time() - started < max_event_age:\n"
                 "                time.sleep(secrets.SystemRandom().uniform(0.2, 0.6))  # a retry only\n"
                 "                last_result = _execute_function(func, event)\n"
                 "            last_result[\"baton_invoke_count\"] = attempt + 1\n"),
            Edit(ASYNC_INVOKE,
                 "    threading.Thread(target=ctx_snapshot.run, args=(_run,), daemon=True).start()\n",
                 "    baton_queue_async_event(func, event, ctx_snapshot, _run)\n"),
            Edit(EXECUTE_FUNCTION, "    slot, limit = _acquire_execution_slot(func, config)\n",
                 "    slot, limit = baton_take_reserved_slot() or _acquire_execution_slot(func, config)\n"),
            Edit(RELEASE_SLOT, "        _inflight_total = max(0, _inflight_total - 1)\n",
                 "        _inflight_total = max(0, _inflight_total - 1)\n"
                 "    baton_async_queues.released()\n"),
            Edit(ASYNC_FAILURE, '"approximateInvokeCount": 3,',
                 '"approximateInvokeCount": result.get("baton_invoke_count", 3),'),
        ),
        provides={"baton_event_started": event_started,
                  "baton_queue_async_event": queue_async_event,
                  "baton_take_reserved_slot": take_reserved_slot,
                  "baton_async_queues": ASYNC_QUEUES},
    ),
    Patch(
        name="warm-workers-capped-in-total",
        stock="keeps every warm worker a burst started until it has been idle for a while, and the "
              "first one of each function for ever: dozens of 80-115 MB processes after a run",
        baton="keeps at most three times the account concurrency limit in warm workers in total "
              "where it can: a new one beyond it stops the workers of functions unused for 5 s, as AWS may "
              "recycle any idle environment, a function's extra workers first, its last one only "
              "after, each least recently used first (baton/localcloud/warmpool.py)",
        edits=(
            Edit(EXECUTE_WARM,
                 "    worker, reason = acquire_worker(func_name, config, code_zip, qualifier=qualifier)\n",
                 "    worker, reason = baton_warm_workers().acquire(func_name, config, code_zip, "
                 "qualifier=qualifier)\n"),
            Edit(EXECUTE_WARM, "        release_worker(worker)\n",
                 "        release_worker(worker)\n"
                 "        baton_warm_workers().trim()\n"),
        ),
        provides={"baton_warm_workers": warm_workers},
    ),
    Patch(
        name="python-workers-forked-from-a-zygote",
        stock="starts every warm Python worker as a new interpreter, which imports boto3, botocore, "
              "pydantic and Powertools again: 68-79 MB per worker, dozens of workers in a run",
        baton="forks it from a zygote per (interpreter, layers) that imported those modules once "
              "(copy-on-write); the child takes the function's environment and folder and runs the "
              "same worker script, so the handler module is still imported per worker (a cold start "
              "still runs the function's init); a function the preloads cannot serve faithfully, or "
              "a zygote that fails, gets a plain spawn (baton/localcloud/forkserver.py); "
              "BATON_FORK_SERVER=0 turns it off",
        edits=(Edit(SPAWN, STOCK_WORKER_POPEN,
                    "    self._proc = baton_start_worker(runtime, binary, worker_path, code_dir, "
                    "spawn_env)\n"),
               # The zygote of a function deployed through CloudFormation starts as it is deployed.
               Edit(CFN_CREATE, "    replaced = name in _lambda_svc._functions\n",
                    "    baton_prestart_zygote(func[\"config\"])\n"
                    "    replaced = name in _lambda_svc._functions\n"),
               Edit(CFN_UPDATE, '        raise ValueError(f"AWS::Lambda::Function configuration update '
                                'failed: {resp[2]!r}")\n',
                    '        raise ValueError(f"AWS::Lambda::Function configuration update '
                    'failed: {resp[2]!r}")\n'
                    '    baton_prestart_zygote(_lambda_svc._functions[name]["config"])\n')),
        provides={"baton_start_worker": FORK_SERVERS.start_worker,
                  "baton_prestart_zygote": prestart_zygote},
    ),
    Patch(
        name="cloudformation-reserved-concurrency",
        stock="ignores a function's ReservedConcurrentExecutions in CloudFormation",
        baton="applies it on create and update",
        edits=(
            Edit(CFN_CREATE, '"concurrency": None,',
                 '"concurrency": (int(props["ReservedConcurrentExecutions"])\n'
                 '                        if "ReservedConcurrentExecutions" in props else None),'),
            Edit(CFN_UPDATE, '    _reconcile_tag_map(func.setdefault("tags", {}), old_props, new_props)\n',
                 '    _reconcile_tag_map(func.setdefault("tags", {}), old_props, new_props)\n'
                 '    func["concurrency"] = (int(new_props["ReservedConcurrentExecutions"])\n'
                 '                           if "ReservedConcurrentExecutions" in new_props else None)\n'),
        ),
    ),
    Patch(
        name="layers-extracted-once-when-published",
        stock="extracts every layer again for each worker at its cold start (~0.7 s per cold start "
              "for a 6 MB layer here)",
        baton="extracts a layer once per content, when it is published (PublishLayerVersion or "
              "CloudFormation), into a folder every worker shares, as /opt is ready on AWS; a worker "
              "finding it missing (state reloaded by --persist) extracts it the same way",
        edits=(
            Edit(SPAWN, STOCK_LAYER_EXTRACTION,
                 "                layers_dirs.append(baton_extract_layer(layer_data, layer_arn))\n"),
            Edit(PUBLISH_LAYER, '    ver_config: dict = {\n',
                 '    baton_extract_published_layer(zip_data, layer_name)\n'
                 '    ver_config: dict = {\n'),
            Edit(CFN_LAYER_CREATE, '    ver_config = {\n',
                 '    baton_extract_published_layer(zip_data, layer_name)\n'
                 '    ver_config = {\n'),
        ),
        provides={"baton_extract_layer": extract_layer,
                  "baton_extract_published_layer": extract_published_layer},
    ),
    Patch(
        name="payload-limits-as-aws-enforces-them",
        stock="accepts payloads of any size: an Invoke body over 6 MB (1 MB asynchronous), a Step "
              "Functions state input, output or task result over 256 KiB, a PutEvents request over "
              "1 MB, so a design that fails on AWS passes every local test",
        baton="refuses them as AWS does: Invoke with 413 RequestEntityTooLargeException, "
              "StartExecution with ValidationException, PutEvents with ValidationException (\"Total "
              "size of the entries in the request is over the limit.\"); a state or task over 256 KiB "
              "fails the execution with States.DataLimitExceeded, which States.ALL and "
              "States.TaskFailed do not catch or retry",
        edits=(
            Edit(LAMBDA_REQUEST,
                 '        if method == "POST" and sub == "invocations":\n',
                 '        if method == "POST" and sub in ("invocations", "response-streaming-invocations"):\n'
                 "            baton_refused = baton_refuse_large_invoke(body, headers)\n"
                 "            if baton_refused is not None:\n"
                 "                return baton_refused\n"
                 '        if method == "POST" and sub == "invocations":\n'),
            Edit(START_EXECUTION, '    input_str = data.get("input", "{}")\n',
                 '    input_str = data.get("input", "{}")\n'
                 "    baton_refused = baton_refuse_large_execution_input(input_str)\n"
                 "    if baton_refused is not None:\n"
                 "        return baton_refused\n"),
            Edit(START_SYNC_EXECUTION, '    input_str = data.get("input", "{}")\n',
                 '    input_str = data.get("input", "{}")\n'
                 "    baton_refused = baton_refuse_large_execution_input(input_str)\n"
                 "    if baton_refused is not None:\n"
                 "        return baton_refused\n"),
            Edit(RUN_EXECUTION, '            _add_event(execution, f"{state_type}StateExited", {\n',
                 '            baton_check_state_data(current_input, current_name, "output")\n'
                 '            _add_event(execution, f"{state_type}StateExited", {\n'),
            Edit(RUN_SUB_MACHINE, '        state_type = state_def.get("Type")\n',
                 '        state_type = state_def.get("Type")\n'
                 '        baton_check_state_data(current_input, current_name, "input")\n'
                 "        baton_state_name = current_name\n"),
            Edit(RUN_SUB_MACHINE,
                 "                state_def, current_input, ctx)\n\n    return current_input\n",
                 "                state_def, current_input, ctx)\n"
                 '        baton_check_state_data(current_input, baton_state_name, "output")\n'
                 "\n    return current_input\n"),
            Edit(EXECUTE_TASK, '            _add_event(execution, "TaskSucceeded", {\n',
                 '            baton_check_state_data(task_result, resource, "returned a result that")\n'
                 '            _add_event(execution, "TaskSucceeded", {\n'),
            Edit(ERROR_MATCHES, '    if "States.ALL" in error_equals or error in error_equals:\n',
                 "    if error == baton_data_limit_exceeded:  # terminal: only its own name matches it\n"
                 "        return error in error_equals\n"
                 '    if "States.ALL" in error_equals or error in error_equals:\n'),
            Edit(PUT_EVENTS, "    results = []\n    failed = 0\n",
                 "    baton_refused = baton_refuse_large_put_events(entries)\n"
                 "    if baton_refused is not None:\n"
                 "        return baton_refused\n"
                 "    results = []\n    failed = 0\n"),
        ),
        provides={"baton_refuse_large_invoke": refuse_large_invoke,
                  "baton_refuse_large_execution_input": refuse_large_execution_input,
                  "baton_check_state_data": check_state_data,
                  "baton_data_limit_exceeded": DATA_LIMIT_EXCEEDED,
                  "baton_refuse_large_put_events": refuse_large_put_events},
    ),
    Patch(
        name="faults-on-demand",
        stock="has no fault injection: no way to see a pipeline meet a throttle, a crash, a "
              "duplicated or late event, a throttled or conflicting write",
        baton="injects, only while a run asks for it (`baton run --faults`, through the guarded "
              "admin path /_baton/faults) and only into the functions' calls and the cloud's own "
              "dispatch, AWS-shaped faults drawn from a seed (baton/localcloud/faults.py): Lambda "
              "429 TooManyRequestsException and 500 ServiceException, a killed worker "
              "(Runtime.ExitError), Sandbox.Timedout, an async invoke or EventBridge event "
              "delivered twice, a late event, DynamoDB ProvisionedThroughputExceededException "
              "and TransactionConflict, S3 503 SlowDown, SNS Throttling",
        edits=(
            Edit(ASGI_APP,
                 "    if await _send_if_handled(\n"
                 "        send, await _handle_post_body_shortcuts(",
                 "    baton_fault = baton_faults.http_request(method, path, headers, body)\n"
                 "    if baton_fault is not None:\n"
                 "        await _send_response(send, *baton_fault)\n"
                 "        return\n"
                 "    if await _send_if_handled(\n"
                 "        send, await _handle_post_body_shortcuts("),
            # After the concurrency slot is taken: an invocation the cap throttles anyway (and an
            # async event waiting for capacity, tried again every moment) is not a fault's attempt.
            Edit(EXECUTE_FUNCTION,
                 "    try:\n"
                 "        return _execute_function_dispatch(func, config, event, request_id, started)\n",
                 "    try:\n"
                 "        baton_fault = baton_faults.invoke_fault(config, event)\n"
                 "        if baton_fault is not None:\n"
                 "            return baton_fault\n"
                 "        return _execute_function_dispatch(func, config, event, request_id, started)\n"),
            Edit(INVOKE,
                 "        invoke_async_with_retry(exec_record, event)\n"
                 "        _emit_lambda_metrics(name, duration_ms=0.0, error=False, throttle=False)\n",
                 "        baton_faults.deliver_async(exec_record, event, invoke_async_with_retry, headers)\n"
                 "        _emit_lambda_metrics(name, duration_ms=0.0, error=False, throttle=False)\n"),
            Edit(INVOKE, '    if result.get("throttle"):\n        body = result.get("body") or {}\n',
                 '    if result.get("baton_status"):  # an injected service error: not a function error\n'
                 '        return (result["baton_status"], {"Content-Type": "application/json"},\n'
                 '                json.dumps(result["body"]).encode())\n'
                 '    if result.get("throttle"):\n        body = result.get("body") or {}\n'),
            Edit(EXECUTE_WARM,
                 '        if result.get("status") == "ok":\n'
                 '            return {"body": result.get("result"), "log": result.get("log", "")}\n',
                 "        result = baton_faults.after_run(worker, config, event, request_id, result)\n"
                 '        if result.get("status") == "ok":\n'
                 '            return {"body": result.get("result"), "log": result.get("log", "")}\n'),
            Edit(DISPATCH_EVENT, "    lambda_svc.invoke_async_with_retry(exec_record, event)\n",
                 "    baton_faults.deliver_event(exec_record, event, lambda_svc.invoke_async_with_retry)\n"),
        ),
        provides={"baton_faults": faults.FAULTS},
    ),
    Patch(
        name="lambda-task-throttle-is-named",
        stock="fails a Lambda Task whose invoke the service refused (a throttle) with "
              "Lambda.Unknown, which no Retry on Lambda.TooManyRequestsException matches",
        baton="names it Lambda.TooManyRequestsException (Lambda. and the service exception's "
              "name), as on AWS, so the Retry AWS recommends for Lambda Tasks takes it",
        edits=(Edit(CALL_LAMBDA, 'body.get("errorType", "Lambda.Unknown"),',
                    "baton_lambda_task_error(body),"),),
        provides={"baton_lambda_task_error": lambda_task_error},
    ),
    Patch(
        name="dynamodb-expression-grammar-checked-once",
        stock="checks a condition expression's grammar again for every item a Query or Scan "
              "evaluates it on (a third of the CPU of reading a 2,000-item run back) and for "
              "every conditional write",
        baton="remembers the check's answer per expression and parameter (1,024 of them): the "
              "same errors, raised the same way, checked once",
        edits=(Edit(EVALUATE_CONDITION, "_condition_syntax_error(expr, slot)",
                    "baton_condition_syntax_error(expr, slot)"),),
        provides={"baton_condition_syntax_error": condition_syntax_error},
    ),
    Patch(
        name="no-xray-daemon-no-tracing",
        stock="marks every invocation of a function with active tracing as sampled, so the X-Ray "
              "SDK in its worker (Powertools Tracer) records a segment, a subsegment per AWS call, "
              "and sends them by UDP to 127.0.0.1:2000, where nothing listens: CPU spent on every "
              "invoke for traces no one receives",
        baton="starts Python workers with AWS_XRAY_SDK_ENABLED=false, the SDK's own switch, unless "
              "the function or the cloud sets it, or names a daemon (AWS_XRAY_DAEMON_ADDRESS); the "
              "trace id still reaches the handler (_X_AMZN_TRACE_ID) and its log lines",
        edits=(Edit(SPAWN, "    spawn_env = {**os.environ, **env_vars}\n",
                    "    spawn_env = {**os.environ, **env_vars}\n"
                    "    baton_without_xray_daemon(spawn_env)\n"),),
        provides={"baton_without_xray_daemon": without_xray_daemon},
    ),
)


# -- applying the table ---------------------------------------------------------------------------


def _resolve(target: Target) -> tuple[Any, Any, str]:
    """(module, owner, name): ``owner.name`` is the target's current value."""
    module = importlib.import_module(target.module)
    *path, name = target.attribute.split(".")
    owner: Any = module
    for part in path:
        owner = getattr(owner, part)
    if not hasattr(owner, name):
        raise GuardError(f"{target} no longer exists")
    return module, owner, name


def _original_text(target: Target) -> str:
    _, owner, name = _resolve(target)
    value = getattr(owner, name)
    return value if isinstance(value, str) else textwrap.dedent(inspect.getsource(value))


def _install(target: Target, text: str) -> None:
    module, owner, name = _resolve(target)
    original = getattr(owner, name)
    if isinstance(original, str):
        setattr(owner, name, text)
        return
    namespace: dict[str, Any] = {}
    exec(compile(text, f"<baton patch of {target}>", "exec"), module.__dict__, namespace)
    if target.registered_in:
        *keys, last = target.registered_in
        table: Any = module.__dict__
        for key in keys:
            table = table[key]
        if table.get(last) is not original:
            raise GuardError(f"{target} is no longer what {'/'.join(target.registered_in)} dispatches to")
        table[last] = namespace[name]
    setattr(owner, name, namespace[name])
    if owner is module:
        _rebind_imported(name, original, namespace[name])


def _rebind_imported(name: str, original: Any, replacement: Any) -> None:
    """Modules that imported ``original`` by name (``from ministack.core.concurrency import
    run_reentrant``) hold the stock function itself: they get the patched one too, or the patch
    would miss every call made through them (Lambda's invoke path among them)."""
    for loaded in list(sys.modules.values()):
        if loaded is not None and getattr(loaded, name, None) is original:
            setattr(loaded, name, replacement)


def apply_patches(patches: tuple[Patch, ...] = PATCHES) -> None:
    """Walk the patch table over the imported MiniStack; raises GuardError naming any drifted patch."""
    import ministack

    version = getattr(ministack, "__version__", None) or _installed_version("ministack")
    if version != pinned_version():
        raise GuardError(f"installed version is {version}")
    # Every edit of a place is applied to one text, compiled once, in table order.
    edited: dict[Target, str] = {}
    for patch in patches:
        for edit in patch.edits:
            text = edited.get(edit.target)
            if text is None:
                text = _original_text(edit.target)
            where = f"patch {patch.name!r} ({edit.target})"
            edited[edit.target] = replace_once(text, edit.old, edit.new, where)
        for edit in patch.edits:
            vars(importlib.import_module(edit.target.module)).update(patch.provides)
    for target, text in edited.items():
        _install(target, text)


def describe(patches: tuple[Patch, ...] = PATCHES) -> str:
    """The table as text: each patch's name, stock behaviour and baton's behaviour."""
    return "\n".join(
        f"{number}. {patch.name}\n   stock: {patch.stock}\n   baton: {patch.baton}"
        for number, patch in enumerate(patches, 1)
    )


def _installed_version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


# -- serving HTTP --------------------------------------------------------------------------------

KEEP_ALIVE_S = 75  # what MiniStack's main() gives hypercorn: clients' pooled connections stay open
GRACEFUL_SHUTDOWN_S = 3.0  # hypercorn's default, as MiniStack ran it: requests in flight at SIGTERM
#                            get this long before the lifespan shutdown saves a persisted state


def server_config(app: Any) -> Any:
    """The uvicorn configuration serving the ASGI ``app`` on BIND_HOST:GATEWAY_PORT."""
    # MiniStack's main() serves with hypercorn, whose HTTP parser (h11) is pure Python. uvicorn with
    # httptools (C) costs ~0.2 ms less CPU per request, and a monitored page takes ~6 requests. Kept
    # from main(): the bind address and port, the keep-alive, the lifespan (state loaded at start,
    # saved at shutdown), no Server header, no Date added by the server (the app adds its own), no
    # access log (hypercorn's default). Left out, as baton uses none of them: the pid file in
    # TMPDIR, --detach/--stop (baton up/down), USE_SSL and its port 443. uvloop measured no gain.
    import uvicorn
    from ministack.app import _resolve_port

    return uvicorn.Config(
        app, host=os.environ.get("BIND_HOST", "0.0.0.0"), port=int(_resolve_port()),
        interface="asgi3", http="httptools", ws="wsproto", loop="asyncio", lifespan="on",
        timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False, date_header=False, access_log=False,
        proxy_headers=False,  # a client's X-Forwarded-* must not change what the app sees, as before
        log_config=None,  # MiniStack's logging setup stays as it is; uvicorn's lines join it
    )


def serve(app: Any) -> None:
    """Serve the ASGI ``app`` until SIGTERM or SIGINT, then stop gracefully (a persisted state is saved)."""
    import resource
    import signal

    import uvicorn

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # so a burst of connections does not hit the usual 1024
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for stop in (signal.SIGTERM, signal.SIGINT):
        # uvicorn shuts down on these, then raises the signal again for the handler it found: exit 0
        # there, as MiniStack's main() did, rather than die of the signal
        signal.signal(stop, lambda *_: sys.exit(0))
    server = uvicorn.Server(server_config(app))
    server.run()
    if not server.started:  # the port could not be bound, or the app's startup failed
        raise SystemExit("baton launcher: the HTTP server did not start (the lines above say why)")


def main(argv: list[str]) -> None:
    """``--list`` prints the table, ``--check`` applies it and exits, no argument serves MiniStack."""
    if argv == ["--list"]:
        print(describe())
        return
    if argv == ["--check"]:
        apply_patches()
        import ministack.app

        server_config(ministack.app.app).load()  # imports the HTTP and WebSocket protocols it names
        print(f"baton launcher: all {len(PATCHES)} patches apply to MiniStack {pinned_version()}")
        return
    if argv:
        raise SystemExit(f"usage: launcher.py [--list | --check], got {' '.join(argv)}")
    python = os.environ.get("BATON_LAMBDA_PYTHON", "")
    if not os.path.isfile(python):
        raise SystemExit(f"baton launcher: BATON_LAMBDA_PYTHON is not an interpreter: {python!r}")
    httpguard()  # fail now, not on the first request, if the guard cannot load
    apply_patches()
    import ministack.app

    serve(ministack.app.app)  # the app as patched (the request guard wraps it)


if __name__ == "__main__":
    main(sys.argv[1:])
