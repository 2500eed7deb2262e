"""Lambda entry point of the dead-letter queue consumer: failed items recorded as failed.

An SQS batch; each message is reported on its own (partial batch failure), so one message the
tracker cannot attribute to an item stays in the queue without holding the others back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from engines.choreography import admit_next
from pipeline.observability import logger, metrics, tracer
from tracker.handler import tracker
from tracker.logic import dead_letter_event, dead_letter_outcome, event_metadata

processor = BatchProcessor(event_type=EventType.SQS)


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    """Record the item one dead letter is about (raises when it cannot be attributed)."""
    at = datetime.now(UTC)
    attributes = {name: value.string_value for name, value in record.message_attributes.items()}
    outcome = dead_letter_outcome(record.json_body, attributes, at)
    metadata = event_metadata(dead_letter_event(record.json_body))
    recorded = tracker().record(outcome, at, requested_at=metadata.requested_at)
    admit_next(metadata, tracker())  # a failed item's end lets the next one in, as any end
    metrics.add_metric(name="DeadLetters", unit=MetricUnit.Count, value=1)
    logger.warning("dead letter recorded" if recorded else "dead letter of an ended or redriven item",
                   run_id=outcome.run_id, url=outcome.url, step=outcome.failed_step,
                   error_type=outcome.error_type, attempts=outcome.attempts)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Process one SQS batch of dead letters; failed messages are returned for redelivery."""
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
