"""Lazily created AWS clients: warm starts reuse them and moto can start first."""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config


@functools.cache
def sns_client() -> Any:
    """The SNS client of the alerts."""
    return boto3.client("sns")


@functools.cache
def stepfunctions_client() -> Any:
    """The Step Functions client of the stepfunctions engine."""
    return boto3.client("stepfunctions")


@functools.cache
def orchestrator_client() -> Any:
    """The Lambda client that waits for the orchestrator: a run may take its whole 15 minutes.

    One try: a retried RequestResponse invoke would run the same run in a second invocation.
    """
    config = Config(read_timeout=960, connect_timeout=5, retries={"total_max_attempts": 1})
    return boto3.client("lambda", config=config)
