"""Lambda entry point of the monitor: a scheduled event (or a direct invoke) in, MonitorRun out."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from engines.client import engine_client
from monitor.dal import TransitionAlerts
from monitor.engine import EnginePipelineRunner
from monitor.logic import Monitor, PipelineRunner, Trigger
from monitor.settings import MonitorSettings, get_settings
from pipeline import aws
from pipeline.alerts import SnsAlerts
from pipeline.monitor_models import Invocation, Thresholds
from pipeline.monitor_state import MonitorTable
from pipeline.observability import logger, metrics, tracer
from pipeline.watchlist import WatchlistTable


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Start a run over the watchlist (or follow the one going); alert on transitions."""
    trigger, engine, event_id = parse_event(event)
    settings = get_settings()
    margin_ms = settings.safety_margin_seconds * 1000
    follow_until = time.monotonic() + (settings.follow_seconds or float("inf"))
    run = monitor(settings, engine).run_once(
        trigger=trigger,
        expired=lambda: (context.get_remaining_time_in_millis() < margin_ms
                         or time.monotonic() > follow_until),
        lease_seconds=context.get_remaining_time_in_millis() / 1000,
        event_id=event_id,
    )
    metrics.add_metric(name="MonitorAlerts", unit=MetricUnit.Count, value=len(run.alerts))
    logger.info("monitor run", run_id=run.run_id, status=run.status, counts=run.counts,
                alerts=len(run.alerts), adopted=run.adopted)
    return run.model_dump(mode="json")


def parse_event(event: dict[str, Any]) -> tuple[Trigger, str | None, str | None]:
    """(trigger, engine override, schedule event id): a scheduled EventBridge event, or a
    direct Invocation."""
    if "detail-type" in event:
        scheduled = EventBridgeModel.model_validate(event)
        logger.append_keys(schedule_event_id=scheduled.id)
        return "schedule", None, scheduled.id
    return "direct", Invocation.model_validate(event).engine, None


def monitor(settings: MonitorSettings, engine: str | None = None) -> Monitor:
    """The monitor wired to DynamoDB, the chosen engine and the alert topic."""
    return Monitor(
        watchlist=WatchlistTable(settings.watchlist_table_name),
        table=MonitorTable(settings.state_table_name, retention_days=settings.retention_days),
        runner=runner(settings, engine or settings.engine),
        alerts=TransitionAlerts(SnsAlerts(settings.alert_topic_arn)),
        defaults=Thresholds(review=settings.review_threshold, block=settings.block_threshold),
        max_concurrency=settings.max_concurrency,
        runner_for=lambda other: runner(settings, other),
        run_lease_seconds=settings.run_lease_seconds,
    )


def runner(settings: MonitorSettings, engine: str) -> PipelineRunner:
    """The engine named ``engine``, configured from the settings."""
    settings.require(engine)
    return EnginePipelineRunner(engine_client(engine, settings.deployment(), aws.client),
                                poll_seconds=settings.poll_seconds)
