"""The scraper's use case: fetch the requested page and keep its raw body in S3."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.keys import raw_key
from pipeline.models import ScrapedPage, ScrapeRequest
from scraper.dal import RawStore
from scraper.fetch import Fetcher


def scrape(request: ScrapeRequest, *, fetcher: Fetcher, raw_store: RawStore) -> ScrapedPage:
    """Fetch ``request.url`` (conditionally, when validators are known) and store its body."""
    url = str(request.url)
    fetched_at = datetime.now(UTC)
    result = fetcher.fetch(url, etag=request.etag, last_modified=request.last_modified)
    key = None
    if result.body is not None:
        key = raw_key(request.run_id, url)
        media_type = result.content_type or "application/octet-stream"
        charset = f"; charset={result.charset}" if result.charset else ""
        raw_store.put(key, result.body, media_type + charset)
    return ScrapedPage(
        run_id=request.run_id,
        url=request.url,
        final_url=result.final_url,  # type: ignore[arg-type]  # validated by the model
        status_code=result.status_code,
        raw_key=key,
        content_type=result.content_type,
        charset=result.charset,
        etag=result.etag,
        last_modified=result.last_modified,
        size_bytes=len(result.body or b""),
        fetched_at=fetched_at,
        elapsed_ms=round(result.elapsed_ms, 3),
    )
