"""Fetching one URL safely: pure logic over an injected transport and resolver.

Every hop (the first request and each redirect) is resolved and checked by the SSRF guard, and
the transport is told to connect to the checked addresses only, so a DNS answer cannot change
between the check and the connection (DNS rebinding). Redirects are followed here, by hand, for
that reason. Failures are sorted into the contract's two classes: ``TransientError`` when the
same request may succeed later, ``PermanentError`` when it cannot.

One absolute deadline (``total_timeout``) covers the whole fetch: name resolution, every hop's
connect, headers and body. The fetcher hands each hop the time left and the transport enforces it
(a dripping server cannot stretch an attempt past the deadline + 1 s).
"""

from __future__ import annotations

import http.client
import ipaddress
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Protocol
from urllib.parse import quote, urljoin, urlsplit

from pipeline.errors import PermanentError, TransientError
from scraper.content import OFFERED_ENCODINGS, SNIFF_BYTES, BodyDecoder, sniff

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024
# Longer Location values are not links a site means to be followed (browsers stop near 2 MB;
# 8 KiB is the common server limit for a request line).
MAX_LOCATION_CHARS = 8 * 1024
# An allowlist entry without a port opens these ports only: the URL's default ports.
DEFAULT_PORTS = frozenset({80, 443})

# Cloud metadata endpoints are link-local or ULA already; listed so the intent survives any
# change to the ipaddress module's classification.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)

# IPv6 forms that carry an IPv4 address: they reach whatever the embedded address is.
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
TEREDO = ipaddress.ip_network("2001::/32")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use
SITE_LOCAL = ipaddress.ip_network("fec0::/10")  # deprecated, but routed inside some networks

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]


@dataclass(frozen=True)
class FetchPolicy:
    """The limits a fetch obeys; built from the scraper's settings."""

    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 25.0
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    # Distinct hosts one fetch may visit, the first included: a redirect chain wandering
    # across many hosts is a tracker or a trap, not a page.
    max_redirect_hosts: int = 4
    max_headers: int = 100
    max_header_bytes: int = 64 * 1024
    allowed_content_types: frozenset[str] = frozenset({"text/html", "application/xhtml+xml"})
    allowed_hosts: frozenset[str] = frozenset()
    user_agent: str = "baton-scraper/0.1 (+https://github.com/baton)"


@dataclass(frozen=True)
class Hop:
    """One HTTP request to send: where to connect (checked addresses) and what to ask for."""

    scheme: str
    host: str  # as in the URL: goes into the Host header and TLS server name
    port: int
    addresses: tuple[str, ...]  # resolved and checked: connect to these only
    target: str  # path and query
    headers: Mapping[str, str]
    connect_timeout: float
    read_timeout: float
    time_left: float  # seconds until the fetch's deadline: the transport must end by then


class DeadlineExceeded(TimeoutError):
    """Raised by a transport when the fetch's deadline passes during a hop."""


class Response(Protocol):
    """What a transport returns: status, lower-cased headers, and a body read in pieces."""

    status: int
    headers: Mapping[str, str]

    def read(self, amount: int) -> bytes: ...

    def close(self) -> None: ...


class Transport(Protocol):
    """Sends one request without following redirects."""

    def send(self, hop: Hop) -> Response: ...


