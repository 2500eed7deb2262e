"""One SNS alert per flagged page: subject and body as the state machine writes them too."""

from __future__ import annotations

import json

from pipeline.alerts import SnsAlerts
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


class FlaggedPageAlerts:
    """The engine's Alerts on the alert topic: one message per flagged record."""

    def __init__(self, topic: SnsAlerts) -> None:
        self.topic = topic

    def flagged(self, record: StoredRecord) -> None:
        """Publish one alert about ``record``."""
        self.topic.publish(alert_subject(record), alert_body(record))
