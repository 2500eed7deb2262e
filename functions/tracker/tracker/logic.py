"""An item's outcome from what reaches the tracker: a terminal event, a state machine's item end,
or a dead letter.

Dead letters come in two shapes, both handled:

- a Lambda asynchronous-invocation failure record (an adapter's ``OnFailure`` destination):
  ``requestContext`` (``approximateInvokeCount``, ``condition``), ``requestPayload`` (the
  EventBridge event the function failed on), ``responsePayload`` (``errorType``,
  ``errorMessage``);
- an EventBridge target dead letter (the rule could not deliver the event at all): the event
  itself as the body, the reason in the ``ERROR_CODE`` / ``ERROR_MESSAGE`` message attributes.

Either way the failed step is the consumer of the event's detail-type. A dead letter of a
terminal event (the tracker itself failed on it) is replayed: the item ends as the event said.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from engines.choreography import ATTEMPTS_PER_INVOCATION, duration_ms
from engines.events import (
    PAGE_STORED,
    TERMINAL,
    EventMetadata,
    ItemEnd,
    PipelineDetail,
    consumer_of,
)
from pipeline.models import ItemOutcome, StoredRecord


class _Camel(BaseModel):
    # AWS adds fields over time (version, timestamp, requestId...): ignore what is not needed.
    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", frozen=True)


class RequestContext(_Camel):
    function_arn: str = ""
    condition: str = ""  # RetriesExhausted, EventAgeExceeded
    approximate_invoke_count: int = Field(default=1, ge=1)


class ResponsePayload(_Camel):
    error_type: str | None = None
    error_message: str | None = None


class AsyncFailure(_Camel):
    """A Lambda asynchronous invocation that failed for good (OnFailure destination record)."""

    request_context: RequestContext
    request_payload: dict[str, Any]
    response_payload: ResponsePayload | None = None


def terminal_outcome(event: EventBridgeModel, at: datetime) -> ItemOutcome:
    """The outcome a terminal event reports (PageStored, PageNotModified or PageFailed)."""
    if event.detail_type not in TERMINAL:
        raise ValueError(f"the tracker counts {', '.join(TERMINAL)}, got {event.detail_type}")
    detail = PipelineDetail.model_validate(event.detail)
    metadata = detail.metadata
    if event.detail_type != PAGE_STORED:
        return ItemOutcome.model_validate(detail.data)
    return ItemOutcome(
        run_id=metadata.run_id,
        url=metadata.url,
        succeeded=True,
        record=StoredRecord.model_validate(detail.data),
        attempts=max(metadata.attempts, 1),
        duration_ms=duration_ms(metadata, at),
        etag=metadata.etag,
        last_modified=metadata.last_modified,
    )


def event_metadata(event: EventBridgeModel) -> EventMetadata:
    """What an event says of its item; its ``requested_at`` (the item's admission) tells a stale
    end: a redrive admits the item again, so an end older than its redrive is one of the earlier
    attempt (``RunsTable.record`` ignores it)."""
    return PipelineDetail.model_validate(event.detail).metadata


def ended_at(metadata: EventMetadata, received_at: datetime) -> datetime:
    """When the item a terminal event is about ended: when the event was put (its step stamps
    it), not when the tracker got to it (after the bus's and the tracker's own queue); the
    receipt's time for an event without the stamp."""
    return metadata.sent_at or received_at


def dead_letter_event(body: Mapping[str, Any]) -> EventBridgeModel:
    """The pipeline event a dead letter is about: the failed function's request, or the event
    EventBridge could not deliver."""
    if "requestContext" in body:
        return EventBridgeModel.model_validate(AsyncFailure.model_validate(body).request_payload)
    if "detail-type" in body:
        return EventBridgeModel.model_validate(body)
    raise ValueError("not a dead letter of the pipeline: neither a Lambda failure record "
                     "nor an EventBridge event")


def dead_letter_outcome(
    body: Mapping[str, Any], attributes: Mapping[str, str | None], at: datetime
) -> ItemOutcome:
    """The outcome of the item a dead letter is about (see the module's docstring)."""
    event = dead_letter_event(body)
    if "requestContext" in body:
        failure = AsyncFailure.model_validate(body)
        response = failure.response_payload or ResponsePayload()
        context = failure.request_context
        error_type = response.error_type or context.condition or "Unknown"
        error = response.error_message or context.condition
        # A TransientError reaching the queue is one the adapter retried per the policy on each
        # invocation; anything else (a timeout, a crash) was tried once per invocation.
        per_invocation = ATTEMPTS_PER_INVOCATION if error_type == "TransientError" else 1
        tries = context.approximate_invoke_count * per_invocation
    else:
        error_type = attributes.get("ERROR_CODE") or "NotDelivered"
        error = attributes.get("ERROR_MESSAGE") or "EventBridge could not deliver the event"
        tries = 0  # the step never ran

    if event.detail_type in TERMINAL:
        return terminal_outcome(event, ended_at(event_metadata(event), at))
    link = consumer_of(event.detail_type)
    if link is None:
        raise ValueError(f"no step consumes {event.detail_type}")
    metadata: EventMetadata = PipelineDetail.model_validate(event.detail).metadata
    return ItemOutcome(
        run_id=metadata.run_id,
        url=metadata.url,
        succeeded=False,
        error_type=error_type,
        error=error,
        failed_step=link.name,
        attempts=max(metadata.attempts, tries),
        duration_ms=duration_ms(metadata, at),
    )


def error_message(cause: str) -> str:
    """The message of a Step Functions Task's ``Cause``: Lambda's error JSON carries it as
    ``errorMessage``; any other cause (a timeout, a States.* error) is already a sentence."""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict) and isinstance(parsed.get("errorMessage"), str):
        return str(parsed["errorMessage"])
    return cause


def state_machine_outcome(end: ItemEnd) -> ItemOutcome:
    """The outcome a state machine's item ended with, its error a message as the other engines
    report it (ASL can only pass the raw cause on)."""
    outcome = end.outcome
    if outcome.error is None:
        return outcome
    return outcome.model_copy(update={"error": error_message(outcome.error)})
