"""S3 access for the moderator: read the transformer's text. The client is lazy."""

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


class S3Texts:
    """Extracted texts in one bucket."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self.client = client or s3_client()

    def read_text(self, key: str) -> str:
        """The UTF-8 text stored under key; PermanentError if it does not exist."""
        where = f"s3://{self.bucket}/{key}"
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            kind = PermanentError if code in _PERMANENT else TransientError
            raise kind(f"{where}: {code or error}") from error
        except BotoCoreError as error:
            raise TransientError(f"{where}: {error}") from error
        return body.decode("utf-8", errors="replace")
