"""A LocalStack Lambda runtime executor that runs each execution environment as a host process.

LocalStack (community, host mode) runs functions only in Docker containers. This plugin, installed
into LocalStack's virtualenv by ``scripts/localstack_harness.py`` (as module
``baton_localstack_lambda``, entry point ``baton-host`` of ``localstack.lambda.runtime_executor``)
and chosen with ``LAMBDA_RUNTIME_EXECUTOR=baton-host``, starts ``localstack_lambda_runtime.py``
instead of a container: same environment variables, same executor endpoint protocol, so
LocalStack's own invoke path (concurrency, timeouts, async retries, logs, event source mappings,
Step Functions and EventBridge targets) is what runs the functions. The function's code and its
layers come from LocalStack's own unzipped copies (layers are applied here, as the Pro image
would: community LocalStack keeps them but never mounts them).

    BATON_LAMBDA_PYTHON   the interpreter functions run on (required)
    BATON_LAMBDA_LOG_DIR  where each environment's own output goes (default: a temporary folder)

It is no sandbox: the function runs as the user, on 127.0.0.1, like baton's embedded cloud.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from localstack import config
from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)
from localstack.utils.net import get_free_tcp_port

RUNTIME = Path(__file__).with_name("baton_localstack_lambda_runtime.py")
# Each environment's own log (what a container's `docker logs` would show), for get_logs.
LOGS = Path(os.environ.get("BATON_LAMBDA_LOG_DIR") or Path(tempfile.gettempdir()) / "baton-lambda")
# What a host process needs from LocalStack's own environment; the rest is the function's.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE")


class HostRuntimeExecutor(RuntimeExecutor):
    """One execution environment: a host process speaking the container init's protocol."""

    def __init__(self, id: str, function_version: Any) -> None:
        super().__init__(id=id, function_version=function_version)
        self.endpoint = ExecutorEndpoint(self.id, container_address="127.0.0.1")
        self.process: subprocess.Popen[bytes] | None = None
        self.log = LOGS / f"{function_version.id.function_name}-{id}.log"

    def start(self, env_vars: dict[str, str]) -> None:
        """Start the environment's process and wait until it reports ready."""
        python = os.environ.get("BATON_LAMBDA_PYTHON")
        if not python:
            raise LambdaRuntimeException("BATON_LAMBDA_PYTHON is not set: the baton-host executor "
                                         "needs the interpreter functions run on")
        self.endpoint.start()
        self.endpoint.container_port = get_free_tcp_port()
        config_ = self.function_version.config
        paths = [str(config_.code.get_unzipped_code_location())]
        paths += [str(Path(layer.code.get_unzipped_code_location()) / "python")
                  for layer in config_.layers if layer.code is not None]
        env = {key: os.environ[key] for key in INHERITED if key in os.environ}
        env |= {key: str(value) for key, value in env_vars.items()}
        env |= {"LAMBDA_TASK_ROOT": paths[0], "BATON_RUNTIME_PATH": os.pathsep.join(paths),
                "BATON_RUNTIME_PORT": str(self.endpoint.container_port),
                "PYTHONDONTWRITEBYTECODE": "1"}
        LOGS.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            # Same process group as LocalStack: stopping LocalStack's group stops its functions.
            self.process = subprocess.Popen([python, str(RUNTIME)], env=env, cwd=paths[0],
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT)
        self.endpoint.wait_for_startup()

    def stop(self) -> None:
        """Stop the process (LocalStack calls this on timeout, idle and shutdown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # An endpoint never started or already gone has nothing left to stop.
        with contextlib.suppress(Exception):
            self.endpoint.shutdown()

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return (f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}"
                f"{self.endpoint.get_endpoint_prefix()}")

    def invoke(self, payload: dict[str, str]) -> Any:
        return self.endpoint.invoke(payload)

    def get_logs(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return "environment never started"

    @classmethod
    def prepare_version(cls, function_version: Any) -> None:
        """Unzip the code and layers once, when the version is created."""
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()
        for layer in function_version.config.layers:
            if layer.code is not None:
                layer.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: Any) -> None:
        """Nothing beyond LocalStack's own copies to clean."""

    @classmethod
    def validate_environment(cls) -> bool:
        return bool(os.environ.get("BATON_LAMBDA_PYTHON"))


class HostRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    """The plugin LocalStack loads for LAMBDA_RUNTIME_EXECUTOR=baton-host."""

    name = "baton-host"

    def load(self, *args: Any, **kwargs: Any) -> type[RuntimeExecutor]:
        return HostRuntimeExecutor
