"""The scraper's use case and settings, with a fake fetcher transport and a fake raw store."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError

from pipeline.keys import raw_key, url_id
from pipeline.models import ScrapeRequest
from scraper.fetch import Fetcher, FetchPolicy, Hop
from scraper.logic import scrape
from scraper.settings import ScraperSettings
from tests.unit.test_scraper_fetch import FakeResponse


@dataclass
class OneResponse:
    response: FakeResponse

    def send(self, hop: Hop) -> FakeResponse:
        return self.response


@dataclass
class MemoryRawStore:
    objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = (body, content_type)


def fetcher_answering(response: FakeResponse) -> Fetcher:
    return Fetcher(FetchPolicy(), OneResponse(response), resolver=lambda host, port: ["93.184.215.14"])


def test_a_fetched_page_is_stored_under_its_run_and_url() -> None:
    store = MemoryRawStore()
    request = ScrapeRequest(run_id="run-1", url="http://example.com/a")  # type: ignore[arg-type]

    page = scrape(request, fetcher=fetcher_answering(FakeResponse(200)), raw_store=store)

    assert page.raw_key == f"raw/run-1/{url_id('http://example.com/a')}.html"
    assert store.objects[page.raw_key] == (
        b"<html><body>hello</body></html>", "text/html; charset=utf-8")


def test_the_scraped_page_reports_what_was_fetched() -> None:
    response = FakeResponse(200, {"content-type": "text/html", "etag": '"e1"'}, b"<p>12345</p>")
    request = ScrapeRequest(run_id="run-1", url="http://example.com/a")  # type: ignore[arg-type]

    page = scrape(request, fetcher=fetcher_answering(response), raw_store=MemoryRawStore())

    assert (page.status_code, page.size_bytes, page.content_type, page.charset, page.etag) == (
        200, 12, "text/html", None, '"e1"')


def test_a_304_stores_nothing_and_has_no_raw_key() -> None:
    store = MemoryRawStore()
    request = ScrapeRequest(run_id="run-1", url="http://example.com/a", etag='"e1"')  # type: ignore[arg-type]

    page = scrape(request, fetcher=fetcher_answering(FakeResponse(304, {}, b"")), raw_store=store)

    assert (page.raw_key, page.not_modified, page.status_code) == (None, True, 304)
    assert store.objects == {}


def test_raw_keys_differ_per_run_for_the_same_url() -> None:
    assert raw_key("run-1", "http://example.com/") != raw_key("run-2", "http://example.com/")


def test_allowed_hosts_are_read_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "raw-bucket")
    monkeypatch.setenv("SCRAPER_ALLOWED_HOSTS", "127.0.0.1:8765, LocalHost")

    settings = ScraperSettings()  # type: ignore[call-arg]

    assert settings.fetch_policy().allowed_hosts == frozenset({"127.0.0.1:8765", "localhost"})


def test_settings_default_to_a_5_mib_cap_and_html_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "raw-bucket")

    policy = ScraperSettings().fetch_policy()  # type: ignore[call-arg]

    assert policy.max_bytes == 5 * 1024 * 1024
    assert policy.allowed_content_types == frozenset({"text/html", "application/xhtml+xml"})


def test_a_bad_setting_fails_naming_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "raw-bucket")
    monkeypatch.setenv("SCRAPER_MAX_BYTES", "lots")

    with pytest.raises(ValidationError, match="SCRAPER_MAX_BYTES"):
        ScraperSettings()  # type: ignore[call-arg]


def test_a_missing_bucket_fails_naming_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUCKET_NAME", raising=False)

    with pytest.raises(ValidationError, match="BUCKET_NAME"):
        ScraperSettings()  # type: ignore[call-arg]
