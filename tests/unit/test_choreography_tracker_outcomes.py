"""What the run tracker makes of terminal events and of dead letters (pure, no AWS)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from engines.choreography import ATTEMPTS_PER_INVOCATION
from engines.events import (
    PAGE_FAILED,
    PAGE_MODERATED,
    PAGE_REQUESTED,
    PAGE_SCRAPED,
    PAGE_STORED,
    ItemEnd,
)
from pipeline.models import Change, ItemOutcome, ScrapeRequest, StoredRecord, Verdict
from tests.choreography_fakes import REQUESTED_AT, event, metadata
from tracker.logic import (
    dead_letter_outcome,
    error_message,
    state_machine_outcome,
    terminal_outcome,
)

AT = REQUESTED_AT + timedelta(seconds=5)
RECORD = StoredRecord(
    run_id="run-1", url="http://a.test/", content_hash="h", text_key="pages/x/h.txt",  # type: ignore[arg-type]
    change=Change.NEW, verdict=Verdict.BLOCK, score=0.9, checked_at=REQUESTED_AT)


def failure_record(original: dict[str, Any], error_type: str | None, count: int) -> dict[str, Any]:
    """A Lambda OnFailure destination record, as AWS writes it."""
    response = {} if error_type is None else {"errorType": error_type, "errorMessage": "boom",
                                               "stackTrace": []}
    return {
        "version": "1.0",
        "timestamp": "2026-11-22T10:00:05.000Z",
        "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted",
                           "approximateInvokeCount": count,
                           "functionArn": "arn:aws:lambda:us-east-1:1:function:x:$LATEST"},
        "requestPayload": original,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                            "functionError": "Unhandled"},
        "responsePayload": response,
    }


def requested(attempts: int = 0) -> dict[str, Any]:
    data = ScrapeRequest(run_id="run-1", url="http://a.test/")  # type: ignore[arg-type]
    return event(PAGE_REQUESTED, metadata(attempts=attempts), data)


def test_page_stored_ends_the_item_as_succeeded_with_its_record_attempts_and_validators():
    scraped = metadata(attempts=3).model_copy(update={"etag": '"v1"', "last_modified": "then"})
    stored = event(PAGE_STORED, scraped, RECORD)

    outcome = terminal_outcome(EventBridgeModel.model_validate(stored), AT)

    assert outcome == ItemOutcome(run_id="run-1", url="http://a.test/", succeeded=True,
                                  record=RECORD, attempts=3, duration_ms=5000.0, etag='"v1"',
                                  last_modified="then")


def test_page_failed_carries_its_outcome_as_is():
    failed = ItemOutcome(run_id="run-1", url="http://a.test/", succeeded=False,
                         error_type="PermanentError", failed_step="scraper")

    outcome = terminal_outcome(EventBridgeModel.model_validate(event(PAGE_FAILED, metadata(),
                                                                     failed)), AT)

    assert outcome == failed


def test_a_non_terminal_event_is_refused():
    with pytest.raises(ValueError, match="the tracker counts"):
        terminal_outcome(EventBridgeModel.model_validate(requested()), AT)


def test_a_transient_error_dead_letter_counts_the_adapters_tries_per_invocation():
    outcome = dead_letter_outcome(failure_record(requested(), "TransientError", 1), {}, AT)

    assert (outcome.succeeded, outcome.failed_step, outcome.error_type, outcome.error) == (
        False, "scraper", "TransientError", "boom")
    assert outcome.attempts == ATTEMPTS_PER_INVOCATION  # as the orchestrator's 1 + 3 retries
    assert outcome.duration_ms == 5000.0


def test_another_error_dead_letter_counts_lambdas_invocations():
    scraped = event(PAGE_SCRAPED, metadata(attempts=1), {"not": "parsed here"})

    outcome = dead_letter_outcome(failure_record(scraped, "Sandbox.Timedout", 3), {}, AT)

    assert (outcome.failed_step, outcome.error_type, outcome.attempts) == (
        "transformer", "Sandbox.Timedout", 3)


def test_a_dead_letter_without_response_names_its_condition():
    outcome = dead_letter_outcome(failure_record(requested(), None, 1), {}, AT)

    assert outcome.error_type == "RetriesExhausted"


def test_an_undelivered_event_fails_the_step_it_was_for_with_the_reason_given():
    moderated = event(PAGE_MODERATED, metadata(attempts=2), {"not": "parsed here"})

    outcome = dead_letter_outcome(moderated, {"ERROR_CODE": "NO_PERMISSIONS",
                                              "ERROR_MESSAGE": "denied"}, AT)

    assert (outcome.failed_step, outcome.error_type, outcome.error, outcome.attempts) == (
        "store", "NO_PERMISSIONS", "denied", 2)


def test_a_dead_letter_of_a_terminal_event_is_replayed():
    stored = event(PAGE_STORED, metadata(attempts=1), RECORD)

    outcome = dead_letter_outcome(failure_record(stored, "TransientError", 3), {}, AT)

    assert outcome.succeeded and outcome.record == RECORD


def test_anything_else_is_not_a_dead_letter_of_the_pipeline():
    with pytest.raises(ValueError, match="not a dead letter"):
        dead_letter_outcome({"hello": "world"}, {}, AT)


@pytest.mark.parametrize(("cause", "message"), [
    ('{"errorMessage": "http://s/missing answered 404", "errorType": "PermanentError"}',
     "http://s/missing answered 404"),
    ("Task timed out after 60.00 seconds", "Task timed out after 60.00 seconds"),
    ('["not", "an", "error", "object"]', '["not", "an", "error", "object"]'),
])
def test_a_step_functions_error_reads_as_its_message(cause: str, message: str) -> None:
    assert error_message(cause) == message


def test_a_state_machine_item_end_reports_the_message_like_the_other_engines() -> None:
    failed = ItemOutcome(run_id="r", url="http://s/a", succeeded=False, error_type="PermanentError",
                         failed_step="scraper", error='{"errorMessage": "http://s/a answered 404"}')

    outcome = state_machine_outcome(ItemEnd(outcome=failed, alert_flagged=False))

    assert outcome.error == "http://s/a answered 404"
    assert outcome.model_copy(update={"error": failed.error}) == failed
