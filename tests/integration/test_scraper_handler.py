"""The scraper handler against the real sample site on 127.0.0.1, with S3 in moto."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from typing import Any
from urllib.request import Request, urlopen

import boto3
import pytest
from pydantic import ValidationError

from baton.site import SampleSite
from baton.site_pages import LATIN1_BODY
from pipeline.errors import PermanentError, TransientError
from pipeline.models import ScrapedPage, ScrapeRequest
from scraper import handler

Invoke = Callable[..., dict[str, Any]]

# Failing invocations publish no metric; Powertools warns about that, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def site_url(sample_site: SampleSite, bucket: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The sample site's base URL, allowlisted for the scraper, with S3 ready."""
    host, port = sample_site.server_address[:2]
    monkeypatch.setenv("SCRAPER_ALLOWED_HOSTS", f"{host!s}:{port}")
    monkeypatch.setenv("SCRAPER_READ_TIMEOUT", "5")
    return sample_site.base_url


@pytest.fixture
def invoke(lambda_context: Any) -> Invoke:
    """Call the handler with a ScrapeRequest event for ``url`` and a fresh run id."""

    def call(url: str, **fields: Any) -> dict[str, Any]:
        event = {"run_id": f"run-{uuid.uuid4().hex[:8]}", "url": url, **fields}
        return handler.lambda_handler(event, lambda_context)

    return call


def s3_body(bucket: str, key: str) -> bytes:
    return bytes(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def s3_keys(bucket: str) -> list[str]:
    answer = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in answer.get("Contents", [])]


def control(site_url: str, action: str, **query: str) -> None:
    params = "&".join(f"{name}={value}" for name, value in query.items())
    with urlopen(Request(f"{site_url}/_control/{action}?{params}", method="POST"), timeout=5):
        pass


# -- pages that are stored ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/pages/garden", "/pages/library", "/pages/recette", "/pages/wanderung", "/pages/news",
     "/pages/rant", "/pages/flame", "/faults/slow?delay=0.2"],
)
def test_html_pages_are_stored_in_s3(site_url: str, bucket: str, invoke: Invoke, path: str) -> None:
    page = ScrapedPage.model_validate(invoke(site_url + path))

    assert page.raw_key is not None
    assert (page.status_code, page.content_type, page.charset) == (200, "text/html", "utf-8")
    assert s3_body(bucket, page.raw_key).startswith(b"<!DOCTYPE html>")
    assert page.size_bytes == len(s3_body(bucket, page.raw_key))


def test_the_output_validates_against_the_scraped_page_contract(
    site_url: str, invoke: Invoke
) -> None:
    output = invoke(site_url + "/pages/garden")

    assert ScrapedPage.model_validate(output).model_dump(mode="json") == output


def test_a_redirect_is_followed_and_reported_as_the_final_url(
    site_url: str, invoke: Invoke
) -> None:
    page = ScrapedPage.model_validate(invoke(site_url + "/faults/moved"))

    assert (str(page.url), str(page.final_url)) == (
        site_url + "/faults/moved", site_url + "/pages/garden")


def test_a_latin1_page_is_stored_byte_for_byte_without_a_charset(
    site_url: str, bucket: str, invoke: Invoke
) -> None:
    page = ScrapedPage.model_validate(invoke(site_url + "/faults/latin1"))

    assert page.charset is None and page.raw_key is not None
    assert s3_body(bucket, page.raw_key) == LATIN1_BODY


def test_the_flaky_page_fails_transiently_twice_then_succeeds(
    site_url: str, invoke: Invoke
) -> None:
    url = f"{site_url}/faults/flaky?key={uuid.uuid4().hex}"
    for _ in range(2):
        with pytest.raises(TransientError, match="500"):
            invoke(url)

    assert invoke(url)["status_code"] == 200


# -- pages that fail ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/faults/missing", "404"),
        ("/faults/huge", "too large"),
        ("/faults/report.pdf", "not HTML"),
        ("/faults/loop", "redirect loop"),
        ("/faults/to-metadata", r"blocked address.*169\.254\.169\.254"),
        ("/faults/to-private", r"blocked address.*10\.0\.0\.1"),
    ],
)
def test_faulty_pages_fail_permanently_and_store_nothing(
    site_url: str, bucket: str, invoke: Invoke, path: str, reason: str
) -> None:
    with pytest.raises(PermanentError, match=reason):
        invoke(site_url + path)
    assert s3_keys(bucket) == []


