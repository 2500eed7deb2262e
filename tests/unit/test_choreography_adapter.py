"""Each step's entry point (engines.choreography.adapt): a step request straight to the step's
logic; an event in, the logic, an event out, errors retried or final."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from engines.choreography import ATTEMPTS_PER_INVOCATION, adapt
from engines.events import (
    DEAD_LETTER,
    PAGE_FAILED,
    PAGE_MODERATED,
    PAGE_NOT_MODIFIED,
    PAGE_REQUESTED,
    PAGE_SCRAPED,
    PAGE_TRANSFORMED,
    ChainStep,
    EventMetadata,
)
from pipeline.errors import PermanentError, TransientError
from pipeline.models import ItemOutcome, ScrapedPage, ScrapeRequest
from pipeline.policy import POLICY
from pipeline.steps import STEPS
from tests.choreography_fakes import REQUESTED_AT, RecordingPublish, event, metadata
from tests.lambda_context import FakeLambdaContext

# The real handlers validate before touching AWS; Powertools warns that they published no metric.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

Logic = Callable[[dict[str, Any], Any], dict[str, Any]]
NOW = REQUESTED_AT + timedelta(seconds=2)


def context() -> Any:
    """A stand-in for the LambdaContext the runtime passes."""
    return FakeLambdaContext()


def scraped(raw_key: str | None = "raw/run-1/x.html") -> dict[str, Any]:
    return ScrapedPage(
        run_id="run-1", url="http://a.test/", final_url="http://a.test/",  # type: ignore[arg-type]
        status_code=304 if raw_key is None else 200, raw_key=raw_key, fetched_at=REQUESTED_AT,
        elapsed_ms=3.0, etag='"v1"', last_modified="Sun, 22 Nov 2026 10:00:00 GMT",
    ).model_dump(mode="json")


def request_event(meta: EventMetadata | None = None) -> dict[str, Any]:
    data = ScrapeRequest(run_id="run-1", url="http://a.test/")  # type: ignore[arg-type]
    return event(PAGE_REQUESTED, meta or metadata(), data)


class Scripted:
    """A step's logic that raises the given errors in turn, then returns ``answer``."""

    def __init__(self, answer: dict[str, Any], *errors: Exception) -> None:
        self.answer = answer
        self.errors = list(errors)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, data: dict[str, Any], context: Any) -> dict[str, Any]:
        self.calls.append(data)
        if self.errors:
            raise self.errors.pop(0)
        return self.answer


@pytest.fixture
def published() -> RecordingPublish:
    return RecordingPublish()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def scraper(published: RecordingPublish, sleeps: list[float]) -> Callable[[Logic], Any]:
    def build(logic: Logic) -> Any:
        return adapt("scraper", logic, publish=published, sleep=sleeps.append,
                     rng=random.Random(0), now=lambda: NOW)
    return build


def test_success_publishes_the_next_event_with_the_steps_output(scraper, published):
    logic = Scripted(scraped())

    answer = scraper(logic)(request_event(), context())

    assert logic.calls == [{"run_id": "run-1", "url": "http://a.test/", "etag": None,
                            "last_modified": None, "options": None}]
    [sent] = published.sent
    assert sent.detail_type == PAGE_SCRAPED
    assert sent.data == ScrapedPage.model_validate(scraped())
    # Stamped with the moment it was put: the bus's own time keeps whole seconds.
    assert sent.metadata == metadata(attempts=1).model_copy(
        update={"etag": '"v1"', "last_modified": "Sun, 22 Nov 2026 10:00:00 GMT",
                "sent_at": NOW})
    assert answer == {"published": PAGE_SCRAPED, "attempts": 1}


def test_a_step_request_goes_straight_to_the_step_and_its_answer_is_returned(
        scraper, published, sleeps):
    # The orchestrator's and Step Functions' invoke of the same function: no event is published,
    # and an error reaches the caller untouched, for its own retry policy.
    request = {"run_id": "run-1", "url": "http://a.test/"}
    logic = Scripted(scraped(), TransientError("busy"))
    entry = scraper(logic)

    with pytest.raises(TransientError, match="busy"):
        entry(request, context())
    answer = entry(request, context())

    assert logic.calls == [request, request]
    assert answer == scraped()
    assert published.sent == []
    assert sleeps == []


def test_a_not_modified_page_ends_the_item(scraper, published):
    scraper(Scripted(scraped(raw_key=None)))(request_event(), context())

    [sent] = published.sent
    assert sent.detail_type == PAGE_NOT_MODIFIED
    assert sent.data == ItemOutcome(run_id="run-1", url="http://a.test/", succeeded=True,
                                    attempts=1, duration_ms=2000.0, etag='"v1"',
                                    last_modified="Sun, 22 Nov 2026 10:00:00 GMT")


def test_a_permanent_error_publishes_page_failed_and_returns(scraper, published, sleeps):
    logic = Scripted(scraped(), PermanentError("HTTP 404 from http://a.test/"))

    answer = scraper(logic)(request_event(), context())

    [sent] = published.sent
    assert sent.detail_type == PAGE_FAILED
    assert sent.data == ItemOutcome(
        run_id="run-1", url="http://a.test/", succeeded=False, error_type="PermanentError",
        error="HTTP 404 from http://a.test/", failed_step="scraper", attempts=1,
        duration_ms=2000.0)
    assert len(logic.calls) == 1 and sleeps == []
    assert answer == {"published": PAGE_FAILED, "attempts": 1}


