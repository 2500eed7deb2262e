"""The store step: ModerationResult in, StoredRecord out (glue only).

The function's entry point is entry.py, which hands it every step request and each event's data.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.models import ModerationResult
from pipeline.observability import logger, metrics, tracer
from store.dal import PageTable, S3TextStore
from store.logic import store_result
from store.settings import get_settings


@logger.inject_lambda_context(correlation_id_path="page.run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Store one moderated page; a redelivered event returns the record stored the first time."""
    result = ModerationResult.model_validate(event)
    settings = get_settings()
    record = store_result(
        result, table=PageTable(settings.table_name), texts=S3TextStore(settings.bucket_name)
    )
    metrics.add_metric(name=f"Pages{record.change.value.title()}", unit=MetricUnit.Count, value=1)
    logger.info("stored", url=str(record.url), change=record.change, verdict=record.verdict)
    return record.model_dump(mode="json")
