"""Where baton talks to: the embedded local cloud, a LocalStack, or AWS — only the endpoint differs."""

from __future__ import annotations

import json
import os
import urllib.request
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from botocore.config import Config

from baton.errors import BatonError
from baton.localcloud import DEFAULT_PORT, endpoint_for, probe_health
from pipeline.aws import session

TARGETS = ("local", "localstack", "aws")
REGION = os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
# Emulators accept any credentials; fixed ones keep a user's real keys away from them.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


# Endpoints set for this process (the CLI's --endpoint-url); BATON_ENDPOINT_URL otherwise.
_ENDPOINT_URLS: dict[str, str] = {}
ENDPOINT_TARGETS = ("localstack", "aws")


def checked_endpoint_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host, else a BatonError saying what is wrong."""
    parts = urlsplit(url.strip())
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as error:
        raise BatonError(f"invalid endpoint URL {url!r}: {error}") from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BatonError(f"invalid endpoint URL {url!r}: expected http(s)://HOST[:PORT]")
    return url.strip().rstrip("/")


def use_endpoint_url(target: str, url: str | None) -> None:
    """Send every call for ``target`` to ``url`` (the CLI's --endpoint-url; None: the default)."""
    if target not in ENDPOINT_TARGETS:
        raise BatonError(f"--endpoint-url applies to the {' and '.join(ENDPOINT_TARGETS)} targets, "
                         f"not {target!r}")
    if url is None:
        _ENDPOINT_URLS.pop(target, None)
    else:
        _ENDPOINT_URLS[target] = checked_endpoint_url(url)
    client.cache_clear()  # clients built so far talk to the previous endpoint


def endpoint_override(target: str) -> str | None:
    """The endpoint set by --endpoint-url or BATON_ENDPOINT_URL for ``target``, if any."""
    if target not in ENDPOINT_TARGETS:
        return None
    if target in _ENDPOINT_URLS:
        return _ENDPOINT_URLS[target]
    from_environment = os.environ.get("BATON_ENDPOINT_URL", "").strip()
    return checked_endpoint_url(from_environment) if from_environment else None


def local_port() -> int:
    return int(os.environ.get("BATON_PORT", DEFAULT_PORT))


def localstack_endpoint() -> str:
    import localstack_client.config

    return str(localstack_client.config.get_service_endpoint("lambda"))


def endpoint(target: str) -> str | None:
    """The endpoint URL of ``target``; None for AWS unless one is set (boto3's own resolution).

    localstack: --endpoint-url, else BATON_ENDPOINT_URL, else localstack-client's LOCALSTACK_HOST
    (default localhost:4566).
    """
    if target == "local":
        return endpoint_for(local_port())
    if target == "localstack":
        return endpoint_override(target) or localstack_endpoint()
    if target == "aws":
        return endpoint_override(target)
    raise BatonError(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")


def require_reachable(target: str) -> None:
    """Fail with the endpoint tried and how to start it, if the target does not answer."""
    url = endpoint(target)
    if target == "local":
        if probe_health(local_port()) is None:
            raise BatonError(f"the local cloud is not reachable at {url}.\n"
                             f"Start it with: baton up --port {local_port()}")
    elif target == "localstack" and probe_url(f"{url}/_localstack/health") is None:
        raise BatonError(f"LocalStack is not reachable at {url}.\n"
                         "Start it with: localstack start -d (it needs Docker), or without "
                         "Docker: python scripts/localstack_harness.py start --host-functions; "
                         "or point --endpoint-url / BATON_ENDPOINT_URL at the one you run")


def probe_url(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """The JSON object ``url`` answers with, or None if nothing answers there."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read())
            return body if isinstance(body, dict) else None
    except (OSError, ValueError):
        return None


@cache
def client(service: str, target: str = "local") -> Any:
    """A boto3 client for ``service`` on ``target``, built once per process (and per endpoint)."""
    url = endpoint(target)
    config = Config(retries={"mode": "standard"}, read_timeout=900, connect_timeout=5)
    if target == "aws":  # the user's own credentials, wherever the endpoint is
        return session().client(service, region_name=REGION, endpoint_url=url, config=config)
    return session().client(service, region_name=REGION, endpoint_url=url, config=config,
                            **EMULATOR_CREDENTIALS)

