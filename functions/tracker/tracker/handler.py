"""Lambda entry point of the run tracker: a terminal event in, the item counted once (glue only)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from engines.alerts import FlaggedPageAlerts, alert_once
from engines.choreography import admit_next
from engines.events import ItemEnd
from engines.runs import RunsTable
from pipeline.alerts import SnsAlerts
from pipeline.observability import logger, metrics, tracer
from tracker.logic import ended_at, event_metadata, state_machine_outcome, terminal_outcome
from tracker.settings import get_settings


@functools.cache
def tracker() -> RunsTable:
    """The configured runs table, built once per warm container."""
    return RunsTable(get_settings().runs_table_name)


@functools.cache
def alerts() -> FlaggedPageAlerts:
    """The flagged-page alerts on the configured topic, built once per warm container."""
    return FlaggedPageAlerts(SnsAlerts(get_settings().alert_topic_arn))


@logger.inject_lambda_context(correlation_id_path="detail.metadata.run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Count one item's end, admit the choreographed item waiting behind it, and alert on a
    flagged page; a redelivered one counts and alerts nothing. The end is a terminal event
    (PageStored, PageNotModified, PageFailed), stamped when it was put, or, invoked by the state
    machine, an ItemEnd."""
    at = datetime.now(UTC)
    metadata = None
    if "detail-type" in event:
        received = EventBridgeModel.model_validate(event)
        metadata = event_metadata(received)
        at = ended_at(metadata, at)
        outcome, alert_flagged = terminal_outcome(received, at), True
        asked_at = metadata.requested_at
    else:
        end = ItemEnd.model_validate(event)
        outcome, alert_flagged, asked_at = state_machine_outcome(end), end.alert_flagged, None
    recorded = tracker().record(outcome, at, requested_at=asked_at)
    if metadata is not None:  # a choreographed item: its end lets the next one in
        admit_next(metadata, tracker())
    # After the count: a failed publish raises, the end is delivered again, counts nothing
    # more, and the alert (given back by alert_once) is sent then.
    if outcome.record is not None and alert_flagged:
        alert_once(tracker(), alerts(), outcome.run_id, outcome.url, outcome.record)
    metrics.add_metric(name="ItemsEnded" if recorded else "DuplicateEnds", unit=MetricUnit.Count,
                       value=1)
    logger.info("item ended" if recorded else "duplicate ignored", url=outcome.url,
                succeeded=outcome.succeeded, attempts=outcome.attempts)
    return {"recorded": recorded, "outcome": outcome.model_dump(mode="json")}
