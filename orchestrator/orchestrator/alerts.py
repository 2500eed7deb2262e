"""One SNS alert per flagged page: subject and body as the state machine writes them too."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.aws import sns_client
from pipeline.models import StoredRecord

# The state machine formats the same subject with States.Format (a test checks they match). No
# URL in it: SNS subjects stop at 100 characters and URLs do not.
SUBJECT_FORMAT = "baton: page flagged ({})"


def alert_subject(record: StoredRecord) -> str:
    """The alert's subject line, e.g. "baton: page flagged (block)"."""
    return SUBJECT_FORMAT.replace("{}", record.verdict.value)


def alert_body(record: StoredRecord) -> str:
    """The alert's body: the stored record as JSON."""
    return json.dumps(record.model_dump(mode="json"))


class SnsAlerts:
    """Publishes flagged pages to one SNS topic."""

    def __init__(self, topic_arn: str, client: Any = None) -> None:
        self.topic_arn = topic_arn
        self._client = client

    def flagged(self, record: StoredRecord) -> None:
        """Publish one alert about ``record``."""
        client = self._client or sns_client()
        client.publish(
            TopicArn=self.topic_arn, Subject=alert_subject(record), Message=alert_body(record)
        )
