"""Where raw pages go: S3, behind a one-method interface so the logic can be tested without it."""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws


class RawStore(Protocol):
    """Keeps a raw page body under a key."""

    def put(self, key: str, body: bytes, content_type: str) -> None: ...


class S3RawStore:
    """RawStore over one S3 bucket."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self.client = client

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Write ``body`` to ``key``; failures are contract errors (pipeline.aws.translate)."""
        try:
            (self.client or aws.client("s3")).put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type
            )
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, f"writing s3://{self.bucket}/{key}") from error