def test_a_transient_error_is_retried_per_the_policy_then_succeeds(scraper, published, sleeps):
    logic = Scripted(scraped(), TransientError("500"), TransientError("500"))

    scraper(logic)(request_event(), context())

    assert len(logic.calls) == 3
    assert [sent.detail_type for sent in published.sent] == [PAGE_SCRAPED]
    assert published.sent[0].metadata.attempts == 3  # as the other engines count the flaky page
    assert len(sleeps) == 2
    assert all(0 <= wait <= POLICY.max_delay(n) for n, wait in enumerate(sleeps, start=1))


def test_a_transient_error_left_after_the_policy_is_reraised_and_nothing_published(
    scraper, published
):
    logic = Scripted(scraped(), *[TransientError("503")] * ATTEMPTS_PER_INVOCATION)

    with pytest.raises(TransientError, match="503"):
        scraper(logic)(request_event(), context())

    assert len(logic.calls) == ATTEMPTS_PER_INVOCATION == POLICY.max_attempts + 1
    assert published.sent == []


def test_an_unknown_error_is_reraised_at_once(scraper, published):
    logic = Scripted(scraped(), KeyError("surprise"))

    with pytest.raises(KeyError):
        scraper(logic)(request_event(), context())

    assert len(logic.calls) == 1
    assert published.sent == []


def test_a_malformed_detail_publishes_page_failed_naming_the_field(published):
    from scraper.handler import lambda_handler as scrape  # validates before any network or AWS

    handler = adapt("scraper", scrape, publish=published, now=lambda: NOW)
    malformed = event(PAGE_REQUESTED, metadata(), {"run_id": "run-1", "url": "not a url"})

    handler(malformed, context())

    [sent] = published.sent
    assert sent.detail_type == PAGE_FAILED
    assert isinstance(sent.data, ItemOutcome)
    assert sent.data.error_type == "ValidationError"
    assert sent.data.failed_step == "scraper"
    assert "url" in (sent.data.error or "")


def test_an_answer_breaking_the_contract_is_final(scraper, published):
    scraper(Scripted({"run_id": "run-1"}))(request_event(), context())

    [sent] = published.sent
    assert sent.detail_type == PAGE_FAILED
    assert isinstance(sent.data, ItemOutcome) and sent.data.error_type == "ValidationError"


def test_attempts_of_earlier_steps_travel_on(published):
    moderator = adapt("moderator", lambda data, context: moderation(data), publish=published)
    page = transformed_page()

    moderator(event(PAGE_TRANSFORMED, metadata(attempts=3), page), context())

    [sent] = published.sent
    assert sent.detail_type == PAGE_MODERATED
    assert sent.metadata.attempts == 3


def test_an_event_of_another_type_is_refused(scraper, published):
    wrong = event(PAGE_SCRAPED, metadata(), ScrapedPage.model_validate(scraped()))

    with pytest.raises(ValueError, match=f"scraper consumes {PAGE_REQUESTED}"):
        scraper(Scripted(scraped()))(wrong, context())

    assert published.sent == []


def test_an_event_without_metadata_cannot_be_attributed_and_is_reraised(scraper, published):
    broken = request_event()
    del broken["detail"]["metadata"]

    with pytest.raises(ValidationError, match="metadata"):
        scraper(Scripted(scraped()))(broken, context())

    assert published.sent == []


@pytest.mark.parametrize("step", [step.name for step in STEPS])
def test_each_function_has_an_entry_point_for_its_own_step(step: str):
    import importlib

    module = importlib.import_module(f"{step}.entry")
    unrelated = event("baton.Unrelated.v1", metadata(), {"x": 1})

    with pytest.raises(ValueError, match=f"{step} consumes"):
        module.lambda_handler(unrelated, context())


def transformed_page() -> Any:
    from pipeline.models import TransformedPage

    return TransformedPage(
        run_id="run-1", url="http://a.test/", final_url="http://a.test/",  # type: ignore[arg-type]
        text_key="text/abc.txt", content_hash="abc", fetched_at=REQUESTED_AT)


def moderation(data: dict[str, Any]) -> dict[str, Any]:
    return {"page": data, "score": 0.1, "labels": {}, "verdict": "allow", "backend": "fake"}


@pytest.fixture
def chain_steps(monkeypatch) -> list[ChainStep]:
    """The steps the adapter logs for the choreography's history (what `baton history` reads)."""
    logged: list[ChainStep] = []
    monkeypatch.setattr("engines.choreography.log_chain_step", logged.append)
    return logged


def test_each_handled_event_is_logged_with_what_was_delivered_and_published(scraper, chain_steps):
    scraper(Scripted(scraped(), TransientError("500")))(request_event(), context())

    [logged] = chain_steps
    assert logged == ChainStep(
        run_id="run-1", url="http://a.test/", step="scraper", consumed=PAGE_REQUESTED,
        published_at=datetime(2026, 11, 22, 10, 0, 1, tzinfo=UTC), delivered_at=NOW,
        ended_at=NOW, attempts=2, emitted=PAGE_SCRAPED)


def test_a_final_failure_and_a_way_to_the_dead_letter_queue_are_logged(scraper, chain_steps):
    scraper(Scripted(scraped(), PermanentError("HTTP 404")))(request_event(), context())
    with pytest.raises(TransientError):
        scraper(Scripted(scraped(), *[TransientError("503")] * ATTEMPTS_PER_INVOCATION))(
            request_event(), context())

    assert [(s.emitted, s.attempts, s.error_type, s.error) for s in chain_steps] == [
        (PAGE_FAILED, 1, "PermanentError", "HTTP 404"),
        (DEAD_LETTER, ATTEMPTS_PER_INVOCATION, "TransientError", "503")]
