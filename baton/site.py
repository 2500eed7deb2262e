"""A sample website on 127.0.0.1 with every kind of page the pipeline must handle.

Content pages (ETag / Last-Modified, 304 on a matching conditional GET):

    /pages/garden  /pages/library       clean, English
    /pages/recette                      clean, French
    /pages/wanderung                    clean, German
    /pages/news                         clean, meant to be changed through the control API
    /pages/rant  /pages/flame           toxic: abusive insults

Fault pages:

    /faults/slow?delay=2                answers after ``delay`` seconds (default 2, max 30)
    /faults/flaky?key=K                 500 twice per key (default: client address), then 200
    /faults/missing                     404
    /faults/huge?mib=6                  an HTML body of ``mib`` MiB (default 6), streamed
                                        without Content-Length
    /faults/report.pdf                  a PDF (not HTML)
    /faults/loop                        redirects to /faults/loop-back, which redirects back
    /faults/moved                       301 to /pages/garden (a redirect that works)
    /faults/latin1                      Latin-1 bytes, no charset anywhere
    /faults/to-metadata                 302 to http://169.254.169.254/latest/meta-data/
    /faults/to-private                  302 to http://10.0.0.1/

Hostile pages (what real servers do to a scraper; each parameter is capped):

    /faults/slow-headers?interval=1&lines=30
                                        the status line at once, then one header line every
                                        ``interval`` seconds, ``lines`` of them, then a page
    /faults/drip?interval=1&bytes=200   headers at once, then an HTML body of ``bytes`` bytes
                                        sent one byte every ``interval`` seconds
    /faults/gzip  /faults/deflate       the garden page, gzip- / deflate-encoded
    /faults/gzip-bomb?mib=256           ``mib`` MiB of zeros gzip-encoded (about 1 KiB per MiB),
                                        labelled text/html
    /faults/binary.html                 a PNG image labelled text/html
    /faults/truncated                   Content-Length 20000, a 1000-byte body, then close
    /faults/broken-chunked              a chunked body cut in the middle of a chunk
    /faults/trailers?lines=1000         a chunked body followed by ``lines`` trailer lines
    /faults/many-headers?count=200      ``count`` extra headers
    /faults/link-farm?links=5000&title=20000
                                        ``links`` links and a ``title``-character title

Politeness and sessions:

    /robots.txt                         disallows /private/ to every user agent
    /private/page                       a plain page (fetched only by an entry that opts out)
    /members/report                     401 unless the request carries the header
                                        X-Site-Token and the cookie ``member`` with the values of
                                        site_pages.MEMBER_TOKEN / MEMBER_COOKIE_VALUE
    /polite/slow?delay=1                answers after ``delay`` seconds (max 30), counting the
                                        /polite/ requests in flight: GET /_control/state reports
                                        the most seen at once (``polite.max_in_flight``)

Control API (POST; ``page`` is a content page name such as ``news``; answers JSON):

    /_control/change?page=P             new content version: body, ETag and Last-Modified change
    /_control/down?page=P&status=503    the page answers ``status`` (500-599, default 503)
    /_control/up?page=P                 the page answers normally again
    /_control/toxic?page=P              the page's text becomes abusive
    /_control/clean?page=P              the page's own text is back
    /_control/reset                     everything as at start, flaky counters included
    GET /_control/state                 the current state of every page, as JSON

Run it with ``python -m baton.site [--port 8765]`` (or ``baton site``); in tests use
``serve(port=0)`` and ``start()``/``stop()``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import html
import json
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from baton import httpguard
from baton.site_pages import (
    CLEAN,
    LATIN1_BODY,
    MEMBER_COOKIE,
    MEMBER_COOKIE_VALUE,
    MEMBER_HEADER,
    MEMBER_TOKEN,
    MEMBERS_PAGE,
    PDF_BODY,
    PRIVATE_PAGE,
    ROBOTS_TXT,
    TOXIC,
    TURNED_TOXIC,
    UPDATES,
    PageText,
    gzip_bomb,
    link_farm,
    png_image,
)

DEFAULT_PORT = 8765
MAX_DELAY_SECONDS = 30.0
# Caps on the hostile pages' parameters: a drip lasts at most interval * count seconds.
MAX_DRIP_INTERVAL = 10.0
MAX_DRIP_COUNT = 10_000
MAX_BOMB_MIB = 4096
MAX_FARM_LINKS = 100_000
MAX_TITLE_CHARS = 1_000_000
TRUNCATED_DECLARED = 20_000
TRUNCATED_SENT = 1_000
FLAKY_FAILURES = 2
METADATA_URL = "http://169.254.169.254/latest/meta-data/"
PRIVATE_URL = "http://10.0.0.1/"


@dataclass
class PageState:
    """What the control API can change about one content page."""

    version: int = 1
    down_status: int | None = None
    toxic: bool = False
    modified_at: float = field(default_factory=lambda: float(int(time.time())))


class SiteState:
    """All mutable state of the site, behind one lock (the server is multi-threaded)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pages: dict[str, PageState] = {}
        self.flaky_hits: dict[str, int] = {}
        self.polite: dict[str, int] = {}
        self.robots_hits = 0
        self.reset()

    def reset(self) -> None:
        """Back to the initial state: original texts, all pages up, counters at zero."""
        with self.lock:
            self.pages = {name: PageState() for name in (*CLEAN, *TOXIC)}
            self.flaky_hits = {}
            self.polite = {"in_flight": 0, "max_in_flight": 0, "requests": 0}
            self.robots_hits = 0

    @contextlib.contextmanager
    def polite_request(self) -> Iterator[None]:
        """Count one /polite/ request in flight while the body of the ``with`` runs."""
        with self.lock:
            self.polite["in_flight"] += 1
            self.polite["requests"] += 1
            self.polite["max_in_flight"] = max(self.polite["max_in_flight"],
                                               self.polite["in_flight"])
        try:
            yield
        finally:
            with self.lock:
                self.polite["in_flight"] -= 1

    def robots_hit(self) -> None:
        """Count one request of /robots.txt."""
        with self.lock:
            self.robots_hits += 1

    def flaky_hit(self, key: str) -> int:
        """Count one request of ``key`` to the flaky page and return its number."""
        with self.lock:
            self.flaky_hits[key] = self.flaky_hits.get(key, 0) + 1
            return self.flaky_hits[key]

    def snapshot(self) -> dict[str, object]:
        """The state as plain data, for GET /_control/state."""
        with self.lock:
            return {
                "pages": {name: asdict(page) for name, page in self.pages.items()},
                "flaky_hits": dict(self.flaky_hits),
                "polite": dict(self.polite),
                "robots_hits": self.robots_hits,
            }


