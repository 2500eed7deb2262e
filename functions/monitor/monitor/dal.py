"""The monitor's alert topic: one SNS message per transition, the Alert as its JSON body."""

from __future__ import annotations

from pipeline.alerts import SnsAlerts
from pipeline.monitor_models import Alert


class TransitionAlerts:
    """The monitor's AlertTopic on the shared SNS publisher."""

    def __init__(self, topic: SnsAlerts) -> None:
        self.topic = topic

    def publish(self, subject: str, alert: Alert) -> None:
        """Publish ``alert``; its transition is also a message attribute, for filter policies."""
        self.topic.publish(
            subject,
            alert.model_dump_json(),
            {"source": "baton-monitor", "transition": alert.transition.value},
        )
