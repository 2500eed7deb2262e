"""Lambda entry point of the run tracker: a terminal event in, the item counted once (glue only)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from engines.alerts import FlaggedPageAlerts, alert_once
from engines.runs import RunsTable
from pipeline.alerts import SnsAlerts
from pipeline.observability import logger, metrics, tracer
from tracker.logic import terminal_outcome
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
    """Count one PageStored, PageNotModified or PageFailed, and alert on a flagged page; a
    redelivered one counts and alerts nothing."""
    at = datetime.now(UTC)
    outcome = terminal_outcome(EventBridgeModel.model_validate(event), at)
    recorded = tracker().record(outcome, at)
    # After the count: a failed publish raises, the event is delivered again, counts nothing
    # more, and the alert (given back by alert_once) is sent then.
    if outcome.record is not None:
        alert_once(tracker(), alerts(), outcome.run_id, outcome.url, outcome.record)
    metrics.add_metric(name="ItemsEnded" if recorded else "DuplicateEnds", unit=MetricUnit.Count,
                       value=1)
    logger.info("item ended" if recorded else "duplicate ignored", url=outcome.url,
                succeeded=outcome.succeeded, attempts=outcome.attempts)
    return {"recorded": recorded, "outcome": outcome.model_dump(mode="json")}
