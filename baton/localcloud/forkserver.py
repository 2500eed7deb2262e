"""A fork server (zygote) for the local cloud's Python Lambda workers.

MiniStack starts each warm worker as a new interpreter (``python _worker.py``) that imports boto3,
botocore, pydantic and Powertools again: 68-79 MB per worker, dozens of workers in a run. A zygote
imports those heavy, function-independent modules once, calls ``gc.freeze()`` and forks each
worker from itself, so the workers share those pages copy-on-write. The forked child then does
exactly what the stock worker does: it takes the function's environment and working directory,
and runs MiniStack's worker script, which builds sys.path, imports the handler module (a cold
start still pays the function's own initialisation) and serves invocations.

Fidelity guards, each falling back to a plain spawn for the worker concerned:
- a zygote exists per (interpreter, first layer, interpreter-level environment: PYTHON*, locale),
  and a function whose code folder or later layers hold a module the zygote preloaded is not
  forked (its own copy, before the first layer on sys.path, would win in a plain spawn), so a
  preloaded module is the very file the worker would import;
- the zygote runs with the cloud's environment, not a function's, and records every environment
  variable the preloads read while importing; a function whose environment gives one of them
  another value is not forked (the import would have read its value);
- a zygote that cannot start, or dies, is replaced by plain spawns, with a log line.

Workers stay in the cloud's process group, so stopping the group stops them; the zygote also
exits when the cloud's end of its socket closes. ``BATON_FORK_SERVER=0`` turns it off.

This file runs twice: imported by launcher.py on MiniStack's interpreter (``start_worker``), and
as the zygote script on the Lambda runtime's interpreter (``python forkserver.py FD``), where
baton is not installed: standard library only.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import json
import os
import queue
import runpy
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO

SETTING = "BATON_FORK_SERVER"
# Imported once per zygote. Each was checked to read no function-specific setting at import (the
# zygote records what they read anyway, see above). Not aws_xray_sdk: importing it builds its
# recorder from the environment (LAMBDA_TASK_ROOT, AWS_XRAY_*), so it stays per worker.
PRELOAD = (
    "boto3", "boto3.session", "boto3.dynamodb.conditions", "boto3.dynamodb.types",
    "botocore.session", "botocore.client", "botocore.args", "botocore.endpoint",
    "botocore.httpsession", "botocore.parsers", "botocore.serialize", "botocore.auth",
    "botocore.regions", "botocore.retries.standard", "botocore.retries.adaptive",
    "botocore.credentials", "botocore.utils", "botocore.exceptions",
    "pydantic", "pydantic_settings",
    "aws_lambda_powertools", "aws_lambda_powertools.logging", "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.utilities.typing", "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.utilities.parser.models",
    "trafilatura",  # the transformer's extraction (lxml, justext, ...): ~0.3 s to import
    # baton's shared layer (functions/shared/pipeline): its pydantic models alone take ~40 ms to
    # build in each worker. Not pipeline.observability: it builds Powertools' Logger, Tracer and
    # Metrics from a function's own settings.
    "pipeline.models", "pipeline.errors", "pipeline.keys", "pipeline.steps", "pipeline.aws",
    "pipeline.dynamodb", "pipeline.alerts", "pipeline.policy", "pipeline.monitor_models",
)

# botocore's data files every client reads as it is created, for the services the functions call on
# their hot paths: parsed once in the zygote instead of in every worker (a DynamoDB client alone
# cost a worker 15 MB of parsed JSON and ~60 ms). Other services' files are read as usual.
BOTOCORE_DATA = ("endpoints", "partitions", "sdk-default-configuration", "_retry")
# botocore's names for them: Step Functions' files are under "stepfunctions" (its endpoint prefix,
# "states", is not a data folder). No function calls SQS (a queue only triggers the tracker).
BOTOCORE_SERVICES = ("dynamodb", "s3", "lambda", "events", "sns", "stepfunctions")
BOTOCORE_SERVICE_DATA = ("service-2", "endpoint-rule-set-1")

# Environment variables the interpreter itself reads at start, before any import: a zygote serves
# only workers whose values of these equal its own.
INTERPRETER_ENV_PREFIXES = ("PYTHON",)
INTERPRETER_ENV_NAMES = ("LANG", "LC_ALL", "LC_CTYPE")
# (interpreter, first layer, interpreter-level environment): which zygote a worker forks from.
ZygoteKey = tuple[str, str, tuple[tuple[str, str], ...]]
START_TIMEOUT_S = 60.0  # the preloads take ~1 s of CPU; a loaded machine may take much longer
REPORT_WAIT_S = 1.0  # how long an exited worker's status may take to arrive from its zygote
MESSAGE_BYTES = 1 << 20
# A zygote that forked nothing this long and has no live worker is stopped when a zygote next starts
# or forks (one per first layer: each redeploy of a changed layer would otherwise leave one behind,
# ~100 MB); it starts again if a worker needs it. Its functions' last workers are kept warm, so a
# zygote with none is one whose functions were redeployed, deleted or evicted for the warm cap.
UNUSED_ZYGOTE_S = 10.0
ORPHANED_EXIT = -signal.SIGKILL  # the status of a worker whose zygote died first is lost


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether workers are forked from a zygote (the default) or started as new interpreters."""
    return environ.get(SETTING, "1").strip().lower() not in ("0", "false", "no", "off")


