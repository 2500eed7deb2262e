"""A choreographed run keeps at most max_concurrency items in flight: the first are requested at
its start, each item's end admits the one waiting behind it, once, whatever is delivered twice."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from engines.choreography import admit_next, request_pages, start_choreography
from engines.events import PAGE_FAILED, PAGE_REQUESTED, EventMetadata, PipelineDetail
from pipeline.models import RunRequest
from tests.choreography_fakes import BUS, REQUESTED_AT, FakeEventsClient
from tests.unit.test_choreography_events import FakeRuns

ADMITTED_AT = REQUESTED_AT + timedelta(seconds=3)
URLS = [f"http://a.test/{n}" for n in range(5)]


def put(client: FakeEventsClient) -> list[PipelineDetail]:
    """Every detail put so far, in order."""
    return [PipelineDetail.model_validate(json.loads(entry["Detail"]))
            for call in client.calls for entry in call]


def started(urls: list[str], lanes: int = 2) -> tuple[FakeRuns, FakeEventsClient]:
    runs, client = FakeRuns(), FakeEventsClient()
    start_choreography(RunRequest(run_id="run-1", urls=urls, max_concurrency=lanes), BUS, runs,
                       client, now=lambda: REQUESTED_AT)
    return runs, client


def ended(runs: FakeRuns, client: FakeEventsClient, item: EventMetadata) -> bool:
    return admit_next(item, runs, bus_name=BUS, events_client=client, now=lambda: ADMITTED_AT)


def test_a_start_requests_max_concurrency_items_and_keeps_the_others_waiting():
    runs, client = started(URLS)

    first = put(client)
    assert [d.metadata.url for d in first] == URLS[:2]
    assert all(d.metadata.requested_at == REQUESTED_AT for d in first)
    assert sorted(url for url, _ in runs.waits.values()) == URLS[2:]
    # Each item's end admits the item two places behind it; the last two admit none.
    waiting = {key: PipelineDetail.model_validate_json(detail).metadata
               for (_, key), (_, detail) in runs.waits.items()}
    by_url = {meta.url: meta for meta in [*(d.metadata for d in first), *waiting.values()]}
    assert [waiting[by_url[url].admits].url for url in URLS[:3]] == URLS[2:]  # type: ignore[index]
    assert [by_url[url].admits for url in URLS[3:]] == [None, None]


def test_an_end_admits_the_item_behind_it_once_from_the_moment_it_is_admitted():
    runs, client = started(URLS)
    first = put(client)[0].metadata

    assert ended(runs, client, first)
    assert not ended(runs, client, first)  # the same end delivered again admits nothing more

    admitted = put(client)[2:]
    assert [d.metadata.url for d in admitted] == [URLS[2]]
    assert client.calls[-1][0]["DetailType"] == PAGE_REQUESTED
    # Its time runs from its admission, not from the run's start.
    assert admitted[0].metadata.requested_at == ADMITTED_AT
    assert admitted[0].data["url"] == URLS[2]
    assert sorted(url for url, _ in runs.waits.values()) == URLS[3:]


def test_every_item_is_requested_once_when_each_end_admits_the_next():
    runs, client = started(URLS)

    done = 0
    while done < len(put(client)):
        ended(runs, client, put(client)[done].metadata)
        done += 1

    assert [d.metadata.url for d in put(client)] == URLS
    assert runs.waits == {}


def test_an_admission_the_bus_refuses_fails_that_item_and_admits_the_one_behind_it(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _: None)
    runs, client = started(URLS, lanes=1)
    client.reject = [{0}, {0}, {0}]  # the next item's request, each of the three tries

    assert ended(runs, client, put(client)[0].metadata)

    assert [(o.url, o.succeeded, o.error_type) for o in runs.recorded] == [
        (URLS[1], False, "EventBridge.ThrottlingException")]
    assert [d.metadata.url for d in put(client)] == [URLS[0], *[URLS[1]] * 3, URLS[2]]
    assert sorted(url for url, _ in runs.waits.values()) == URLS[3:]


def test_a_redriven_item_leaves_the_lane_it_waited_in():
    runs, client = started(URLS)
    first = put(client)[0].metadata

    # The cloud died with two items in flight; the redrive runs everything that did not end.
    request_pages(RunRequest(run_id="run-1", urls=URLS, max_concurrency=2), URLS, BUS, client,
                  ADMITTED_AT, runs, now=lambda: ADMITTED_AT)
    assert not ended(runs, client, first)  # a late end of the first attempt admits nothing

    assert [d.metadata.url for d in put(client)] == [*URLS[:2], *URLS[:2]]
    assert sorted(url for url, _ in runs.waits.values()) == URLS[2:]


def test_a_malformed_url_ends_at_once_and_holds_no_place_in_flight():
    _, client = started(["notaurl", *URLS[:2]], lanes=2)

    assert [(entry["DetailType"], PipelineDetail.model_validate_json(entry["Detail"]).metadata.url)
            for call in client.calls for entry in call] == [
        (PAGE_FAILED, "notaurl"), (PAGE_REQUESTED, URLS[0]), (PAGE_REQUESTED, URLS[1])]


def test_an_end_whose_tracker_died_after_the_put_admits_again_when_delivered_again():
    runs, client = started(URLS)
    first = put(client)[0].metadata
    forget = runs.admitted

    def dies(run_id: str, key: str) -> None:
        raise RuntimeError("the tracker died before forgetting the waiting item")

    runs.admitted = dies  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        ended(runs, client, first)
    runs.admitted = forget  # type: ignore[method-assign]
    assert ended(runs, client, first)  # the end delivered again: never lost, at worst twice

    assert [d.metadata.url for d in put(client)[2:]] == [URLS[2], URLS[2]]
    assert sorted(url for url, _ in runs.waits.values()) == URLS[3:]