@dataclass(frozen=True)
class FetchResult:
    """A fetched page; ``body`` is None when the server answered 304 Not Modified."""

    url: str
    final_url: str
    status_code: int
    body: bytes | None
    content_type: str | None = None
    charset: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    elapsed_ms: float = 0.0
    hops: int = field(default=1, compare=False)


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, via the system resolver."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        if error.errno == socket.EAI_AGAIN:  # the resolver itself is failing: try again later
            raise TransientError(f"could not resolve {host}: {error}") from error
        raise PermanentError(f"could not resolve {host}: {error}") from error
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def blocked_reason(address: IPAddress) -> str | None:
    """Why the guard refuses ``address``, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        return _ipv6_blocked_reason(address)
    return _flags_blocked_reason(address)


def _ipv6_blocked_reason(address: ipaddress.IPv6Address) -> str | None:
    # Forms embedding an IPv4 address are judged by that address (and only by it: a 6to4 or
    # NAT64 address of a public server is public, whatever ipaddress's flags say of the prefix).
    if address.ipv4_mapped is not None:
        return blocked_reason(address.ipv4_mapped)
    if address in SIX_TO_FOUR:
        return _embedded_reason("6to4", address.sixtofour)
    if address in TEREDO and address.teredo is not None:
        server, client = address.teredo
        return _embedded_reason("Teredo", client) or _embedded_reason("Teredo server", server)
    if address in NAT64:
        return _embedded_reason("NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address in NAT64_LOCAL:
        # The local-use prefix may be used at any RFC 6052 length, which moves the embedded
        # address; only the /96 form (bits 48-95 zero) says unambiguously where it is.
        if (int(address) >> 32) & (2**48 - 1):
            return "local-use NAT64 outside its /96 form"
        return _embedded_reason("NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address in SITE_LOCAL:
        return "site-local"
    return _flags_blocked_reason(address)


def _embedded_reason(form: str, embedded: ipaddress.IPv4Address | None) -> str | None:
    if embedded is None:
        return f"{form} without an address"
    reason = blocked_reason(embedded)
    return None if reason is None else f"{form} of {embedded}: {reason}"


def _flags_blocked_reason(address: IPAddress) -> str | None:
    checks = (
        (address in METADATA_ADDRESSES, "cloud metadata"),
        (address.is_loopback, "loopback"),
        (address.is_unspecified, "unspecified"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        # Catches what the flags above miss, e.g. shared address space 100.64.0.0/10.
        (not address.is_global, "not globally routable"),
    )
    return next((reason for hit, reason in checks if hit), None)


def check_host(
    host: str, port: int, *, resolver: Resolver, allowed_hosts: frozenset[str]
) -> tuple[str, ...]:
    """Resolve ``host`` and return its addresses, refusing any non-public one unless allowed."""
    allowed = is_allowed(host, port, allowed_hosts)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    addresses = (str(literal),) if literal is not None else tuple(resolver(host, port))
    if not addresses:
        raise PermanentError(f"{host} resolves to no address")
    if allowed:
        return addresses
    for address in addresses:
        reason = blocked_reason(ipaddress.ip_address(address.split("%")[0]))
        if reason is not None:
            raise PermanentError(f"blocked address: {host} resolves to {address} ({reason})")
    return addresses


def is_allowed(host: str, port: int, allowed_hosts: frozenset[str]) -> bool:
    """True when the allowlist exempts ``host:port`` from the guard.

    An entry ``host:port`` opens that port only; an entry without a port opens the default
    ports (80, 443) only, never every port of the host.
    """
    host = host.lower()
    return host_port(host, port) in allowed_hosts or (
        port in DEFAULT_PORTS and (host in allowed_hosts or f"[{host}]" in allowed_hosts)
    )


def resolve_within(resolver: Resolver, host: str, port: int, seconds: float) -> Sequence[str]:
    """``resolver(host, port)``, given up after ``seconds``: the system resolver has no deadline."""
    answers: queue.Queue[tuple[Sequence[str] | None, BaseException | None]] = queue.Queue(1)

    def work() -> None:
        try:
            answers.put((resolver(host, port), None))
        except BaseException as error:  # handed to the caller's thread
            answers.put((None, error))

    # A daemon thread: a resolver that never answers is abandoned, not waited for.
    threading.Thread(target=work, name=f"resolve-{host}", daemon=True).start()
    try:
        addresses, error = answers.get(timeout=max(seconds, 0.0))
    except queue.Empty:
        raise DeadlineExceeded(f"resolving {host} outlasted the deadline") from None
    if error is not None:
        raise error
    assert addresses is not None
    return addresses


class Fetcher:
    """Fetches pages under a policy, through a transport, with every hop checked."""

    def __init__(
        self,
        policy: FetchPolicy,
        transport: Transport,
        *,
        resolver: Resolver = resolve,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.transport = transport
        self.resolver = resolver
        self.clock = clock

    def deadline(self) -> float:
        """The deadline of an attempt starting now, on this fetcher's clock."""
        return self.clock() + self.policy.total_timeout

    def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        session: Mapping[str, str] | None = None,
        deadline: float | None = None,
        client_errors: bool = False,
        check_redirect: Callable[[str, float], None] | None = None,
    ) -> FetchResult:
        """Fetch ``url``, following redirects, as a conditional GET when a validator is given.

        ``session`` headers (an entry's own, cookies included) go to ``url``'s origin only, never
        to another host a redirect leads to. ``deadline`` (this fetcher's clock) is the attempt's
        when it began before the fetch (waiting for a host slot). ``client_errors``: a 4xx answer
        is returned (without a body) instead of raised, for robots.txt, where it means "allow".
        ``check_redirect(location, deadline)`` is called before following each redirect and may
        raise to refuse it (robots.txt of the place it leads to).
        """
        started = self.clock()
        deadline = started + self.policy.total_timeout if deadline is None else deadline
        headers = {"User-Agent": self.policy.user_agent, "Accept": _accept(self.policy)}
        # Decoded under the size cap (scraper.content); anything else is refused.
        headers["Accept-Encoding"] = OFFERED_ENCODINGS
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        seen: set[str] = set()
        hosts: set[str] = set()
        current = url
        for hop_number in range(1, self.policy.max_redirects + 2):
            seen.add(current)
            own = _same_origin(current, url)
            hop = self._hop(current, {**headers, **(session or {})} if own else headers, deadline)
            hosts.add(hop.host)
            if len(hosts) > self.policy.max_redirect_hosts:
                raise PermanentError(
                    f"too many hosts: {url} redirects across more than "
                    f"{self.policy.max_redirect_hosts} hosts (reached {hop.host})"
                )
            response = self._send(hop, current, deadline)
            try:
                self._check_headers(response, current)
                location = _redirect_location(response, current)
                if location is None:
                    if client_errors and 400 <= response.status < 500 and response.status != 429:
                        return FetchResult(url=url, final_url=current, status_code=response.status,
                                           body=None, elapsed_ms=(self.clock() - started) * 1000,
                                           hops=hop_number)
                    return self._finish(url, current, response, started, deadline, hop_number)
            finally:
                response.close()
            if location in seen:
                raise PermanentError(f"redirect loop: {current} redirects back to {location}")
            if self.clock() > deadline:
                raise self._too_slow(url)
            if check_redirect is not None:
                check_redirect(location, deadline)
            current = location
        limit = self.policy.max_redirects
        raise PermanentError(f"too many redirects: more than {limit} from {url}")

    def _too_slow(self, url: str) -> TransientError:
        return TransientError(f"fetching {url} took longer than {self.policy.total_timeout} s")

    def _failure(self, error: Exception, url: str, deadline: float) -> Exception:
        """The contract error for ``error``; a deadline that passed meanwhile is the cause."""
        if isinstance(error, DeadlineExceeded) or (
            not isinstance(error, PermanentError) and self.clock() > deadline
        ):
            return self._too_slow(url)
        return classify_transport_error(error, url)

    def _time_left(self, url: str, deadline: float) -> float:
        left = deadline - self.clock()
        if left <= 0:
            raise self._too_slow(url)
        return left

    def _check_headers(self, response: Response, url: str) -> None:
        count = len(response.headers)
        if count > self.policy.max_headers:
            raise PermanentError(
                f"too many headers: {url} sent {count}, limit {self.policy.max_headers}"
            )
        size = sum(len(name) + len(value) + 4 for name, value in response.headers.items())
        if size > self.policy.max_header_bytes:
            raise PermanentError(
                f"headers too large: {url} sent {size} bytes of headers, "
                f"limit {self.policy.max_header_bytes}"
            )

    def _hop(self, url: str, headers: Mapping[str, str], deadline: float) -> Hop:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise PermanentError(f"malformed URL {url!r}: {error}") from error
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise PermanentError(f"malformed URL {url!r}: need an http(s) URL with a host")
        port = port or (443 if scheme == "https" else 80)
        left = self._time_left(url, deadline)

        def bounded(host: str, port: int) -> Sequence[str]:
            return resolve_within(self.resolver, host, port, left)

        try:
            addresses = check_host(
                parts.hostname, port, resolver=bounded, allowed_hosts=self.policy.allowed_hosts
            )
        except DeadlineExceeded as error:
            raise self._too_slow(url) from error
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        return Hop(
            scheme=scheme,
            host=parts.hostname,
            port=port,
            addresses=addresses,
            # Locations may carry raw spaces or non-ASCII; keep what is already escaped.
            target=quote(target, safe="/?&=%:@!$'()*+,;~-._[]"),
            headers=dict(headers),
            connect_timeout=self.policy.connect_timeout,
            read_timeout=self.policy.read_timeout,
            time_left=self._time_left(url, deadline),
        )

    def _send(self, hop: Hop, url: str, deadline: float) -> Response:
        try:
            return self.transport.send(hop)
        except Exception as error:
            raise self._failure(error, url, deadline) from error

    def _finish(
        self,
        url: str,
        final_url: str,
        response: Response,
        started: float,
        deadline: float,
        hops: int,
    ) -> FetchResult:
        status = response.status
        header = response.headers.get
        if status == 304:
            return FetchResult(
                url=url,
                final_url=final_url,
                status_code=status,
                body=None,
                etag=header("etag"),
                last_modified=header("last-modified"),
                elapsed_ms=(self.clock() - started) * 1000,
                hops=hops,
            )
        _check_status(status, final_url)
        content_type, charset = parse_content_type(header("content-type"))
        if content_type not in self.policy.allowed_content_types:
            raise PermanentError(f"not HTML: {final_url} is {content_type or 'untyped'}")
        declared = header("content-length")
        if declared and declared.strip().isdigit() and int(declared) > self.policy.max_bytes:
            raise PermanentError(
                f"too large: {final_url} declares {declared} bytes, limit {self.policy.max_bytes}"
            )
        body = self._read_body(response, final_url, deadline, charset)
        return FetchResult(
            url=url,
            final_url=final_url,
            status_code=status,
            body=body,
            content_type=content_type,
            charset=charset,
            etag=header("etag"),
            last_modified=header("last-modified"),
            elapsed_ms=(self.clock() - started) * 1000,
            hops=hops,
        )

    def _read_body(
        self, response: Response, url: str, deadline: float, charset: str | None
    ) -> bytes:
        limit = self.policy.max_bytes
        decoder = BodyDecoder(response.headers.get("content-encoding"), limit, url)
        chunks: list[bytes] = []
        received = 0  # bytes on the wire, before decoding
        sniffed = False
        while True:
            try:
                chunk = response.read(min(CHUNK_BYTES, limit + 1 - received))
            except Exception as error:
                raise self._failure(error, url, deadline) from error
            if not chunk:
                break
            received += len(chunk)
            if received > limit:
                # Stop reading: the rest of the body is never downloaded.
                raise PermanentError(f"too large: {url} is over the limit of {limit} bytes")
            chunks.append(decoder.feed(chunk))
            if not sniffed and decoder.size >= SNIFF_BYTES:
                _refuse_binary(b"".join(chunks), charset, url)
                sniffed = True
            if self.clock() > deadline:
                raise self._too_slow(url)
        # The transport ends a body at the deadline by closing it: an end after the deadline
        # may be that cut, not the body's real end.
        if self.clock() > deadline:
            raise self._too_slow(url)
        _check_complete(response.headers, received, url)
        decoder.finish()
        body = b"".join(chunks)
        if not sniffed:
            _refuse_binary(body, charset, url)
        return body