def log(message: str) -> None:
    """One line in the local cloud's log."""
    print(f"baton fork server: {message}", file=sys.stderr, flush=True)


# -- messages: JSON over a SOCK_SEQPACKET socket pair, descriptors beside them ----------------------


def send(sock: socket.socket, message: Mapping[str, Any], fds: Iterable[int] = ()) -> None:
    """Send one message (and file descriptors) as one packet."""
    data = json.dumps(message).encode()
    if len(data) > MESSAGE_BYTES:
        raise ValueError(f"fork server message of {len(data)} bytes is over {MESSAGE_BYTES}")
    fds = list(fds)
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.sendall(data)


def receive(sock: socket.socket, max_fds: int = 0) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the descriptors that came with it; (None, []) once the peer has gone."""
    if max_fds:
        data, fds, _, _ = socket.recv_fds(sock, MESSAGE_BYTES, max_fds)
    else:
        data, fds = sock.recv(MESSAGE_BYTES), []
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(data), list(fds)


# -- the zygote (runs on the Lambda runtime's interpreter) -------------------------------------------


def layer_paths(layers_dirs: str) -> list[str]:
    """The sys.path entries MiniStack's worker script puts first for these layers, in its order."""
    paths: list[str] = []
    for layer in filter(None, layers_dirs.split(os.pathsep)):
        python = os.path.join(layer, "python")
        if os.path.isdir(python):
            paths.insert(0, python)
        paths.insert(0, layer)
    return paths


class _ReadRecorder(os._Environ):
    """os.environ that remembers each variable read (and any read of the whole environment)."""

    def __init__(self, environ: Any, reads: dict[str, str | None]) -> None:
        super().__init__(environ._data, environ.encodekey, environ.decodekey, environ.encodevalue,
                         environ.decodevalue)
        self.reads = reads

    def __getitem__(self, key: str) -> str:
        try:
            value: str = super().__getitem__(key)
        except KeyError:
            self.reads.setdefault(key, None)
            raise
        self.reads.setdefault(key, value)
        return value

    def __iter__(self) -> Any:
        self.reads["*"] = None  # the whole environment was read: no function can be compared
        return super().__iter__()


def preload(modules: Iterable[str]) -> tuple[list[str], list[str], dict[str, str | None]]:
    """Import ``modules`` (those that import) and run the WARMUPS of those imported; the modules
    loaded, what the warm-ups built, and the environment they all read."""
    reads: dict[str, str | None] = {}
    original = os.environ
    os.environ = _ReadRecorder(original, reads)  # noqa: B003 (same variables, reads recorded)
    loaded: list[str] = []
    warmed: list[str] = []
    try:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # not in this interpreter or these layers: the worker imports its own
                continue
            loaded.append(name)
        for name, warm_up in WARMUPS.items():
            if name in sys.modules:
                with contextlib.suppress(Exception):  # a version that differs: built on first use
                    warmed.extend(warm_up())
    finally:
        os.environ = original  # noqa: B003
    return loaded, warmed, reads


