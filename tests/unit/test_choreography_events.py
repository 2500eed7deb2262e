"""The event chain, the event shape, publishing, and starting a run."""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from typing import Any

import pytest

from engines import events
from engines.choreography import ENGINE, start_choreography
from engines.events import (
    CHAIN,
    DATA_MODELS,
    PAGE_FAILED,
    PAGE_NOT_MODIFIED,
    PAGE_REQUESTED,
    PAGE_STORED,
    SOURCE,
    TERMINAL,
    PipelineDetail,
    consumer_of,
    entry,
    put_entries,
    rule_patterns,
)
from pipeline.errors import TransientError
from pipeline.models import ItemOutcome, RunRequest, ScrapeRequest, Validators
from tests.choreography_fakes import BUS, REQUESTED_AT, FakeEventsClient, metadata


def test_the_chain_covers_the_four_steps_in_order():
    assert list(CHAIN) == ["scraper", "transformer", "moderator", "store"]
    assert CHAIN["scraper"].consumes == PAGE_REQUESTED
    assert CHAIN["store"].emits == PAGE_STORED


def test_each_step_emits_what_the_next_one_consumes():
    links = list(CHAIN.values())

    for producer, consumer in itertools.pairwise(links):
        assert producer.emits == consumer.consumes
        assert producer.output_model is consumer.input_model


def test_detail_types_are_versioned_and_terminal_events_have_no_consumer():
    for detail_type in DATA_MODELS:
        assert detail_type.startswith("baton.") and detail_type.endswith(".v1")
    assert set(TERMINAL) == {PAGE_STORED, PAGE_NOT_MODIFIED, PAGE_FAILED}
    assert all(consumer_of(detail_type) is None for detail_type in TERMINAL)


def test_rule_patterns_route_each_event_to_one_target():
    patterns = rule_patterns()

    routed = [t for pattern in patterns.values() for t in pattern["detail-type"]]
    assert sorted(routed) == sorted(DATA_MODELS)  # every event type, each exactly once
    assert all(pattern["source"] == [SOURCE] for pattern in patterns.values())
    assert patterns["transformer"] == {"source": [SOURCE], "detail-type": ["baton.PageScraped.v1"]}


def test_an_entry_carries_metadata_and_the_contract_unchanged():
    data = ScrapeRequest(run_id="run-1", url="http://a.test/")  # type: ignore[arg-type]

    put = entry(PAGE_REQUESTED, metadata(), data, BUS)

    assert (put["Source"], put["DetailType"], put["EventBusName"]) == (SOURCE, PAGE_REQUESTED, BUS)
    detail = json.loads(put["Detail"])
    assert detail["metadata"]["run_id"] == "run-1"
    assert ScrapeRequest.model_validate(detail["data"]) == data
    assert PipelineDetail.model_validate(detail).metadata == metadata()


def test_put_entries_sends_batches_of_ten():
    client = FakeEventsClient()
    entries = [_entry(n) for n in range(23)]

    put_entries(entries, client)

    assert [len(call) for call in client.calls] == [10, 10, 3]


def test_put_entries_sends_again_only_the_rejected_entries():
    client = FakeEventsClient(reject=[{1, 4}])
    entries = [_entry(n) for n in range(5)]

    put_entries(entries, client, sleep=lambda _: None)

    assert client.calls[1] == [entries[1], entries[4]]


def test_an_item_whose_request_the_bus_keeps_refusing_ends_failed_at_once():
    # The second entry of the first batch is refused on every try; the rest go through.
    client = FakeEventsClient(reject=[{1}, {0}, {0}])
    runs = FakeRuns()
    request = RunRequest(run_id="run-1", urls=[f"http://a.test/{n}" for n in range(3)])

    start_choreography(request, BUS, runs, client, now=lambda: REQUESTED_AT)

    [failed] = runs.recorded
    assert (failed.url, failed.succeeded, failed.error_type, failed.attempts) == (
        "http://a.test/1", False, "EventBridge.ThrottlingException", 0)
    assert "refused" in (failed.error or "")


def test_put_entries_raises_transient_error_when_entries_stay_rejected():
    client = FakeEventsClient(reject=[{0}, {0}, {0}])

    with pytest.raises(TransientError, match="ThrottlingException"):
        put_entries([_entry(0)], client, tries=3, sleep=lambda _: None)


