"""The transformer's use case over an in-memory page store."""

from datetime import UTC, datetime

import pytest

from pipeline.models import ScrapedPage
from transformer.extract import content_hash
from transformer.logic import transform


class Pages:
    """A page store backed by dicts, standing in for S3."""

    def __init__(self, raw: dict[str, bytes]) -> None:
        self.raw = raw
        self.texts: dict[str, str] = {}

    def read(self, key: str) -> bytes:
        return self.raw[key]

    def write_text(self, key: str, text: str) -> None:
        self.texts[key] = text


def scraped(raw_key: str | None, charset: str | None = None) -> ScrapedPage:
    return ScrapedPage.model_validate(
        {
            "run_id": "run-1",
            "url": "http://news.example/a",
            "final_url": "https://news.example/a/",
            "status_code": 200 if raw_key else 304,
            "raw_key": raw_key,
            "charset": charset,
            "fetched_at": datetime(2026, 11, 1, tzinfo=UTC),
            "elapsed_ms": 12.0,
        }
    )


def test_not_modified_page_is_rejected_with_a_clear_message():
    pages = Pages({})

    with pytest.raises(ValueError, match="not modified"):
        transform(scraped(None), pages)
    assert pages.texts == {}


def test_text_is_stored_under_its_content_hash():
    pages = Pages({"raw/a.html": b"<html><body><p>Hello there, world.</p></body></html>"})

    result = transform(scraped("raw/a.html"), pages)

    assert result.text_key == f"text/{content_hash('Hello there, world.')}.txt"
    assert pages.texts == {result.text_key: "Hello there, world."}


def test_links_resolve_against_the_final_url():
    pages = Pages({"raw/a.html": b"<html><body><p>See <a href='b'>b</a>.</p></body></html>"})

    assert transform(scraped("raw/a.html"), pages).links == ["https://news.example/a/b"]


def test_header_charset_from_the_scraper_is_used():
    pages = Pages({"raw/a.html": "<p>Привет, мир</p>".encode("koi8-r")})

    result = transform(scraped("raw/a.html", charset="koi8-r"), pages)

    assert pages.texts[result.text_key] == "Привет, мир"