class SampleSite(ThreadingHTTPServer):
    """The sample site's server; ``start()`` serves it from a daemon thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, *, verbose: bool = False) -> None:
        super().__init__((host, port), SiteHandler)
        self.state = SiteState()
        self.verbose = verbose
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The site's root URL, e.g. http://127.0.0.1:8765."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SampleSite:
        """Serve in a background daemon thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="sample-site", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()

    def __enter__(self) -> SampleSite:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class SiteHandler(BaseHTTPRequestHandler):
    """Routes one request; every answer closes the connection (HTTP/1.0)."""

    server: SampleSite
    server_version = "baton-sample-site/0.1"
    allowed_origin: str | None = None  # the request's Origin, once the guard accepted it

    # -- the request guard: closed to web pages and DNS rebinding (baton/httpguard.py) --------

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        reason = httpguard.refusal(dict(self.headers.items()), self.server.server_address[1])
        if reason is None:
            self.allowed_origin = self.headers.get("Origin")
            return True
        body = f"{reason}\n".encode()
        self.send_response(HTTPStatus.FORBIDDEN)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return False

    def end_headers(self) -> None:
        if self.allowed_origin is not None:
            self.send_header("Access-Control-Allow-Origin", self.allowed_origin)
            self.send_header("Vary", "Origin")
        super().end_headers()

    def do_OPTIONS(self) -> None:
        """A preflight from an allowed origin (any other was refused in parse_request)."""
        self.send_response(HTTPStatus.NO_CONTENT)
        self.send_header("Access-Control-Allow-Methods", "GET, POST")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        path, query = self._split()
        if path in ("", "/"):
            self._send_html(HTTPStatus.OK, _index_page())
        elif path.startswith("/pages/"):
            self._content_page(path.removeprefix("/pages/"))
        elif path == "/_control/state":
            self._send_json(HTTPStatus.OK, self.server.state.snapshot())
        elif path.startswith("/faults/"):
            self._fault(path.removeprefix("/faults/"), query)
        elif path == "/robots.txt":
            self.server.state.robots_hit()
            self._send(HTTPStatus.OK, ROBOTS_TXT, "text/plain; charset=utf-8")
        elif path == "/private/page":
            self._send_html(HTTPStatus.OK, _text_page(PRIVATE_PAGE))
        elif path == "/members/report":
            self._members_page()
        elif path == "/polite/slow":
            with self.server.state.polite_request():
                delay = min(_number(query.get("delay"), 1.0), MAX_DELAY_SECONDS)
                time.sleep(delay)
                self._send_html(HTTPStatus.OK, _document("A slow polite page", "en", (
                    f"This page took {delay:g} seconds; it counts its concurrent requests.",)))
        else:
            self._not_found()

    def _members_page(self) -> None:
        cookies = SimpleCookie()
        with contextlib.suppress(CookieError):
            cookies.load(self.headers.get("Cookie", ""))
        member = cookies.get(MEMBER_COOKIE)
        if (self.headers.get(MEMBER_HEADER) != MEMBER_TOKEN or member is None
                or member.value != MEMBER_COOKIE_VALUE):
            self._send_html(HTTPStatus.UNAUTHORIZED, _error_page(401))
            return
        self._send_html(HTTPStatus.OK, _text_page(MEMBERS_PAGE))

    def do_POST(self) -> None:
        path, query = self._split()
        if not path.startswith("/_control/"):
            self._send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "POST only on /_control/"})
            return
        self._control(path.removeprefix("/_control/"), query)

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    # -- content pages -------------------------------------------------------------------------

    def _content_page(self, name: str) -> None:
        state = self.server.state
        with state.lock:
            page = state.pages.get(name)
            snapshot = None if page is None else PageState(**asdict(page))
        if snapshot is None:
            self._not_found()
            return
        if snapshot.down_status is not None:
            self._send_html(snapshot.down_status, _error_page(snapshot.down_status))
            return
        body = _render(name, snapshot)
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        last_modified = formatdate(snapshot.modified_at, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": last_modified, "Cache-Control": "no-cache"}
        if _not_modified(self.headers.get("If-None-Match"),
                         self.headers.get("If-Modified-Since"), etag, snapshot.modified_at):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            for name_, value in headers.items():
                self.send_header(name_, value)
            self.end_headers()
            return
        self._send_html(HTTPStatus.OK, body, headers)

    # -- faults --------------------------------------------------------------------------------

    def _fault(self, name: str, query: dict[str, str]) -> None:
        redirects = {
            "loop": "/faults/loop-back",
            "loop-back": "/faults/loop",
            "moved": "/pages/garden",
            "to-metadata": METADATA_URL,
            "to-private": PRIVATE_URL,
        }
        if name in redirects:
            status = HTTPStatus.MOVED_PERMANENTLY if name == "moved" else HTTPStatus.FOUND
            self.send_response(status)
            self.send_header("Location", redirects[name])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif name == "slow":
            delay = min(_number(query.get("delay"), 2.0), MAX_DELAY_SECONDS)
            time.sleep(delay)
            self._send_html(HTTPStatus.OK, _document("A slow page", "en", (
                f"This page took {delay:g} seconds to answer.",)))
        elif name == "flaky":
            key = query.get("key") or self.client_address[0]
            hit = self.server.state.flaky_hit(key)
            if hit <= FLAKY_FAILURES:
                self._send_html(HTTPStatus.INTERNAL_SERVER_ERROR, _error_page(500))
            else:
                self._send_html(HTTPStatus.OK, _document("A flaky page", "en", (
                    f"This page failed {FLAKY_FAILURES} times, then answered on attempt {hit}.",)))
        elif name == "huge":
            self._stream_huge(_number(query.get("mib"), 6.0))
        elif name == "report.pdf":
            self._send(HTTPStatus.OK, PDF_BODY, "application/pdf")
        elif name == "latin1":
            self._send(HTTPStatus.OK, LATIN1_BODY, "text/html")  # no charset on purpose
        elif name in HOSTILE:
            # The client gives up on these (deadline, limits) as it should: a broken pipe
            # or a reset is the expected end.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                HOSTILE[name](self, query)
        else:
            self._not_found()

    # -- hostile pages -------------------------------------------------------------------------

    def _slow_headers(self, query: dict[str, str]) -> None:
        interval = _capped(query, "interval", 1.0, MAX_DRIP_INTERVAL)
        lines = int(_capped(query, "lines", 30, MAX_DRIP_COUNT))
        body = _document("Slow headers", "en", (f"{lines} header lines, {interval:g} s apart.",))
        self._raw_status(HTTPStatus.OK)
        for number in range(lines):
            time.sleep(interval)
            self.wfile.write(f"X-Drip-{number}: {number}\r\n".encode())
        self.wfile.write(_header_block(len(body), "text/html; charset=utf-8") + body)

    def _drip(self, query: dict[str, str]) -> None:
        interval = _capped(query, "interval", 1.0, MAX_DRIP_INTERVAL)
        size = int(_capped(query, "bytes", 200, MAX_DRIP_COUNT))
        body = _document("A dripping page", "en", ("." * size,))[:size]
        self._raw_status(HTTPStatus.OK)
        self.wfile.write(_header_block(len(body), "text/html; charset=utf-8"))
        for offset in range(len(body)):
            self.wfile.write(body[offset : offset + 1])
            time.sleep(interval)

    def _encoded(self, encoding: str) -> None:
        body = _render("garden", PageState())
        encoded = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
        self._send_html(HTTPStatus.OK, encoded, {"Content-Encoding": encoding})

    def _gzip_bomb(self, query: dict[str, str]) -> None:
        bomb = gzip_bomb(int(_capped(query, "mib", 256, MAX_BOMB_MIB)))
        self._send_html(HTTPStatus.OK, bomb, {"Content-Encoding": "gzip"})

    def _binary_html(self, query: dict[str, str]) -> None:
        self._send_html(HTTPStatus.OK, png_image())

    def _truncated(self, query: dict[str, str]) -> None:
        body = _document("A truncated page", "en", ("This page is cut short. " * 100,))
        self._raw_status(HTTPStatus.OK)
        self.wfile.write(_header_block(TRUNCATED_DECLARED, "text/html; charset=utf-8"))
        self.wfile.write(body[:TRUNCATED_SENT])  # then the connection closes (HTTP/1.0)

    def _broken_chunked(self, query: dict[str, str]) -> None:
        self._raw_status(HTTPStatus.OK)
        self.wfile.write(_header_block(None, "text/html; charset=utf-8", chunked=True))
        self.wfile.write(b"400\r\n<html><head><title>cut</title></head><body>")  # 1024 promised

    def _trailers(self, query: dict[str, str]) -> None:
        lines = int(_capped(query, "lines", 1000, MAX_DRIP_COUNT))
        body = _document("A page with trailers", "en", ("Read the trailers.",))
        self._raw_status(HTTPStatus.OK)
        self.wfile.write(_header_block(None, "text/html; charset=utf-8", chunked=True))
        self.wfile.write(b"%x\r\n%s\r\n0\r\n" % (len(body), body))
        self.wfile.write(b"".join(b"X-Trailer-%d: %d\r\n" % (n, n) for n in range(lines)) + b"\r\n")

    def _many_headers(self, query: dict[str, str]) -> None:
        count = int(_capped(query, "count", 200, MAX_DRIP_COUNT))
        self._send_html(HTTPStatus.OK, _document("Many headers", "en", (f"{count} headers.",)),
                        {f"X-Extra-{number}": str(number) for number in range(count)})

    def _link_farm(self, query: dict[str, str]) -> None:
        links = int(_capped(query, "links", 5000, MAX_FARM_LINKS))
        title, body = link_farm(links, int(_capped(query, "title", 20_000, MAX_TITLE_CHARS)))
        self._send_html(HTTPStatus.OK, _html_document(title, "en", body))

    def _raw_status(self, status: HTTPStatus) -> None:
        """The status line alone, so that what follows can be paced by hand."""
        self.log_request(status.value)
        self.wfile.write(f"HTTP/1.0 {status.value} {status.phrase}\r\n".encode())

    def _stream_huge(self, mib: float) -> None:
        total = int(mib * 1024 * 1024)
        paragraph = ("<p>" + "All work and no play makes a very large page. " * 20 + "</p>\n")
        chunk = paragraph.encode() * 64
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()  # no Content-Length: the client's cap must hold while reading
        sent = 0
        # The client stops reading at its size limit, as it should: a broken pipe is expected.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(b"<html><head><title>A huge page</title></head><body>\n")
            while sent < total:
                piece = chunk[: total - sent]
                self.wfile.write(piece)
                sent += len(piece)
            self.wfile.write(b"</body></html>\n")

    # -- control API ---------------------------------------------------------------------------

    def _control(self, action: str, query: dict[str, str]) -> None:
        state = self.server.state
        if action == "reset":
            state.reset()
            self._send_json(HTTPStatus.OK, {"ok": True, "action": "reset"})
            return
        name = query.get("page", "")
        with state.lock:
            page = state.pages.get(name)
            if page is None:
                error = f"unknown page {name!r}; pages: {', '.join(state.pages)}"
            elif action == "change":
                page.version += 1
                page.modified_at = max(page.modified_at + 1, float(int(time.time())))
                error = None
            elif action == "down":
                status = int(_number(query.get("status"), 503))
                page.down_status = status if 500 <= status <= 599 else 503
                error = None
            elif action == "up":
                page.down_status = None
                error = None
            elif action in ("toxic", "clean"):
                page.toxic = action == "toxic"
                page.modified_at = max(page.modified_at + 1, float(int(time.time())))
                error = None
            else:
                error = f"unknown action {action!r}"
            result = {} if page is None else asdict(page)
        if error is not None:
            self._send_json(HTTPStatus.NOT_FOUND, {"ok": False, "error": error})
        else:
            self._send_json(HTTPStatus.OK, {"ok": True, "action": action, "page": name, **result})

    # -- plumbing ------------------------------------------------------------------------------

    def _split(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return parts.path.rstrip("/") or "/", query

    def _not_found(self) -> None:
        self._send_html(HTTPStatus.NOT_FOUND, _error_page(404))

    def _send_html(
        self, status: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, body, "text/html; charset=utf-8", headers)

    def _send_json(self, status: int, data: object) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        # The client may have given up (e.g. its read timeout): nothing left to tell it.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)


HOSTILE: dict[str, Callable[[SiteHandler, dict[str, str]], None]] = {
    "slow-headers": SiteHandler._slow_headers,
    "drip": SiteHandler._drip,
    "gzip": lambda handler, _: handler._encoded("gzip"),
    "deflate": lambda handler, _: handler._encoded("deflate"),
    "gzip-bomb": SiteHandler._gzip_bomb,
    "binary.html": SiteHandler._binary_html,
    "truncated": SiteHandler._truncated,
    "broken-chunked": SiteHandler._broken_chunked,
    "trailers": SiteHandler._trailers,
    "many-headers": SiteHandler._many_headers,
    "link-farm": SiteHandler._link_farm,
}


def _header_block(length: int | None, content_type: str, *, chunked: bool = False) -> bytes:
    """The header lines after a status line, up to the blank line, for hand-paced answers."""
    lines = [f"Server: {SiteHandler.server_version}", f"Content-Type: {content_type}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _capped(query: dict[str, str], name: str, default: float, cap: float) -> float:
    return max(0.0, min(_number(query.get(name), default), cap))


def _render(name: str, page: PageState) -> bytes:
    text = TURNED_TOXIC if page.toxic else _page_text(name)
    updates = tuple(
        f"{UPDATES[number % len(UPDATES)]} (edition {number + 2})"
        for number in range(page.version - 1)
    )
    return _document(text.title, text.language, (*text.paragraphs, *updates))


def _document(title: str, language: str, paragraphs: tuple[str, ...]) -> bytes:
    return _html_document(
        title, language, "\n".join(f"    <p>{html.escape(text)}</p>" for text in paragraphs)
    )


def _html_document(title: str, language: str, body: str) -> bytes:
    return (
        f'<!DOCTYPE html>\n<html lang="{language}">\n<head>\n  <meta charset="utf-8">\n'
        f"  <title>{html.escape(title)}</title>\n</head>\n<body>\n  <article>\n"
        f"    <h1>{html.escape(title)}</h1>\n{body}\n  </article>\n"
        f'  <nav><a href="/">All pages</a></nav>\n</body>\n</html>\n'
    ).encode()


def _text_page(text: PageText) -> bytes:
    return _document(text.title, text.language, text.paragraphs)


def _page_text(name: str) -> PageText:
    return CLEAN.get(name) or TOXIC[name]


def _index_page() -> bytes:
    links = "\n".join(
        f'    <p><a href="/pages/{name}">{html.escape(_page_text(name).title)}</a></p>'
        for name in (*CLEAN, *TOXIC)
    )
    return _html_document("baton sample site", "en", links)


def _error_page(status: int) -> bytes:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return _document(f"{status} {phrase}", "en", (f"The server answered {status} {phrase}.",))


def _not_modified(
    if_none_match: str | None, if_modified_since: str | None, etag: str, modified_at: float
) -> bool:
    # RFC 9110: If-None-Match wins; If-Modified-Since is only looked at without it.
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or etag in tags
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since).timestamp()
    except (TypeError, ValueError):
        return False
    return modified_at <= since


def _number(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


def serve(
    port: int = DEFAULT_PORT, host: str = "127.0.0.1", *, verbose: bool = False
) -> SampleSite:
    """Create the sample site's server bound to ``host:port`` (0: any free port), not started."""
    return SampleSite(host, port, verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    """Serve the sample site in the foreground until interrupted."""
    parser = argparse.ArgumentParser(prog="baton site", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    site = serve(args.port, args.host, verbose=not args.quiet)
    print(f"Sample site at {site.base_url}/ (Ctrl-C to stop)", file=sys.stderr)
    try:
        site.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        site.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
