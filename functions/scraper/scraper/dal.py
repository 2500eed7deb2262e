"""Where raw pages go: S3, behind a one-method interface so the logic can be tested without it."""

from __future__ import annotations

import functools
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.errors import TransientError


class RawStore(Protocol):
    """Keeps a raw page body under a key."""

    def put(self, key: str, body: bytes, content_type: str) -> None: ...


@functools.cache
def s3_client() -> Any:
    """The S3 client, created on first use so warm starts reuse it and moto can start first."""
    return boto3.client("s3")


class S3RawStore:
    """RawStore over one S3 bucket."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self.client = client

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Write ``body`` to ``key``; S3 throttling and outages are retryable."""
        client = self.client or s3_client()
        try:
            client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            code = error.response.get("Error", {}).get("Code", "")
            if status >= 500 or code in ("SlowDown", "RequestTimeout", "Throttling"):
                raise TransientError(f"S3 put of {key} failed: {code}") from error
            raise
        except BotoCoreError as error:  # endpoint unreachable, read timeout
            raise TransientError(f"S3 put of {key} failed: {error}") from error