def test_a_page_slower_than_the_read_timeout_fails_transiently(
    site_url: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRAPER_READ_TIMEOUT", "0.3")

    with pytest.raises(TransientError, match="timed out"):
        invoke(site_url + "/faults/slow?delay=1.5")


def test_a_page_taken_down_fails_transiently(site_url: str, invoke: Invoke) -> None:
    control(site_url, "down", page="library", status="503")

    with pytest.raises(TransientError, match="503"):
        invoke(site_url + "/pages/library")


def test_a_page_brought_back_up_is_fetched_again(site_url: str, invoke: Invoke) -> None:
    control(site_url, "down", page="library")
    control(site_url, "up", page="library")

    assert invoke(site_url + "/pages/library")["status_code"] == 200


def test_a_closed_port_fails_transiently(
    site_url: str, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bound but never listening: connections are refused, and while the socket is held no other
    # process can take the port (a port closed before the test could be reused and answer).
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        closed_port = bound.getsockname()[1]
        monkeypatch.setenv("SCRAPER_ALLOWED_HOSTS", f"127.0.0.1:{closed_port}")

        with pytest.raises(TransientError, match="connection failed"):
            invoke(f"http://127.0.0.1:{closed_port}/")


def test_the_site_is_refused_when_not_allowlisted(
    site_url: str, sample_site: SampleSite, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCRAPER_ALLOWED_HOSTS")
    key = uuid.uuid4().hex

    with pytest.raises(PermanentError, match=r"blocked address.*loopback"):
        invoke(f"{site_url}/faults/flaky?key={key}")
    assert key not in sample_site.state.snapshot()["flaky_hits"]  # type: ignore[operator]


# -- conditional GET ---------------------------------------------------------------------------


def test_a_matching_etag_gets_304_and_no_raw_key(
    site_url: str, bucket: str, invoke: Invoke
) -> None:
    first = invoke(site_url + "/pages/news")

    again = ScrapedPage.model_validate(invoke(site_url + "/pages/news", etag=first["etag"]))

    assert (again.status_code, again.raw_key, again.size_bytes) == (304, None, 0)
    assert s3_keys(bucket) == [first["raw_key"]]


def test_an_unchanged_last_modified_gets_304(site_url: str, invoke: Invoke) -> None:
    first = invoke(site_url + "/pages/recette")

    again = invoke(site_url + "/pages/recette", last_modified=first["last_modified"])

    assert (again["status_code"], again["raw_key"]) == (304, None)


def test_a_changed_page_is_fetched_despite_the_old_etag(site_url: str, invoke: Invoke) -> None:
    first = invoke(site_url + "/pages/news")
    control(site_url, "change", page="news")

    again = invoke(site_url + "/pages/news", etag=first["etag"])

    assert again["status_code"] == 200
    assert again["etag"] != first["etag"]


# -- events ------------------------------------------------------------------------------------


def test_a_malformed_url_fails_validation_naming_the_field(
    site_url: str, bucket: str, invoke: Invoke
) -> None:
    with pytest.raises(ValidationError, match="url"):
        invoke("not a url")
    assert s3_keys(bucket) == []


def test_an_event_without_run_id_fails_validation_naming_the_field(
    site_url: str, bucket: str, lambda_context: Any
) -> None:
    with pytest.raises(ValidationError, match="run_id"):
        handler.lambda_handler({"url": site_url + "/pages/garden"}, lambda_context)
    assert s3_keys(bucket) == []


def test_the_sample_event_scrapes_the_sample_site(
    site_url: str, bucket: str, load_event: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    event = load_event("scraper.json")
    request = ScrapeRequest.model_validate(event)
    event["url"] = str(request.url).replace("http://127.0.0.1:8765", site_url)

    page = ScrapedPage.model_validate(handler.lambda_handler(event, lambda_context))

    assert page.run_id == request.run_id
    assert page.raw_key in s3_keys(bucket)