def botocore_data() -> list[str]:
    """Parse botocore's common data files (BOTOCORE_DATA, BOTOCORE_SERVICES); the names parsed.

    Each parsed file is handed to the first loader of the worker that reads that very path, as if
    it had parsed the file itself; any later read parses the file again, as botocore does (a
    loader may change what it was given: it merges a model's extras into it). A file is found
    where the worker's loader finds it (the search paths are the same: the user's ~/.aws/models
    first, then botocore's own).
    """
    from botocore import loaders

    parse = loaders.JSONFileLoader.load_file
    parsed: dict[str, Any] = {}

    class Parsing(loaders.JSONFileLoader):
        def load_file(self, file_path: str) -> Any:
            data = parse(self, file_path)
            if data is not None:
                parsed[file_path] = data
            return data

    loader = loaders.Loader(file_loader=Parsing())
    names = list(BOTOCORE_DATA)
    for service in BOTOCORE_SERVICES:
        for kind in BOTOCORE_SERVICE_DATA:
            with contextlib.suppress(Exception):  # a service this botocore does not have
                names.append(f"{service}/{loader.determine_latest_version(service, kind)}/{kind}")
    found = []
    for name in names:
        with contextlib.suppress(Exception):
            loader.load_data_with_path(name)
            found.append(name)

    def load_file(self: Any, file_path: str) -> Any:
        data = parsed.pop(file_path, None)
        return parse(self, file_path) if data is None else data

    loaders.JSONFileLoader.load_file = load_file
    return [f"botocore data {name}" for name in found]


def justext_stoplist() -> list[str]:
    """trafilatura's justext fallback (a page with little text) joins every language's stoplist
    into one of ~154,000 words, then a lower-cased set of it: ~40 MB and ~0.1 s in each worker
    that builds them on its first such page. Built here, from the same files, they are shared."""
    from justext.core import define_stoplist
    from trafilatura.external import jt_stoplist_init

    define_stoplist(jt_stoplist_init())  # the cache trafilatura's later calls find
    return ["justext stoplist (every language)"]


# Caches a library builds on first use, alike in every worker (from the files it ships): built once
# in the zygote when the module named is preloaded, so each worker starts with them as shared pages.
WARMUPS: dict[str, Callable[[], list[str]]] = {
    "botocore.loaders": botocore_data,
    "trafilatura": justext_stoplist,
}


def _top_level_names() -> list[str]:
    return sorted({name.partition(".")[0] for name in sys.modules})


def serve(sock: socket.socket, modules: Iterable[str] = PRELOAD) -> None:
    """The zygote: preload, freeze, then fork a worker for each request until the socket closes.

    sys.path is the interpreter's own, without a script's folder (the worker's goes first).
    """
    startup_path = list(sys.path)
    sys.path[:0] = layer_paths(os.environ.get("_LAMBDA_LAYERS_DIRS", ""))
    loaded, warmed, reads = preload(modules)
    sys.path[:] = startup_path
    if threading.active_count() != 1:  # forking a process with threads copies only one of them
        send(sock, {"error": "a preloaded module started a thread"})
        return
    gc.collect()
    gc.freeze()  # the collector no longer writes to the preloaded objects: their pages stay shared
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_write)
    send(sock, {"ready": True, "pid": os.getpid(), "loaded": loaded, "warmed": warmed, "env_reads": reads,
                "modules": _top_level_names()})
    while True:
        ready, _, _ = select.select([sock.fileno(), wake_read], [], [])
        if wake_read in ready:
            os.read(wake_read, 512)
            _report_exits(sock)
        if sock.fileno() in ready:
            request, fds = receive(sock, max_fds=3)
            if request is None:
                return  # the cloud has gone: its workers end when their stdin closes
            try:
                pid = os.fork()
            except OSError as error:
                _close(fds)
                send(sock, {"error": f"fork failed: {error}"})
                continue
            if pid == 0:
                os._exit(_become_worker(request, fds, startup_path, [sock.fileno(), wake_read,
                                                                     wake_write]))
            _close(fds)
            send(sock, {"pid": pid})


