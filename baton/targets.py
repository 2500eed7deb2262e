"""Where baton talks to: the embedded local cloud, a LocalStack, or AWS — only the endpoint differs."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from baton.errors import BatonError
from baton.localcloud import DEFAULT_PORT, endpoint_for, probe_health

TARGETS = ("local", "localstack", "aws")
REGION = os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
# Emulators accept any credentials; fixed ones keep a user's real keys away from them.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def local_port() -> int:
    return int(os.environ.get("BATON_PORT", DEFAULT_PORT))


def localstack_endpoint() -> str:
    import localstack_client.config

    return str(localstack_client.config.get_service_endpoint("lambda"))


def endpoint(target: str) -> str | None:
    """The endpoint URL of ``target``; None for AWS (boto3's own resolution)."""
    if target == "local":
        return endpoint_for(local_port())
    if target == "localstack":
        return localstack_endpoint()
    if target == "aws":
        return None
    raise BatonError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")


def require_reachable(target: str) -> None:
    """Fail with the endpoint tried and how to start it, if the target does not answer."""
    url = endpoint(target)
    if target == "local":
        if probe_health(local_port()) is None:
            raise BatonError(f"the local cloud is not reachable at {url}.\n"
                             f"Start it with: baton up --port {local_port()}")
    elif target == "localstack":
        port = int((url or "").rsplit(":", 1)[-1].strip("/") or 4566)
        if probe_health(port, "/_localstack/health") is None:
            raise BatonError(f"LocalStack is not reachable at {url}.\n"
                             "Start it with: localstack start -d (it needs Docker)")


@cache
def client(service: str, target: str = "local") -> Any:
    """A boto3 client for ``service`` on ``target``, built once per process."""
    url = endpoint(target)
    config = Config(retries={"mode": "standard"}, read_timeout=900, connect_timeout=5)
    if url is None:
        return boto3.client(service, region_name=REGION, config=config)
    return boto3.client(service, region_name=REGION, endpoint_url=url, config=config,
                        **EMULATOR_CREDENTIALS)
