"""The embedded local cloud: a MiniStack process on 127.0.0.1, started and stopped by baton.

Everything one instance owns sits under its state directory: the pid file, the log, MiniStack's
temporary files and, with ``persist``, the saved state.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from baton.errors import BatonError
from baton.localcloud import environments

DEFAULT_PORT = 4566
LAUNCHER = Path(__file__).with_name("launcher.py")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
WORKER_MIB = 100  # one warm Python worker's RSS here (its PSS, forked from a zygote: 25-37 MB)
DEFAULT_WORKER_IDLE_S = 30.0  # extra warm workers of a function live this long unused (AWS: minutes)
MAX_CONCURRENCY = 1000  # AWS's default account concurrency limit
MAX_WORKER_IDLE_S = 3600.0


def default_concurrency() -> int:
    """The account concurrency limit sized to this machine (memory and cores), 10 to AWS's 1000."""
    # An eighth of the memory in warm workers, at most 16 per core. Three times it caps the warm
    # workers in total (launcher patch "warm-workers-capped-in-total"). A lower limit (baton up
    # --concurrency 12) holds fewer workers, but measured slower: runs wait for slots and workers.
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    by_memory = memory // 8 // (WORKER_MIB * 2**20)
    return int(max(10, min(MAX_CONCURRENCY, by_memory, 16 * (os.cpu_count() or 1))))


