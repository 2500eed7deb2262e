"""The transformer's use case: fetch the raw page, extract, store the text, describe the result.

A not-modified page (``raw_key`` is None, the server answered 304) has nothing to transform:
every engine skips the transformer for it and reuses the previous snapshot, so receiving one
is a caller bug and is rejected with a ValueError rather than retried or recorded as a failure
of the page.
"""

from __future__ import annotations

from typing import Protocol

from pipeline.models import ScrapedPage, TransformedPage, bounded_links, bounded_title
from transformer.extract import decode_html, extract

NOT_MODIFIED = "not modified (raw_key is null): engines skip the transformer for 304 pages"


class PageStore(Protocol):
    """Where raw pages are read and texts written (S3 in Lambda, a dict in unit tests)."""

    def read(self, key: str) -> bytes:
        """The raw bytes stored under key."""
        ...

    def write_text(self, key: str, text: str) -> None:
        """Store text under key."""
        ...


def transform(page: ScrapedPage, pages: PageStore, text_prefix: str = "text/") -> TransformedPage:
    """Extract one scraped page and store its text at ``<prefix><content_hash>.txt``."""
    if page.raw_key is None:
        raise ValueError(NOT_MODIFIED)
    html = decode_html(pages.read(page.raw_key), page.charset)
    extracted = extract(html, str(page.final_url))
    # Content-addressed: an unchanged page rewrites the same key, so retries are idempotent.
    text_key = f"{text_prefix}{extracted.content_hash}.txt"
    pages.write_text(text_key, extracted.text)
    return TransformedPage(
        run_id=page.run_id,
        url=page.url,
        final_url=page.final_url,
        text_key=text_key,
        # Bounded, so the page's output fits any engine's payload however large the page.
        title=bounded_title(extracted.title),
        language=extracted.language,
        word_count=extracted.word_count,
        links=bounded_links(extracted.links),
        link_count=len(extracted.links),
        content_hash=extracted.content_hash,
        etag=page.etag,
        last_modified=page.last_modified,
        fetched_at=page.fetched_at,
    )
