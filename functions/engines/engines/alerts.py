"""One SNS alert per flagged page, whichever engine ran it: subject and body as the state machine
writes them too, and at most once per (run, URL) however often the item is delivered or retried."""

from __future__ import annotations

import json
from typing import Protocol

from pipeline.alerts import SnsAlerts
from pipeline.models import FLAGGED, StoredRecord

# Every engine's flagged-page alert (the orchestrator's, the tracker's for choreography and Step
# Functions) has this subject. No URL in it: SNS subjects stop at 100 characters, URLs do not.
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


class Alerts(Protocol):
    """Where flagged pages are reported (FlaggedPageAlerts in production)."""

    def flagged(self, record: StoredRecord) -> None: ...


class AlertClaims(Protocol):
    """Who holds an item's one alert (engines.runs.RunsTable in production)."""

    def claim_alert(self, run_id: str, url: str) -> bool: ...

    def release_alert(self, run_id: str, url: str) -> None: ...


def alert_once(claims: AlertClaims, alerts: Alerts, run_id: str, url: str,
               record: StoredRecord) -> bool:
    """Alert about a flagged ``record`` unless the item's alert went out before; True if sent now.

    ``url`` is the item's as requested (its key in the run). The alert is claimed before it is
    published: a redelivered event or a restarted item finds the claim and sends nothing. A failed
    publish gives the claim back and raises, so the retry that follows sends it.
    """
    if record.verdict not in FLAGGED or not claims.claim_alert(run_id, url):
        return False
    try:
        alerts.flagged(record)
    except Exception:
        claims.release_alert(run_id, url)
        raise
    return True