def _positive_setting(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0
    if not 0 < value < math.inf:  # also refuses nan
        raise BatonError(f"{name} must be a positive number, got {raw!r}")
    return value


def concurrency_limit() -> int:
    """The local cloud's account concurrency limit: BATON_LAMBDA_CONCURRENCY, else sized to the machine."""
    limit = _positive_setting("BATON_LAMBDA_CONCURRENCY", default_concurrency())
    if limit > MAX_CONCURRENCY or limit != int(limit):
        raise BatonError(f"BATON_LAMBDA_CONCURRENCY must be a whole number from 1 to {MAX_CONCURRENCY}, "
                         f"got {os.environ['BATON_LAMBDA_CONCURRENCY']!r}")
    return int(limit)


def worker_idle_s() -> float:
    """How long an extra warm worker may stay idle before it is stopped: BATON_WORKER_IDLE_S."""
    idle_s = _positive_setting("BATON_WORKER_IDLE_S", DEFAULT_WORKER_IDLE_S)
    if idle_s > MAX_WORKER_IDLE_S:
        raise BatonError(f"BATON_WORKER_IDLE_S must be at most {MAX_WORKER_IDLE_S:.0f} seconds, "
                         f"got {os.environ['BATON_WORKER_IDLE_S']!r}")
    return idle_s


def baton_home() -> Path:
    return Path(os.environ.get("BATON_HOME", Path.home() / ".baton"))


def default_state_dir() -> Path:
    return Path(os.environ.get("BATON_STATE_DIR", baton_home() / "local"))


def endpoint_for(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def probe_health(port: int, path: str = "/_ministack/health", timeout: float = 1.0) -> dict | None:
    """The JSON a health endpoint answers on 127.0.0.1:port, or None if nothing answers it."""
    try:
        with urllib.request.urlopen(f"{endpoint_for(port)}{path}", timeout=timeout) as response:
            body = json.loads(response.read())
            return body if isinstance(body, dict) else None
    except (OSError, ValueError, urllib.error.URLError):
        return None


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def describe_occupant(port: int) -> str:
    """Say what holds a port that is not ours, from the health endpoint it answers."""
    if (found := probe_health(port, "/_localstack/health")) is not None:
        if probe_health(port, "/_ministack/health") is not None:
            return f"a MiniStack {found.get('version', '?')} that baton did not start"
        return f"LocalStack {found.get('edition', '')} {found.get('version', '?')}".replace("  ", " ")
    return "a process that is not an AWS emulator (no /_localstack/health endpoint)"


def command_line(pid: int) -> list[str] | None:
    """The arguments process ``pid`` was started with, or None if it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None  # Linux: the process is gone
    except OSError:
        return None
    # Without /proc (macOS): ps prints the command line, split on spaces (enough to find the launcher).
    result = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True)
    return result.stdout.split() if result.returncode == 0 and result.stdout.strip() else None


def runs_launcher(arguments: list[str]) -> bool:
    """Whether a command line is a local cloud: an interpreter running baton's launcher.py."""
    return any(Path(argument).parts[-2:] == LAUNCHER.parts[-2:] for argument in arguments[1:2])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serving_since(port: int) -> datetime | None:
    """When the local cloud answering on ``port`` started, if it is the one baton started from
    the state directory (``BATON_STATE_DIR``); None when that is not known.

    Whatever a run had in flight in an earlier process (an invocation, an event on its way, an
    execution) died with it: a redrive uses this to know that a run started before is not still
    carried by anything.
    """
    instance = LocalCloud(say=lambda _: None).running()
    if instance is None or instance.port != port or not instance.answering:
        return None
    return instance.started_at


@dataclass(frozen=True)
class Running:
    pid: int
    port: int
    persist: bool
    version: str
    answering: bool = True  # False: the process is ours but nothing answers at its port
    started_at: datetime | None = None  # None: recorded by a baton that did not say

    @property
    def endpoint(self) -> str:
        return endpoint_for(self.port)


class LocalCloud:
    """One MiniStack instance, identified by its state directory."""

    def __init__(self, state_dir: Path | None = None, venvs_dir: Path | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        self.state_dir = state_dir or default_state_dir()
        self.venvs_dir = venvs_dir or baton_home() / "venvs"
        self.say = say or (lambda message: print(message, file=sys.stderr))
        self.pid_file = self.state_dir / "ministack.pid"
        self.log_file = self.state_dir / "ministack.log"

    # -- queries ---------------------------------------------------------------------------

    def running(self) -> Running | None:
        """The instance this state directory started, if its recorded process is still the local cloud.

        A record whose process is gone, or is now another program (a reused pid), is stale: it is
        removed, with a one-line message.
        """
        record = self._read_pid_file()
        if record is None:
            return None
        arguments = command_line(record["pid"])
        if not arguments or not runs_launcher(arguments):  # [] is a zombie: it has exited too
            what = "has exited" if not arguments else f"is now {' '.join(arguments)[:60]!r}"
            self.say(f"Removed a stale local cloud record: pid {record['pid']} {what}.")
            self.pid_file.unlink(missing_ok=True)
            return None
        health = probe_health(record["port"])
        if health is None:
            return Running(record["pid"], record["port"], record["persist"], "not answering", False,
                           record["started_at"])
        return Running(record["pid"], record["port"], record["persist"], health.get("version", "?"),
                       started_at=record["started_at"])

    # -- commands --------------------------------------------------------------------------

    def prepare(self) -> tuple[Path, Path]:
        """Create (once) the emulator and function-runtime environments; return both pythons."""
        return (
            environments.ensure(environments.MINISTACK, self.venvs_dir, self.say),
            environments.ensure(environments.LAMBDA_RUNTIME, self.venvs_dir, self.say),
        )

    def up(self, port: int = DEFAULT_PORT, persist: bool = False, concurrency: int | None = None,
           worker_idle: float | None = None) -> tuple[Running, bool]:
        """Start the local cloud and wait until healthy. Returns (instance, started_now).

        ``concurrency`` and ``worker_idle`` override BATON_LAMBDA_CONCURRENCY and BATON_WORKER_IDLE_S.
        """
        if (current := self.running()) is not None:
            if current.answering:
                return current, False
            self.say(f"The local cloud (pid {current.pid}) does not answer on port {current.port}; "
                     "restarting it.")
            self._stop_process(current.pid)
            self.pid_file.unlink(missing_ok=True)
        if port_in_use(port):
            raise BatonError(
                f"port {port} on 127.0.0.1 is taken by {describe_occupant(port)}.\n"
                f"Stop it, or start the local cloud elsewhere: baton up --port {port + 1}"
            )
        # Bad settings fail before anything starts.
        limit = concurrency_limit() if concurrency is None else concurrency
        idle_s = worker_idle_s() if worker_idle is None else worker_idle
        ministack_python, lambda_python = self.prepare()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / "tmp"
        shutil.rmtree(tmp, ignore_errors=True)  # the last run's worker dirs and layer cache
        tmp.mkdir()
        env = {
            # A clean environment: nothing of the caller's virtualenv may reach function code.
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "TMPDIR": str(tmp),
            "PYTHONNOUSERSITE": "1",
            "GATEWAY_PORT": str(port),
            "BIND_HOST": "127.0.0.1",
            "IOT_MTLS_ENABLED": "0",
            "BATON_LAMBDA_PYTHON": str(lambda_python),
            # As on AWS: a synchronous invoke beyond the limit gets TooManyRequestsException, an
            # asynchronous event waits (launcher patch "async-throttle-waits").
            "LAMBDA_ACCOUNT_CONCURRENCY": str(limit),
            "LAMBDA_WARM_TTL_SECONDS": str(max(1, round(idle_s))),  # MiniStack reads whole seconds
        }
        # Settings the launcher reads: the request guard's allowlist, the persistence interval,
        # whether Python workers are forked from a zygote (forkserver.py).
        for setting in ("BATON_ALLOWED_ORIGINS", "BATON_PERSIST_INTERVAL_S", "BATON_FORK_SERVER"):
            if setting in os.environ:
                env[setting] = os.environ[setting]
        if persist:
            env |= {
                "PERSIST_STATE": "1",
                "STATE_DIR": str(self.state_dir / "data"),
                "S3_PERSIST": "1",
                "S3_DATA_DIR": str(self.state_dir / "s3"),
            }
        with open(self.log_file, "a") as log:
            log.write(f"\n--- baton up on port {port} at {time.strftime('%Y-%m-%dT%H:%M:%S')} ---\n")
            log.flush()
            process = subprocess.Popen(
                [str(ministack_python), str(LAUNCHER)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True, cwd=self.state_dir,
            )
        started_at = datetime.now(UTC)
        self.pid_file.write_text(json.dumps({"pid": process.pid, "port": port, "persist": persist,
                                             "started_at": started_at.isoformat()}))
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BatonError(f"the local cloud exited during start (code {process.returncode}).\n"
                                 + self._log_tail())
            if (health := probe_health(port, timeout=0.5)) is not None:
                return Running(process.pid, port, persist, health.get("version", "?"),
                               started_at=started_at), True
            time.sleep(0.05)
        self._stop_process(process.pid)
        raise BatonError(f"the local cloud did not become healthy in {START_TIMEOUT_S:.0f} s.\n"
                         + self._log_tail())

    def down(self) -> Running | None:
        """Stop the instance gracefully (so --persist state is saved). None if nothing ran."""
        instance = self.running()
        if instance is None:
            return None
        self._stop_process(instance.pid)
        self.pid_file.unlink(missing_ok=True)
        return instance

    # -- internals -------------------------------------------------------------------------

    def _stop_process(self, pid: int) -> None:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not _alive(pid) or not command_line(pid):  # gone, or a zombie another process reaps
                return
            try:  # reap it if it is our child (the test fixture), so it is not left a zombie
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                pass
            time.sleep(0.05)
        self.say(f"the local cloud (pid {pid}) ignored SIGTERM for {STOP_TIMEOUT_S:.0f} s; killing "
                 "it (unsaved state is lost)")
        os.killpg(pid, signal.SIGKILL)

    def _read_pid_file(self) -> dict | None:
        try:
            record = json.loads(self.pid_file.read_text())
            started = record.get("started_at")
            return {"pid": int(record["pid"]), "port": int(record["port"]),
                    "persist": bool(record.get("persist", False)),
                    "started_at": datetime.fromisoformat(started) if started else None}
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            self.say(f"ignoring an unreadable pid file: {self.pid_file}")
            return None

    def _log_tail(self, lines: int = 20) -> str:
        try:
            tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            tail = []
        return "Last log lines:\n  " + "\n  ".join(tail) + f"\nFull log: {self.log_file}"