def _refuse_binary(head: bytes, charset: str | None, url: str) -> None:
    what = sniff(head[:SNIFF_BYTES], charset)
    if what is not None:
        raise PermanentError(f"not HTML: {url} is labelled HTML but its body is {what}")


def _check_complete(headers: Mapping[str, str], received: int, url: str) -> None:
    """TransientError when fewer bytes came than Content-Length promised (a cut connection)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return  # the chunked framing delimits the body; a broken one fails while reading
    declared = headers.get("content-length", "").strip()
    if declared.isdigit() and received < int(declared):
        raise TransientError(
            f"truncated body: {url} sent {received} of the {declared} bytes it declared"
        )


def classify_transport_error(error: Exception, url: str) -> Exception:
    """Map an exception raised while talking to a server to the contract's error classes."""
    if isinstance(error, TransientError | PermanentError):
        return error
    if isinstance(error, ssl.SSLCertVerificationError):
        return PermanentError(f"TLS certificate of {url} is not valid: {error}")
    if isinstance(error, TimeoutError):
        return TransientError(f"timed out fetching {url}")
    if isinstance(error, http.client.IncompleteRead):
        # A broken chunked body, or a connection closed mid-body: the server may be restarting.
        return TransientError(f"truncated body: {url} ended early ({error!r})")
    if isinstance(error, ConnectionError):
        # Resets and refusals: the server may be restarting.
        return TransientError(f"connection failed fetching {url}: {error!r}")
    if isinstance(error, http.client.HTTPException):
        # Includes http.client's own limits: more than 100 header lines, a 64 KiB line.
        return PermanentError(f"malformed HTTP response from {url}: {error!r}")
    if isinstance(error, OSError):
        return TransientError(f"network error fetching {url}: {error!r}")
    return error


