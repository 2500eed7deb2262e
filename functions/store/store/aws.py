"""Lazily created AWS clients and the mapping of AWS failures to the contract's error classes."""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.errors import PermanentError, TransientError

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "Throttling",
        "InternalServerError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "TransactionInProgressException",
    }
)


@functools.cache
def s3_client() -> Any:
    """The S3 client, created on first use so warm starts reuse it and moto can start first."""
    return boto3.client("s3")




def error_code(error: ClientError) -> str:
    """The AWS error code of a ClientError, e.g. "ConditionalCheckFailedException"."""
    return str(error.response.get("Error", {}).get("Code", ""))


def translate(error: Exception, action: str) -> Exception:
    """The contract error for an AWS failure, or ``error`` itself when it is neither kind."""
    if isinstance(error, BotoCoreError):  # endpoint unreachable, read timeout
        return TransientError(f"{action} failed: {error}")
    if isinstance(error, ClientError):
        code = error_code(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in RETRYABLE_CODES or status >= 500:
            return TransientError(f"{action} failed: {code}")
        if code in ("NoSuchKey", "404"):
            return PermanentError(f"{action} failed: the object does not exist")
    return error
