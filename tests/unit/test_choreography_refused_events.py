"""A batch publish the bus refuses ends those items as failed, never leaves the run open (#11):
at the choreography's start (whole call or some entries) and at each step's onward event."""

from __future__ import annotations

import random
from typing import Any

import pytest
from botocore.exceptions import ClientError

from engines.choreography import ATTEMPTS_PER_INVOCATION, adapt, start_choreography
from engines.events import PAGE_REQUESTED, PAGE_SCRAPED, get_settings, publish
from pipeline.errors import TransientError
from pipeline.models import ItemOutcome, RunRequest, ScrapedPage, ScrapeRequest
from tests.choreography_fakes import BUS, REQUESTED_AT, FakeEventsClient, event, metadata
from tests.lambda_context import FakeLambdaContext
from tests.unit.test_choreography_events import FakeRuns
from tracker.logic import dead_letter_outcome

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


class Unreachable:
    """An EventBridge client whose every PutEvents call fails as a whole."""

    def __init__(self) -> None:
        self.calls = 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        raise ClientError({"Error": {"Code": "InternalException", "Message": "down"}}, "PutEvents")


def test_a_start_whose_every_put_fails_ends_each_item_failed_with_the_code(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _: None)
    runs, client = FakeRuns(), Unreachable()
    urls = [f"http://a.test/{n}" for n in range(12)]

    start_choreography(RunRequest(run_id="run-1", urls=urls), BUS, runs, client,
                       now=lambda: REQUESTED_AT)

    assert [(o.url, o.succeeded, o.error_type) for o in runs.recorded] == [
        (url, False, "EventBridge.InternalException") for url in urls]
    assert client.calls == 2 * 3  # two batches, each tried three times


def test_a_refused_onward_event_fails_the_invocation_and_its_dead_letter_fails_the_item(
        monkeypatch):
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    get_settings.cache_clear()
    client = FakeEventsClient(reject=[{0}, {0}, {0}])
    page = ScrapedPage(run_id="run-1", url="http://a.test/", final_url="http://a.test/",  # type: ignore[arg-type]
                       status_code=200, raw_key="raw/run-1/x.html", fetched_at=REQUESTED_AT,
                       elapsed_ms=3.0)
    handler = adapt("scraper", lambda data, context: page.model_dump(mode="json"),
                    publish=lambda detail_type, meta, data: publish(detail_type, meta, data, client),
                    sleep=lambda _: None, rng=random.Random(0), now=lambda: REQUESTED_AT)
    delivered = event(PAGE_REQUESTED, metadata(),
                      ScrapeRequest(run_id="run-1", url="http://a.test/"))  # type: ignore[arg-type]

    with pytest.raises(TransientError, match="EventBridge refused 1 event"):
        handler(delivered, FakeLambdaContext())  # type: ignore[arg-type]
    assert [put["DetailType"] for call in client.calls for put in call] == [PAGE_SCRAPED] * 3

    # Lambda's asynchronous retries fail the same way; its OnFailure record reaches the tracker.
    record = {"requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
              "requestPayload": delivered,
              "responsePayload": {"errorType": "TransientError", "errorMessage": "refused"}}
    outcome = dead_letter_outcome(record, {}, REQUESTED_AT)
    # (Its attempts count the adapter's retries per invocation, as for any TransientError.)
    assert outcome == ItemOutcome(run_id="run-1", url="http://a.test/", succeeded=False,
                                  error_type="TransientError", error="refused",
                                  failed_step="scraper", attempts=3 * ATTEMPTS_PER_INVOCATION,
                                  duration_ms=0.0)
    get_settings.cache_clear()
