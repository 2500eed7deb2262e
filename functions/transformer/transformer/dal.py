"""S3 access for the transformer: read raw pages, write extracted text. Clients are lazy."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.errors import PermanentError, TransientError

# S3 error codes retrying cannot fix; anything else (5xx, throttling, resets) may pass later.
_PERMANENT = {"NoSuchKey", "NoSuchBucket", "404", "403", "AccessDenied", "InvalidObjectState"}


@cache
def s3_client() -> Any:
    """The S3 client, created on first use so warm starts reuse it and moto can start first."""
    return boto3.client("s3")


class S3Pages:
    """Raw pages and extracted texts in one bucket."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self.client = client or s3_client()

    def read(self, key: str) -> bytes:
        """The object's bytes; PermanentError if it does not exist."""
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            raise _classify(error, f"s3://{self.bucket}/{key}") from error
        except BotoCoreError as error:
            raise TransientError(f"reading s3://{self.bucket}/{key}: {error}") from error

    def write_text(self, key: str, text: str) -> None:
        """Store UTF-8 text under key."""
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=text.encode("utf-8"),
                ContentType="text/plain; charset=utf-8",
            )
        except ClientError as error:
            raise _classify(error, f"s3://{self.bucket}/{key}") from error
        except BotoCoreError as error:
            raise TransientError(f"writing s3://{self.bucket}/{key}: {error}") from error


def _classify(error: ClientError, where: str) -> Exception:
    code = str(error.response.get("Error", {}).get("Code", ""))
    kind = PermanentError if code in _PERMANENT else TransientError
    return kind(f"{where}: {code or error}")
