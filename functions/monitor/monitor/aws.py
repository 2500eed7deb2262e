"""Lazily created AWS clients (warm starts reuse them, moto can start first) and item codecs."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@functools.cache
def dynamodb_client() -> Any:
    """The DynamoDB client of the watchlist, the monitor's state and the runs table."""
    return boto3.client("dynamodb")


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


def to_item(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (None values left out: DynamoDB has no use for them)."""
    return {name: _serializer.serialize(_decimals(value))
            for name, value in attributes.items() if value is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values of a DynamoDB item: ints and floats rather than Decimals."""
    return {name: _numbers(_deserializer.deserialize(value)) for name, value in item.items()}


def _decimals(value: Any) -> Any:
    # DynamoDB numbers must be Decimal; str() keeps the float's shortest exact repr.
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {key: _decimals(inner) for key, inner in value.items() if inner is not None}
    if isinstance(value, list):
        return [_decimals(inner) for inner in value]
    return value


def _numbers(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {key: _numbers(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_numbers(inner) for inner in value]
    return value
