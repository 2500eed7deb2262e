"""S3 access for the moderator: read the transformer's text."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws


class S3Texts:
    """Extracted texts in one bucket; its client is the shared lazy one."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self.client = client or aws.client("s3")

    def read_text(self, key: str) -> str:
        """The UTF-8 text stored under key; PermanentError if it does not exist."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, f"reading s3://{self.bucket}/{key}") from error
        return str(body.decode("utf-8", errors="replace"))
