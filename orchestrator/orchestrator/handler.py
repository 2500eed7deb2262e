"""Lambda entry point of the orchestrator: RunRequest in, RunSummary out (glue only)."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from engines.alerts import FlaggedPageAlerts
from engines.handoff import RequestStore
from engines.runs import RunsTable
from orchestrator.engine import Budget, Engine
from orchestrator.invoker import LambdaInvoker
from orchestrator.settings import OrchestratorSettings, get_settings
from pipeline import aws
from pipeline.alerts import SnsAlerts
from pipeline.models import RunRequest
from pipeline.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run (or continue) one run; re-invokes itself asynchronously when time runs short."""
    settings = get_settings()
    requests = RequestStore(settings.bucket_name, aws.client("s3"))
    request = requests.request(event)  # the request, or a pointer to it in S3 when large
    summary = engine(settings).run(
        request,
        budget=Budget(context.get_remaining_time_in_millis, settings.safety_margin_seconds),
        continue_run=functools.partial(reinvoke, context.function_name, requests),
    )
    metrics.add_metric(name="ItemsSucceeded", unit=MetricUnit.Count, value=summary.succeeded)
    metrics.add_metric(name="ItemsFailed", unit=MetricUnit.Count, value=summary.failed)
    metrics.add_metric(name="ItemsFlagged", unit=MetricUnit.Count, value=summary.flagged)
    logger.info("run summary", status=summary.status, succeeded=summary.succeeded,
                failed=summary.failed, pending=summary.pending)
    return summary.model_dump(mode="json")


def engine(settings: OrchestratorSettings) -> Engine:
    """The engine wired to Lambda, the runs table and the alert topic."""
    return Engine(
        invoke=LambdaInvoker(settings.function_names(), read_timeout=settings.invoke_read_timeout),
        runs=RunsTable(settings.runs_table_name),
        alerts=FlaggedPageAlerts(SnsAlerts(settings.alert_topic_arn)),
        max_continuations=settings.max_continuations,
    )


def reinvoke(function_name: str, requests: RequestStore, request: RunRequest) -> None:
    """Hand the rest of the run to a new invocation of this function (asynchronous)."""
    aws.client("lambda", aws.CONTINUATION).invoke(
        FunctionName=function_name, InvocationType="Event", Payload=requests.payload(request)
    )
