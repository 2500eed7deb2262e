"""The real HTTP transport against the sample site: it connects to checked addresses only."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from baton.site import SampleSite
from pipeline.errors import PermanentError, TransientError
from scraper.fetch import Fetcher, FetchPolicy
from scraper.transport import ALARMS, Alarms, HttpTransport


class AnyHostSite(BaseHTTPRequestHandler):
    """A server that answers whatever Host it is asked for (the sample site refuses foreign
    Hosts, as a guard against DNS rebinding): /faults/moved redirects to /pages/garden."""

    def do_GET(self) -> None:
        if self.path == "/faults/moved":
            self.send_response(301)
            self.send_header("Location", "/pages/garden")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"<html><head><title>Garden</title></head><body><p>Tomatoes.</p></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def any_host_site() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), AnyHostSite)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_the_connection_goes_to_the_checked_address_not_a_fresh_lookup(
    any_host_site: ThreadingHTTPServer,
) -> None:
    # "site.invalid" cannot resolve through the system resolver: the fetch only works if the
    # transport connects to the address the guard checked instead of resolving the name again.
    port = any_host_site.server_address[1]
    fetcher = Fetcher(
        FetchPolicy(allowed_hosts=frozenset({f"site.invalid:{port}"})),
        HttpTransport(),
        resolver=lambda host, _port: ["127.0.0.1"],
    )

    result = fetcher.fetch(f"http://site.invalid:{port}/faults/moved")

    assert (result.status_code, result.final_url) == (200, f"http://site.invalid:{port}/pages/garden")


def test_a_name_resolving_to_loopback_is_refused_before_connecting(
    sample_site: SampleSite,
) -> None:
    port = sample_site.server_address[1]
    fetcher = Fetcher(FetchPolicy(), HttpTransport(), resolver=lambda host, _port: ["127.0.0.1"])

    with pytest.raises(PermanentError, match=r"blocked address.*127\.0\.0\.1.*loopback"):
        fetcher.fetch(f"http://rebind.invalid:{port}/pages/garden")


# -- hostile pages on the real transport -------------------------------------------------------


def site_fetcher(site: SampleSite, **policy: object) -> tuple[Fetcher, str]:
    base = site.base_url
    fetcher = Fetcher(
        FetchPolicy(allowed_hosts=frozenset({base.removeprefix("http://")}), **policy),  # type: ignore[arg-type]
        HttpTransport(),
    )
    return fetcher, base


@pytest.mark.parametrize(
    "page",
    [
        "/faults/drip?interval=0.5&bytes=200",  # each byte well within the read timeout
        "/faults/slow-headers?interval=0.5&lines=100",
        "/faults/slow?delay=5",  # nothing at all until after the deadline
    ],
    ids=["dripping-body", "dripping-headers", "silent"],
)
def test_the_deadline_ends_the_attempt_whatever_the_server_does(
    sample_site: SampleSite, page: str
) -> None:
    fetcher, base = site_fetcher(sample_site, total_timeout=1.5, read_timeout=10.0)
    started = time.monotonic()

    with pytest.raises(TransientError, match=r"took longer than 1\.5 s"):
        fetcher.fetch(f"{base}{page}")
    # Not a timing assertion on the server: the point of the deadline is that this holds.
    assert time.monotonic() - started < 1.5 + 1.0


def test_a_drip_that_ends_before_the_deadline_is_read_whole(sample_site: SampleSite) -> None:
    fetcher, base = site_fetcher(sample_site, total_timeout=10.0)

    result = fetcher.fetch(f"{base}/faults/drip?interval=0.01&bytes=40")

    assert result.body is not None and len(result.body) == 40


def test_the_watchdog_is_stopped_after_a_normal_fetch(sample_site: SampleSite) -> None:
    fetcher, base = site_fetcher(sample_site)  # a 25 s deadline: its alarms would outlive the test

    for _ in range(5):
        fetcher.fetch(f"{base}/pages/garden")

    assert ALARMS.pending() == 0  # each fetch's alarm was cancelled when it ended
    # One alarm thread serves every watchdog: no thread (no Timer) per fetch.
    assert not [thread for thread in threading.enumerate() if isinstance(thread, threading.Timer)]


def test_alarms_run_in_time_order_and_a_cancelled_one_never_runs() -> None:
    alarms, ran = Alarms(), list[str]()
    done = threading.Event()
    now = time.monotonic()

    def last() -> None:
        ran.append("late")
        done.set()

    alarms.at(now + 0.2, last)
    alarms.at(now + 0.1, lambda: ran.append("cancelled")).cancel()
    alarms.at(now - 1.0, lambda: ran.append("overdue"))  # its time has passed: runs at once

    assert done.wait(timeout=5)
    assert ran == ["overdue", "late"]
    assert alarms.pending() == 0


@pytest.mark.parametrize("page", ["/faults/gzip", "/faults/deflate"])
def test_a_compressed_page_is_stored_decoded(sample_site: SampleSite, page: str) -> None:
    fetcher, base = site_fetcher(sample_site)

    encoded = fetcher.fetch(f"{base}{page}").body
    plain = fetcher.fetch(f"{base}/pages/garden").body

    assert encoded == plain and encoded is not None and encoded.startswith(b"<!DOCTYPE html>")


def test_a_gzip_bomb_is_refused_at_the_cap(sample_site: SampleSite) -> None:
    fetcher, base = site_fetcher(sample_site, max_bytes=1024 * 1024)

    with pytest.raises(PermanentError, match=r"decompresses to over 1048576 bytes"):
        fetcher.fetch(f"{base}/faults/gzip-bomb?mib=64")


def test_a_png_labelled_html_is_refused_by_name(sample_site: SampleSite) -> None:
    fetcher, base = site_fetcher(sample_site)

    with pytest.raises(PermanentError, match="labelled HTML but its body is PNG image"):
        fetcher.fetch(f"{base}/faults/binary.html")


def test_a_body_shorter_than_its_content_length_is_transient(sample_site: SampleSite) -> None:
    fetcher, base = site_fetcher(sample_site)

    with pytest.raises(TransientError, match=r"truncated body: .* sent 1000 of the 20000 bytes"):
        fetcher.fetch(f"{base}/faults/truncated")


def test_a_broken_chunked_body_is_transient(sample_site: SampleSite) -> None:
    fetcher, base = site_fetcher(sample_site)

    with pytest.raises(TransientError, match="truncated body"):
        fetcher.fetch(f"{base}/faults/broken-chunked")


def test_endless_trailers_are_refused(sample_site: SampleSite) -> None:
    fetcher, base = site_fetcher(sample_site)

    with pytest.raises(PermanentError, match="more than 100 trailer lines"):
        fetcher.fetch(f"{base}/faults/trailers?lines=1000")


def test_a_few_trailers_are_fine(sample_site: SampleSite) -> None:
    fetcher, base = site_fetcher(sample_site)

    assert fetcher.fetch(f"{base}/faults/trailers?lines=3").status_code == 200


def test_more_headers_than_allowed_are_refused(sample_site: SampleSite) -> None:
    fetcher, base = site_fetcher(sample_site)

    with pytest.raises(PermanentError, match="got more than 100 headers"):
        fetcher.fetch(f"{base}/faults/many-headers?count=200")


def test_a_link_farm_is_fetched_whole(sample_site: SampleSite) -> None:
    fetcher, base = site_fetcher(sample_site)

    body = fetcher.fetch(f"{base}/faults/link-farm?links=5000&title=20000").body

    assert body is not None and body.count(b"<a href=") == 5000 + 1  # and the nav link
