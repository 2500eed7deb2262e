"""A real LocalStack (host mode, set up by scripts/localstack_harness.py) for these tests.

They run with `make test-localstack` (BATON_TEST_LOCALSTACK=1); elsewhere they are skipped, since
the first setup installs LocalStack (a few minutes). Each module starts its own LocalStack on a
free port and stops it at the end; `baton` subprocesses reach it through BATON_ENDPOINT_URL, and
its functions reach the sample site the tests serve on 127.0.0.1 directly (they run on the host).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from baton import targets

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
ENABLED = os.environ.get("BATON_TEST_LOCALSTACK") == "1"


def load_harness() -> Any:
    spec = importlib.util.spec_from_file_location("localstack_harness",
                                                  ROOT / "scripts" / "localstack_harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


harness = load_harness()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs a real LocalStack: run `make test-localstack`")
    for item in items:
        if Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)
            if not ENABLED:
                item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_localstack(stand_in_docker: bool, host_functions: bool = False) -> Iterator[str]:
    """Start a LocalStack, point baton at it, yield its endpoint; stop it afterwards. With
    ``host_functions`` its functions run (as host processes: see the harness)."""
    layout = harness.Layout(harness.default_home())
    port = free_port()
    started = time.monotonic()
    harness.start(layout, port, stand_in_docker, host_functions)
    endpoint = f"http://127.0.0.1:{port}"
    print(f"\nLocalStack healthy on {endpoint} after {time.monotonic() - started:.1f} s",
          file=sys.stderr)
    previous = os.environ.get("BATON_ENDPOINT_URL")
    os.environ["BATON_ENDPOINT_URL"] = endpoint
    targets.client.cache_clear()
    try:
        yield endpoint
    finally:
        harness.stop(layout)
        if previous is None:
            os.environ.pop("BATON_ENDPOINT_URL", None)
        else:
            os.environ["BATON_ENDPOINT_URL"] = previous
        targets.client.cache_clear()


@pytest.fixture(scope="module")
def aws() -> Callable[[str], Any]:
    """A boto3 client factory bound to the module's LocalStack (through baton's own targets)."""
    return lambda service: targets.client(service, "localstack")


def baton(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the `baton` CLI against the LocalStack target; its output, never a hang."""
    return subprocess.run([sys.executable, "-m", "baton.cli", *args], capture_output=True,
                          text=True, timeout=900, env=os.environ.copy(), cwd=ROOT)
