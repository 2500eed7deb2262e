"""The scraper's use case: fetch the requested page politely and keep its raw body in S3.

Politely: the attempt holds one of the host's slots (``slots.HostGate``) while it talks to the
host, reads the site's robots.txt first unless the URL's options opt out (``robots.Robots``),
and sends the URL's own headers and cookies, references resolved (``session.SessionValues``).
One deadline covers the whole attempt: the wait for a slot, robots.txt and the page.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.keys import raw_key
from pipeline.models import ScrapedPage, ScrapeRequest
from scraper.dal import RawStore
from scraper.fetch import Fetcher, host_port, origin
from scraper.robots import Robots
from scraper.session import SessionValues
from scraper.slots import HostGate


@dataclass(frozen=True)
class Politeness:
    """What a fetch obeys besides the fetcher's limits; None: that part is not applied."""

    gate: HostGate | None = None
    robots: Robots | None = None
    session: SessionValues | None = None


def scrape(
    request: ScrapeRequest,
    *,
    fetcher: Fetcher,
    raw_store: RawStore,
    politeness: Politeness | None = None,
) -> ScrapedPage:
    """Fetch ``request.url`` (conditionally, when validators are known) and store its body."""
    polite = politeness or Politeness()
    url = str(request.url)
    options = request.options
    fetched_at = datetime.now(UTC)
    deadline = fetcher.deadline()
    if options is not None and (options.headers or options.cookies) and polite.session is None:
        raise ValueError("this scraper has no session resolver for the URL's headers and cookies")
    headers = polite.session.headers(options) if polite.session else {}
    slot = polite.gate.slot(host_key(url), deadline) if polite.gate else nullcontext()
    robots = polite.robots if options is None or options.robots else None
    with slot:
        if robots is not None:
            robots.check(url, deadline)
        # A redirect is followed only where robots.txt allows it too (the slot stays the
        # first host's: a redirect to another host is one request there).
        result = fetcher.fetch(url, etag=request.etag, last_modified=request.last_modified,
                               session=headers, deadline=deadline,
                               check_redirect=robots.check if robots else None)
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


def host_key(url: str) -> str:
    """What the per-host limit counts by: the URL's host and port (``example.com:443``)."""
    _, host, port = origin(url)
    return host_port(host, port)