def test_publish_uses_the_bus_named_by_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EVENT_BUS_NAME", "the-bus")
    client = FakeEventsClient()
    data = ScrapeRequest(run_id="run-1", url="http://a.test/")  # type: ignore[arg-type]

    events.publish(PAGE_REQUESTED, metadata(), data, client)

    assert client.calls[0][0]["EventBusName"] == "the-bus"


class FakeRuns:
    def __init__(self) -> None:
        self.opened: list[dict[str, Any]] = []
        self.recorded: list[ItemOutcome] = []
        self.waits: dict[tuple[str, str], tuple[str, str]] = {}

    def open_run(self, run_id: str, *, engine: str, total: int, started_at: datetime,
                 continuation: int) -> datetime:
        self.opened.append({"run_id": run_id, "engine": engine, "total": total,
                            "continuation": continuation})
        return started_at

    def record(self, outcome: ItemOutcome, at: datetime) -> bool:
        self.recorded.append(outcome)
        return True

    # The items waiting to be admitted, by key: (url, detail), as RunsTable keeps them.
    def wait(self, run_id: str, waiting: list[tuple[str, str, str]]) -> None:
        self.waits.update({(run_id, key): (url, detail) for key, url, detail in waiting})

    def waiting(self, run_id: str, key: str) -> str | None:
        kept = self.waits.get((run_id, key))
        return None if kept is None else kept[1]

    def admitted(self, run_id: str, key: str) -> None:
        del self.waits[(run_id, key)]

    def forget_waiting(self, run_id: str, urls: list[str]) -> None:
        self.waits = {(run, key): kept for (run, key), kept in self.waits.items()
                      if run != run_id or kept[0] not in urls}


def test_starting_a_run_opens_it_then_requests_each_url_once():
    runs, client = FakeRuns(), FakeEventsClient()
    urls = [f"http://a.test/{n}" for n in range(11)]
    # As many in flight as there are items: each is requested at the start.
    request = RunRequest(run_id="run-1", urls=[*urls, urls[0]], max_concurrency=11)

    started = start_choreography(request, BUS, runs, client, now=lambda: REQUESTED_AT)

    assert started == REQUESTED_AT
    assert runs.opened == [{"run_id": "run-1", "engine": ENGINE, "total": 11, "continuation": 0}]
    sent = [put for call in client.calls for put in call]
    assert [put["DetailType"] for put in sent] == [PAGE_REQUESTED] * 11
    details = [PipelineDetail.model_validate(json.loads(put["Detail"])) for put in sent]
    assert [d.metadata.url for d in details] == urls
    assert all(d.metadata.requested_at == REQUESTED_AT and d.metadata.attempts == 0
               for d in details)


def test_a_malformed_url_ends_at_once_as_a_failed_item():
    client = FakeEventsClient()
    request = RunRequest(run_id="run-1", urls=["notaurl"])

    start_choreography(request, BUS, FakeRuns(), client, now=lambda: REQUESTED_AT)

    [[put]] = client.calls
    assert put["DetailType"] == PAGE_FAILED
    outcome = ItemOutcome.model_validate(json.loads(put["Detail"])["data"])
    assert (outcome.url, outcome.succeeded, outcome.error_type, outcome.failed_step,
            outcome.attempts) == ("notaurl", False, "ValidationError", "scraper", 0)


def test_previous_validators_make_conditional_requests():
    client = FakeEventsClient()
    request = RunRequest(run_id="run-1", urls=["http://a.test/", "http://b.test/"],
                         previous={"http://a.test/": Validators(etag='"etag-1"')})

    start_choreography(request, BUS, FakeRuns(), client,
                       previous_check=lambda url: (None, f"hook for {url}"))

    a, b = (json.loads(put["Detail"])["data"] for put in client.calls[0])
    assert (a["etag"], a["last_modified"]) == ('"etag-1"', None)
    assert (b["etag"], b["last_modified"]) == (None, "hook for http://b.test/")


def _entry(n: int) -> dict[str, Any]:
    data = ScrapeRequest(run_id="run-1", url=f"http://a.test/{n}")  # type: ignore[arg-type]
    return entry(PAGE_REQUESTED, metadata(url=f"http://a.test/{n}"), data, BUS)


class AnsweringMore(FakeEventsClient):
    """A client whose answer lists more entries than were sent (as a test double duplicating
    deliveries does), all accepted."""

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        answer = super().put_events(Entries)
        return {"FailedEntryCount": 0, "Entries": answer["Entries"] * 2}


def test_an_answer_with_nothing_refused_is_taken_as_all_accepted():
    assert events.put_what_it_can([_entry(0), _entry(1)], AnsweringMore()) == []
