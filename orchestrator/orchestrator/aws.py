"""Lazily created AWS clients: warm starts reuse them and moto can start before they exist."""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config


@functools.cache
def lambda_client(read_timeout: float) -> Any:
    """The Lambda client for step invokes: no botocore retries, the engine's policy retries."""
    config = Config(
        read_timeout=read_timeout,
        connect_timeout=5,
        retries={"total_max_attempts": 1},  # one try: retrying here would multiply attempts
    )
    return boto3.client("lambda", config=config)


@functools.cache
def sns_client() -> Any:
    """The SNS client of the alerts."""
    return boto3.client("sns")


@functools.cache
def async_lambda_client() -> Any:
    """The Lambda client for the run's own re-invocation: botocore's standard retries stay on,
    since a lost continuation would strand the run's remaining items."""
    return boto3.client("lambda", config=Config(retries={"mode": "standard", "max_attempts": 5}))
