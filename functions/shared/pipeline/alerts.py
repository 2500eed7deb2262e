"""The alert topic: one SNS publish of a subject, a body and optional message attributes.

The orchestrator (a flagged page) and the monitor (a transition) each format their own
message and publish it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws


class SnsAlerts:
    """Publishes messages to one SNS topic; its client is the shared lazy one unless given."""

    def __init__(self, topic_arn: str, client: Any = None) -> None:
        self.topic_arn = topic_arn
        self._client = client

    def publish(self, subject: str, body: str, attributes: Mapping[str, str] | None = None) -> None:
        """Publish one message; ``attributes`` become String message attributes (for filters)."""
        message: dict[str, Any] = {"TopicArn": self.topic_arn, "Subject": subject, "Message": body}
        if attributes:
            message["MessageAttributes"] = {
                name: {"DataType": "String", "StringValue": value}
                for name, value in attributes.items()
            }
        try:
            (self._client or aws.client("sns")).publish(**message)
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, f"publishing {subject!r} to {self.topic_arn}") from error
