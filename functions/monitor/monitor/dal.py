"""Transition alerts on the SNS alert topic: a readable subject and the Alert as a JSON body."""

from __future__ import annotations

from typing import Any

from monitor.aws import sns_client
from pipeline.monitor_models import Alert


class SnsAlerts:
    """Publishes one message per transition to one SNS topic."""

    def __init__(self, topic_arn: str, client: Any = None) -> None:
        self.topic_arn = topic_arn
        self._client = client

    def publish(self, subject: str, alert: Alert) -> None:
        """Publish ``alert``; its transition is also a message attribute, for filter policies."""
        (self._client or sns_client()).publish(
            TopicArn=self.topic_arn,
            Subject=subject,
            Message=alert.model_dump_json(),
            MessageAttributes={
                "source": {"DataType": "String", "StringValue": "baton-monitor"},
                "transition": {"DataType": "String", "StringValue": alert.transition.value},
            },
        )
