"""The transformer's use case over an in-memory page store."""

from datetime import UTC, datetime

import pytest

from pipeline.models import (
    MAX_LINKS_BYTES,
    MAX_TITLE_CHARS,
    ScrapedPage,
    TransformedPage,
    bounded_links,
)
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


def test_a_link_farm_with_a_huge_title_travels_bounded():
    links = "".join(f"<a href='/page/{n:05d}'>page {n}</a> " for n in range(5_000))
    html = f"<html><head><title>{'Long ' * 4_000}</title></head><body><p>{links}</p></body></html>"
    pages = Pages({"raw/farm.html": html.encode()})

    result = transform(scraped("raw/farm.html"), pages)

    assert result.link_count == 5_000
    assert 0 < len(result.links) < 5_000 and result.links[0] == "https://news.example/page/00000"
    assert len(result.title or "") == MAX_TITLE_CHARS and (result.title or "").endswith("…")
    # what any engine carries between steps stays far under Step Functions' 256 KiB
    assert len(result.model_dump_json()) < 40 * 1024


def test_the_contract_refuses_unbounded_links():
    page = transform(scraped("raw/a.html"), Pages({"raw/a.html": b"<p>Hello there, world.</p>"}))
    many = [f"https://news.example/{n:06d}" for n in range(5_000)]

    with pytest.raises(ValueError, match="links: over"):
        TransformedPage.model_validate(page.model_dump() | {"links": many})
    assert bounded_links(many) == many[:len(bounded_links(many))]
    assert sum(len(link) + 4 for link in bounded_links(many)) <= MAX_LINKS_BYTES