def _report_exits(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _close(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _become_worker(request: Mapping[str, Any], fds: list[int], startup_path: list[str],
                   zygote_fds: list[int]) -> int:
    """In the forked child: become what ``python <script>`` with this env and cwd would be; run it."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _close(zygote_fds)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        _close(fd for fd in fds if fd > 2)
        _std_streams(sys.stdout.encoding, sys.stdout.errors or "strict")
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        script = request["script"]
        sys.argv = [script]
        sys.path[:] = [os.path.dirname(os.path.abspath(script)), *startup_path]
        time.tzset()  # a new interpreter reads TZ at its start
        # The preloaded objects stay frozen: a collection that traversed them would write to
        # each one and copy all their pages (measured: 7 MB more private memory per worker). The
        # worker's own objects are collected as in any interpreter.
    except BaseException:
        traceback.print_exc()
        return 1
    try:
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if not isinstance(stop.code, int | None):
            print(stop.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code


def _std_streams(encoding: str, errors: str) -> None:
    """sys.std* (and sys.__std*__) over descriptors 0-2, as a new interpreter opens them on pipes."""
    streams = (
        io.TextIOWrapper(open(0, "rb", closefd=False), encoding=encoding, errors=errors),  # noqa: SIM115
        io.TextIOWrapper(open(1, "wb", closefd=False), encoding=encoding, errors=errors),  # noqa: SIM115
        io.TextIOWrapper(open(2, "wb", closefd=False), encoding=encoding,  # noqa: SIM115
                         errors="backslashreplace", line_buffering=True),
    )
    for name, stream in zip(("stdin", "stdout", "stderr"), streams, strict=True):
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)  # MiniStack's worker script writes to sys.__stderr__


# -- the cloud's side (MiniStack's interpreter) ---------------------------------------------------


class ForkedProcess:
    """A worker forked by a zygote, seen through the part of ``subprocess.Popen`` MiniStack uses.

    The worker is the zygote's child, not the cloud's: its exit is seen on a pidfd (which also makes
    signals safe against a reused pid) and its status comes from the zygote, which reaps it.
    """

    def __init__(self, args: list[str], pid: int, exit_status: _ExitStatus, stdin: TextIO, stdout: TextIO,
                 stderr: TextIO) -> None:
        self.args = args
        self.pid = pid
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode: int | None = None
        self._status = exit_status
        self._pidfd: int | None
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # exited and reaped already
            self._pidfd = None
        self._lock = threading.Lock()

    def poll(self) -> int | None:
        """The exit code once the worker has exited, else None."""
        return self._finish() if self._exited(0) else self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the worker to exit; its exit code (``subprocess.TimeoutExpired`` after ``timeout``)."""
        if not self._exited(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self._finish()

    def send_signal(self, signum: int) -> None:
        """Signal the worker unless it has exited (through its pidfd: never another process)."""
        with self._lock:
            if self.returncode is None and self._pidfd is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._pidfd, signum)

    def terminate(self) -> None:
        """SIGTERM, as ``Popen.terminate``."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, as ``Popen.kill``."""
        self.send_signal(signal.SIGKILL)

    def _exited(self, timeout: float | None) -> bool:
        with self._lock:
            pidfd = self._pidfd
            if pidfd is None:
                return True
        waiting = select.poll()  # not select(): the cloud may hold more than 1024 descriptors
        waiting.register(pidfd, select.POLLIN)
        return bool(waiting.poll(None if timeout is None else timeout * 1000))

    def _finish(self) -> int:
        code = self._status.wait(REPORT_WAIT_S)
        with self._lock:
            if self.returncode is None:
                self.returncode = code
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
            return self.returncode

    def __del__(self) -> None:
        if getattr(self, "_pidfd", None) is not None:
            os.close(self._pidfd)  # type: ignore[arg-type]


class _ExitStatus:
    """A forked worker's exit code, as its zygote reports it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.code = ORPHANED_EXIT

    def set(self, code: int) -> None:
        self.code = code
        self.done.set()

    def wait(self, timeout: float) -> int:
        self.done.wait(timeout)
        return self.code


class ZygoteError(RuntimeError):
    """The zygote could not start or fork: the worker is started without it."""


class Zygote:
    """One zygote process and the cloud's end of its socket."""

    def __init__(self, binary: str, environ: Mapping[str, str], modules: Iterable[str] = PRELOAD) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [binary, os.path.abspath(__file__), str(theirs.fileno()), *modules],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, pass_fds=[theirs.fileno()],
                env=dict(environ))
        except OSError as error:
            ours.close()
            raise ZygoteError(f"cannot start {binary}: {error}") from error
        finally:
            theirs.close()
        self.sock = ours
        self.alive = True
        self.used_at = time.monotonic()  # its start, then its last fork
        self._replies: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._statuses: dict[int, _ExitStatus] = {}
        self._lock = threading.Lock()  # one fork request at a time
        ours.settimeout(START_TIMEOUT_S)
        try:
            hello, _ = receive(ours)
        except (OSError, ValueError) as error:
            self.stop()
            raise ZygoteError(f"no answer from the zygote: {error}") from error
        if hello is None or not hello.get("ready"):
            self.stop()
            raise ZygoteError(f"the zygote did not start: {(hello or {}).get('error', 'it exited')}")
        ours.settimeout(None)
        self.loaded: list[str] = hello["loaded"]
        self.warmed: list[str] = hello["warmed"]
        self.env_reads: dict[str, str | None] = hello["env_reads"]
        self.modules: frozenset[str] = frozenset(hello["modules"])
        threading.Thread(target=self._read, name="baton-zygote", daemon=True).start()

    def fork(self, script: str, cwd: str, env: Mapping[str, str]) -> ForkedProcess:
        """A worker running ``script`` in ``cwd`` with ``env``, its stdio piped as MiniStack's Popen's."""
        pipes = [os.pipe() for _ in range(3)]
        child_ends = [pipes[0][0], pipes[1][1], pipes[2][1]]
        ours = [pipes[0][1], pipes[1][0], pipes[2][0]]
        try:
            with self._lock:
                if not self.alive:
                    raise ZygoteError("the zygote has exited")
                send(self.sock, {"script": script, "cwd": cwd, "env": dict(env)}, child_ends)
                reply = self._replies.get()
        except (OSError, ValueError) as error:
            _close(ours)
            raise ZygoteError(f"cannot reach the zygote: {error}") from error
        except ZygoteError:
            _close(ours)
            raise
        finally:
            _close(child_ends)
        if reply is None or "pid" not in reply:
            _close(ours)
            raise ZygoteError((reply or {}).get("error", "the zygote exited"))
        pid = reply["pid"]
        self.used_at = time.monotonic()
        return ForkedProcess([script], pid, self._statuses[pid], *_text_pipes(*ours))

    def idle_for(self) -> float | None:
        """Seconds since its last fork if none of its workers is alive, else None."""
        return None if self._statuses else time.monotonic() - self.used_at

    def _read(self) -> None:
        while True:
            try:
                message, _ = receive(self.sock)
            except (OSError, ValueError):
                message = None
            if message is None:
                break
            if "exited" in message:
                status = self._statuses.pop(message["exited"], None)
                if status is not None:
                    status.set(message["code"])
            else:
                if "pid" in message:  # registered before the worker's exit can be reported
                    self._statuses[message["pid"]] = _ExitStatus()
                self._replies.put(message)
        stopping, self.alive = not self.alive, False
        self._replies.put(None)
        for status in self._statuses.values():  # orphans: their status is lost with the zygote
            status.done.set()
        if not stopping:
            log(f"the zygote (pid {self.process.pid}) exited; new workers start as new interpreters")

    def stop(self) -> None:
        """Close the socket (the zygote exits on it) and reap the zygote."""
        self.alive = False
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread; the zygote sees the end
        self.sock.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _text_pipes(stdin: int, stdout: int, stderr: int) -> tuple[TextIO, TextIO, TextIO]:
    """The worker's pipes as ``Popen(..., text=True, bufsize=1)`` wraps them."""
    return (io.TextIOWrapper(open(stdin, "wb"), write_through=True, line_buffering=True),
            io.TextIOWrapper(open(stdout, "rb")),
            io.TextIOWrapper(open(stderr, "rb")))


def interpreter_env(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The variables of ``env`` the interpreter reads at its start (part of a zygote's identity)."""
    return tuple(sorted((name, value) for name, value in env.items()
                        if name.startswith(INTERPRETER_ENV_PREFIXES) or name in INTERPRETER_ENV_NAMES))


class ForkServers:
    """The cloud's zygotes, one per (interpreter, layers, interpreter environment), started on demand."""

    def __init__(self, base_env: Mapping[str, str] = os.environ, modules: Iterable[str] = PRELOAD) -> None:
        self.base_env = base_env
        self.modules = tuple(modules)
        self._zygotes: dict[ZygoteKey, Zygote | None] = {}
        self._starting: dict[ZygoteKey, threading.Event] = {}
        self._lock = threading.Lock()
        self._said: set[str] = set()

    def start_worker(self, runtime: str, binary: str, script: str, cwd: str,
                     env: Mapping[str, str]) -> Any:
        """The worker process for ``script``: forked when it can be faithfully, else a new interpreter."""
        if runtime.startswith("python") and enabled(self.base_env):
            try:
                return self._fork(binary, script, cwd, env)
            except ZygoteError as error:
                self._say_once(f"{env.get('AWS_LAMBDA_FUNCTION_NAME', '?')}: {error}", str(error))
        return subprocess.Popen([binary, script], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, bufsize=1, env=dict(env))

    def would_preload_from(self, layer: str) -> bool:
        """Whether a zygote on this first layer would preload some of its packages."""
        return bool(_layer_modules([layer]) & {module.partition(".")[0] for module in self.modules})

    def prestart(self, binary: str, layers: str, env: Mapping[str, str]) -> None:
        """Start the zygote workers with this interpreter, layers and environment would fork from."""
        if enabled(self.base_env):
            with contextlib.suppress(ZygoteError):  # logged; its first worker is a plain spawn
                self._zygote(zygote_key(binary, layers, env))

    def _fork(self, binary: str, script: str, cwd: str, env: Mapping[str, str]) -> ForkedProcess:
        layers = env.get("_LAMBDA_LAYERS_DIRS", "")
        key = zygote_key(binary, layers, env)
        zygote = self._zygote(key)
        self._retire_unused(keep=key)
        function = env.get("AWS_LAMBDA_FUNCTION_NAME", "?")
        if "*" in zygote.env_reads:
            raise ZygoteError("not forked: a preloaded module read the whole environment at import")
        differing = sorted(name for name, value in zygote.env_reads.items() if env.get(name) != value)
        if differing:
            raise ZygoteError(f"not forked: the preloaded modules read {', '.join(differing)} at import, "
                              "which this function sets otherwise")
        shadowing = sorted(zygote.modules & _module_names(cwd))
        if shadowing:
            raise ZygoteError(f"not forked: its code has its own {', '.join(shadowing)}")
        # Later layers come first on the worker's sys.path: one holding a preloaded module would win.
        layered = sorted(zygote.modules & _layer_modules(split_layers(layers)[1]))
        if layered:
            raise ZygoteError(f"not forked: a layer after its first has its own {', '.join(layered)}")
        if any(os.path.isdir(os.path.join(layer, "python", "lib")) for layer in layers.split(os.pathsep)
               if layer):  # site directories (.pth files) the zygote does not reproduce
            raise ZygoteError("not forked: a layer has a python/lib site directory")
        try:
            return zygote.fork(script, cwd, env)
        except ZygoteError:
            with self._lock:
                if self._zygotes.get(key) is zygote and not zygote.alive:
                    self._zygotes[key] = None  # not restarted: one that died may die again
            raise ZygoteError(f"{function}: the zygote is gone") from None

    def _zygote(self, key: ZygoteKey) -> Zygote:
        """The zygote of ``key`` (zygote_key), started if there is none yet."""
        # Concurrent cold starts of one key wait for one zygote, not start several; zygotes of
        # different keys start side by side.
        with self._lock:
            starting = self._starting.get(key)
            starter = starting is None and key not in self._zygotes
            if starter:
                starting = self._starting[key] = threading.Event()
        if not starter:
            if starting is not None:
                starting.wait()
            with self._lock:
                found = self._zygotes.get(key)
            if found is None:
                raise ZygoteError("its zygote could not start or has died")
            return found
        self._retire_unused(keep=key)
        assert starting is not None
        binary, layer, interpreter = key
        environ = {**self.base_env, **dict(interpreter), "_LAMBDA_LAYERS_DIRS": layer}
        started: Zygote | None = None
        try:
            zygote = started = Zygote(binary, environ, self.modules)
        except ZygoteError as error:
            raise ZygoteError(f"the zygote for {binary} could not start ({error}); workers "
                              "start as new interpreters") from None
        finally:
            with self._lock:
                self._zygotes[key] = started  # None: not started, the key's workers are spawned
                del self._starting[key]
            starting.set()
        log(f"zygote pid {zygote.process.pid} for {binary}, layers {layer or 'none'}: "
            f"{len(zygote.loaded)} of {len(self.modules)} preloads imported, "
            f"{len(zygote.warmed)} caches built")
        return zygote

    def _retire_unused(self, keep: ZygoteKey) -> None:
        """Stop the zygotes but ``keep``'s with no live worker that forked none for
        UNUSED_ZYGOTE_S: those of a layer a redeploy replaced (its functions' workers were retired
        with it). Looked for whenever a zygote starts or forks, so one left behind by a redeploy
        does not stay for the cloud's life (~100 MB each)."""
        with self._lock:
            unused = [other for other, zygote in self._zygotes.items() if other != keep
                      and zygote is not None and (zygote.idle_for() or 0) > UNUSED_ZYGOTE_S]
            stale = [zygote for other in unused if (zygote := self._zygotes.pop(other)) is not None]
        for zygote in stale:
            log(f"zygote pid {zygote.process.pid} stopped: no worker and no fork for "
                f"{UNUSED_ZYGOTE_S:.0f} s")
            zygote.stop()

    def _say_once(self, message: str, kind: str) -> None:
        with self._lock:
            if kind in self._said:
                return
            self._said.add(kind)
        log(message)

    def stop(self) -> None:
        """Stop every zygote (their workers end with their own stdin)."""
        with self._lock:
            zygotes = [zygote for zygote in self._zygotes.values() if zygote is not None]
            self._zygotes.clear()
        for zygote in zygotes:
            zygote.stop()


def zygote_key(binary: str, layers: str, env: Mapping[str, str]) -> ZygoteKey:
    """Which zygote a worker of this interpreter, layers and environment forks from: (interpreter,
    first layer, interpreter-level environment)."""
    return binary, split_layers(layers)[0], interpreter_env(env)


def split_layers(layers: str) -> tuple[str, list[str]]:
    """A function's layer folders (os.pathsep-separated): the first, whose packages its zygote
    preloads (one zygote serves every function built on the same first layer), and the others."""
    listed = [layer for layer in layers.split(os.pathsep) if layer]
    return (listed[0] if listed else ""), listed[1:]


def _layer_modules(layers: Iterable[str]) -> set[str]:
    """The top-level module names these layer folders provide (each layer and its python/)."""
    return {name for path in layer_paths(os.pathsep.join(layers)) for name in _module_names(path)}


def _module_names(folder: str) -> set[str]:
    """The top-level module names a folder on sys.path provides."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return set()
    return {entry.partition(".")[0] for entry in entries
            if os.path.isdir(os.path.join(folder, entry)) or entry.endswith((".py", ".pyc", ".so"))}


def main(argv: list[str]) -> None:
    """The zygote's entry point: ``forkserver.py FD [MODULE ...]``."""
    sys.path.pop(0)  # this script's folder (baton's launcher modules): no worker imports from it
    sock = socket.socket(fileno=int(argv[0]))
    try:
        serve(sock, argv[1:])
    except Exception as error:  # the cloud falls back to plain spawns on a zygote that fails
        traceback.print_exc()
        with contextlib.suppress(OSError):
            send(sock, {"error": f"the zygote failed: {error}"})
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
