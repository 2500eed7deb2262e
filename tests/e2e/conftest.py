"""One embedded local cloud per test session, on a free port, so tests never touch a user's own."""

from __future__ import annotations

import io
import os
import socket
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from baton import targets
from baton.localcloud import LocalCloud, Running
from baton.site import serve

HANDLERS = Path(__file__).parent / "handlers"
ROLE = "arn:aws:iam::000000000000:role/baton-test"
# Every page of the engine tests is on one host (the sample site): with the default per-host
# limit of 2, their outcomes and attempts would depend on slot waits. test_politeness.py deploys
# its own stack with the default to test the limit; these stacks lift it to the engines' maximum.
UNLIMITED_HOST = "40"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    cloud = LocalCloud(state_dir=tmp_path_factory.mktemp("local-cloud"))
    instance, _ = cloud.up(port=free_port())
    # baton's own code (and `baton` subprocesses) reach the `local` target through BATON_PORT.
    os.environ["BATON_PORT"] = str(instance.port)
    targets.client.cache_clear()
    yield instance
    cloud.down()


@pytest.fixture(scope="session")
def sample_site_url() -> Iterator[str]:
    """The sample site on a free port for the whole session."""
    with serve(port=0) as site:
        yield site.base_url


@pytest.fixture(scope="session")
def aws(local_cloud: Running) -> Callable[[str], Any]:
    """A boto3 client factory bound to the session's local cloud."""

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=local_cloud.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    return client


def zip_handler(*names: str) -> bytes:
    """A function zip of the given handler modules from tests/e2e/handlers/."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.write(HANDLERS / name, name)
    return buffer.getvalue()


@pytest.fixture
def deploy_function(aws: Callable[[str], Any]) -> Iterator[Callable[..., str]]:
    """Create a uniquely named function from handler modules; deleted after the test."""
    lambdas = aws("lambda")
    created: list[str] = []

    def deploy(handler: str, modules: tuple[str, ...], timeout: int = 10,
               layers: list[str] | None = None) -> str:
        name = f"t-{handler.replace('.', '-')}-{uuid.uuid4().hex[:8]}"
        lambdas.create_function(
            FunctionName=name, Runtime="python3.11", Role=ROLE, Handler=handler,
            Code={"ZipFile": zip_handler(*modules)}, Timeout=timeout, Layers=layers or [],
        )
        created.append(name)
        return name

    yield deploy
    for name in created:
        lambdas.delete_function(FunctionName=name)


@pytest.fixture(scope="session")
def pipeline_stack(local_cloud: Running, sample_site_url: str) -> dict[str, str]:
    """The whole stack deployed once per session for the engine tests; its outputs."""
    from baton import deploy

    allowed = sample_site_url.removeprefix("http://")
    return deploy.deploy("local", "baton-engines", {"ScraperAllowedHosts": allowed,
                                                    "ScraperHostConcurrency": UNLIMITED_HOST},
                         say=lambda _: None).outputs