def parse_content_type(value: str | None) -> tuple[str | None, str | None]:
    """Media type and declared charset of a Content-Type header, both lower-cased."""
    if not value:
        return None, None
    message = Message()
    message["content-type"] = value
    charset = message.get_param("charset")
    return message.get_content_type(), str(charset).lower() if isinstance(charset, str) else None


def _check_status(status: int, url: str) -> None:
    if status == 429 or status >= 500:
        raise TransientError(f"{url} answered {status}")
    if status >= 400:
        raise PermanentError(f"{url} answered {status}")
    if status >= 300:
        raise PermanentError(f"{url} answered {status} without a usable redirect")
    if status < 200:
        raise PermanentError(f"{url} answered unexpected status {status}")


def _redirect_location(response: Response, url: str) -> str | None:
    if response.status not in REDIRECT_STATUSES:
        return None
    location = response.headers.get("location")
    if not location:
        return None  # reported by _check_status as a redirect without a target
    if len(location) > MAX_LOCATION_CHARS:
        raise PermanentError(
            f"redirect location too long: {url} redirects to {len(location)} characters, "
            f"limit {MAX_LOCATION_CHARS}"
        )
    return urljoin(url, location.strip()).split("#", 1)[0]


def origin(url: str) -> tuple[str, str, int]:
    """Scheme, lower-case host and port of ``url`` (its default port when none is written);
    ValueError for a malformed URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or ""), parts.port or (443 if scheme == "https" else 80)


def _same_origin(url: str, other: str) -> bool:
    try:
        return origin(url) == origin(other)
    except ValueError:  # refused by _hop, with its reason
        return False


def host_port(host: str, port: int) -> str:
    """``host:port``, an IPv6 host in brackets (``[::1]:8080``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _accept(policy: FetchPolicy) -> str:
    return ", ".join([*sorted(policy.allowed_content_types), "*/*;q=0.1"])
