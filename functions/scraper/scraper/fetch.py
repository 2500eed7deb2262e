"""Fetching one URL safely: pure logic over an injected transport and resolver.

Every hop (the first request and each redirect) is resolved and checked by the SSRF guard, and
the transport is told to connect to the checked addresses only, so a DNS answer cannot change
between the check and the connection (DNS rebinding). Redirects are followed here, by hand, for
that reason. Failures are sorted into the contract's two classes: ``TransientError`` when the
same request may succeed later, ``PermanentError`` when it cannot.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Protocol
from urllib.parse import quote, urljoin, urlsplit

from pipeline.errors import PermanentError, TransientError

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024

# Cloud metadata endpoints are link-local or ULA already; listed so the intent survives any
# change to the ipaddress module's classification.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)

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
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return blocked_reason(address.ipv4_mapped)
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
    allowed = host in allowed_hosts or _host_port(host, port) in allowed_hosts
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

    def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> FetchResult:
        """Fetch ``url``, following redirects, as a conditional GET when a validator is given."""
        started = self.clock()
        deadline = started + self.policy.total_timeout
        headers = {"User-Agent": self.policy.user_agent, "Accept": _accept(self.policy)}
        headers["Accept-Encoding"] = "identity"  # the size cap counts the bytes we keep
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        seen: set[str] = set()
        current = url
        for hop_number in range(1, self.policy.max_redirects + 2):
            seen.add(current)
            hop = self._hop(current, headers)
            response = self._send(hop, current)
            try:
                location = _redirect_location(response, current)
                if location is None:
                    return self._finish(url, current, response, started, deadline, hop_number)
            finally:
                response.close()
            if location in seen:
                raise PermanentError(f"redirect loop: {current} redirects back to {location}")
            if self.clock() > deadline:
                raise self._too_slow(url)
            current = location
        limit = self.policy.max_redirects
        raise PermanentError(f"too many redirects: more than {limit} from {url}")

    def _too_slow(self, url: str) -> TransientError:
        return TransientError(f"fetching {url} took longer than {self.policy.total_timeout} s")

    def _hop(self, url: str, headers: Mapping[str, str]) -> Hop:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise PermanentError(f"malformed URL {url!r}: {error}") from error
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise PermanentError(f"malformed URL {url!r}: need an http(s) URL with a host")
        port = port or (443 if scheme == "https" else 80)
        addresses = check_host(
            parts.hostname, port, resolver=self.resolver, allowed_hosts=self.policy.allowed_hosts
        )
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
        )

    def _send(self, hop: Hop, url: str) -> Response:
        try:
            return self.transport.send(hop)
        except Exception as error:
            raise classify_transport_error(error, url) from error

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
        body = self._read_body(response, final_url, deadline)
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

    def _read_body(self, response: Response, url: str, deadline: float) -> bytes:
        limit = self.policy.max_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                chunk = response.read(min(CHUNK_BYTES, limit + 1 - size))
            except Exception as error:
                raise classify_transport_error(error, url) from error
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                # Stop reading: the rest of the body is never downloaded.
                raise PermanentError(f"too large: {url} is over the limit of {limit} bytes")
            chunks.append(chunk)
            if self.clock() > deadline:
                raise self._too_slow(url)


def classify_transport_error(error: Exception, url: str) -> Exception:
    """Map an exception raised while talking to a server to the contract's error classes."""
    if isinstance(error, TransientError | PermanentError):
        return error
    if isinstance(error, ssl.SSLCertVerificationError):
        return PermanentError(f"TLS certificate of {url} is not valid: {error}")
    if isinstance(error, TimeoutError):
        return TransientError(f"timed out fetching {url}")
    if isinstance(error, ConnectionError | http.client.IncompleteRead):
        # Resets, refusals and truncated bodies: the server may be restarting.
        return TransientError(f"connection failed fetching {url}: {error!r}")
    if isinstance(error, http.client.HTTPException):
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
    return urljoin(url, location.strip()).split("#", 1)[0]


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _accept(policy: FetchPolicy) -> str:
    return ", ".join([*sorted(policy.allowed_content_types), "*/*;q=0.1"])
