"""S3 access for the transformer: read raw pages, write extracted texts."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws


class S3Pages:
    """Raw pages and extracted texts in one bucket; its client is the shared lazy one."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self.client = client or aws.client("s3")

    def read(self, key: str) -> bytes:
        """The object's bytes; PermanentError if it does not exist."""
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, f"reading s3://{self.bucket}/{key}") from error

    def write_text(self, key: str, text: str) -> None:
        """Store UTF-8 text under key."""
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=text.encode("utf-8"),
                ContentType="text/plain; charset=utf-8",
            )
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, f"writing s3://{self.bucket}/{key}") from error
