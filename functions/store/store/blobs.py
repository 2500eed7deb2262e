"""Where clean texts are kept: S3, behind a one-method interface so the logic can be tested."""

from __future__ import annotations

from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from store.aws import s3_client, translate


class TextStore(Protocol):
    """Copies a text object to its permanent key."""

    def keep(self, source_key: str, permanent_key: str) -> None: ...


class S3TextStore:
    """TextStore within one S3 bucket (the transformer writes its texts there too)."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._client = client

    def keep(self, source_key: str, permanent_key: str) -> None:
        """Server-side copy; repeating it is harmless because the target is content-addressed."""
        client = self._client or s3_client()
        try:
            client.copy_object(
                Bucket=self.bucket,
                Key=permanent_key,
                CopySource={"Bucket": self.bucket, "Key": source_key},
            )
        except (ClientError, BotoCoreError) as error:
            raise translate(error, f"copying s3://{self.bucket}/{source_key}") from error
