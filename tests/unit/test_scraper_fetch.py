"""The scraper's fetch logic over a fake transport and resolver: no socket is ever opened."""

from __future__ import annotations

import gzip
import http.client
import io
import ipaddress
import random
import socket
import ssl
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pytest

from pipeline.errors import PermanentError, TransientError
from scraper.content import BodyDecoder, sniff
from scraper.fetch import (
    CHUNK_BYTES,
    DeadlineExceeded,
    Fetcher,
    FetchPolicy,
    Hop,
    blocked_reason,
    check_host,
    resolve,
    resolve_within,
)
from scraper.transport import TooManyTrailers

HTML = {"content-type": "text/html; charset=utf-8"}
PUBLIC_IP = "93.184.215.14"


@dataclass
class FakeResponse:
    status: int
    headers: Mapping[str, str] = field(default_factory=lambda: dict(HTML))
    body: bytes = b"<html><body>hello</body></html>"
    fail_on_read: Exception | None = None
    bytes_read: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        self._stream = io.BytesIO(self.body)

    def read(self, amount: int) -> bytes:
        if self.fail_on_read is not None:
            raise self.fail_on_read
        chunk = self._stream.read(amount)
        self.bytes_read += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed = True


Route = FakeResponse | Exception


@dataclass
class FakeTransport:
    routes: dict[str, Route]
    hops: list[Hop] = field(default_factory=list)

    def send(self, hop: Hop) -> FakeResponse:
        self.hops.append(hop)
        default_port = 443 if hop.scheme == "https" else 80
        port = "" if hop.port == default_port else f":{hop.port}"
        route = self.routes[f"{hop.scheme}://{hop.host}{port}{hop.target}"]
        if isinstance(route, Exception):
            raise route
        return route


def resolver_for(table: Mapping[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve_name(host: str, port: int) -> list[str]:
        return table.get(host, [PUBLIC_IP])

    return resolve_name


def make_fetcher(
    routes: dict[str, Route],
    *,
    dns: Mapping[str, list[str]] | None = None,
    clock: Callable[[], float] | None = None,
    **policy: object,
) -> tuple[Fetcher, FakeTransport]:
    transport = FakeTransport(routes)
    fetcher = Fetcher(
        FetchPolicy(**policy),  # type: ignore[arg-type]
        transport,
        resolver=resolver_for(dns or {}),
        clock=clock or (lambda: 0.0),
    )
    return fetcher, transport


def redirect(location: str, status: int = 302) -> FakeResponse:
    return FakeResponse(status, {"location": location}, b"")


# -- success -----------------------------------------------------------------------------------


def test_a_200_html_page_returns_its_body_and_metadata() -> None:
    response = FakeResponse(
        200,
        {"content-type": "text/html; charset=ISO-8859-1", "etag": '"v1"',
         "last-modified": "Sun, 22 Nov 2026 10:00:00 GMT"},
        b"<p>caf\xe9</p>",
    )
    fetcher, _ = make_fetcher({"http://example.com/": response})

    result = fetcher.fetch("http://example.com/")

    assert (result.status_code, result.body, result.content_type, result.charset) == (
        200, b"<p>caf\xe9</p>", "text/html", "iso-8859-1")
    assert (result.etag, result.last_modified) == ('"v1"', "Sun, 22 Nov 2026 10:00:00 GMT")


def test_requests_identify_the_scraper_by_user_agent() -> None:
    fetcher, transport = make_fetcher({"http://example.com/": FakeResponse(200)})

    fetcher.fetch("http://example.com/")

    assert transport.hops[0].headers["User-Agent"].startswith("baton-scraper/")


def test_xhtml_is_accepted_as_html() -> None:
    response = FakeResponse(200, {"content-type": "application/xhtml+xml"})
    fetcher, _ = make_fetcher({"http://example.com/": response})

    assert fetcher.fetch("http://example.com/").content_type == "application/xhtml+xml"


def test_the_response_is_closed_after_reading() -> None:
    response = FakeResponse(200)
    fetcher, _ = make_fetcher({"http://example.com/": response})

    fetcher.fetch("http://example.com/")

    assert response.closed


# -- conditional GET ---------------------------------------------------------------------------


def test_known_validators_make_the_request_conditional() -> None:
    fetcher, transport = make_fetcher({"http://example.com/": FakeResponse(200)})

    fetcher.fetch("http://example.com/", etag='"v1"', last_modified="Sun, 22 Nov 2026 10:00:00 GMT")

    headers = transport.hops[0].headers
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == "Sun, 22 Nov 2026 10:00:00 GMT"


def test_without_validators_the_request_is_unconditional() -> None:
    fetcher, transport = make_fetcher({"http://example.com/": FakeResponse(200)})

    fetcher.fetch("http://example.com/")

    assert not {"If-None-Match", "If-Modified-Since"} & set(transport.hops[0].headers)


def test_304_not_modified_returns_no_body() -> None:
    response = FakeResponse(304, {"etag": '"v1"'}, b"")
    fetcher, _ = make_fetcher({"http://example.com/": response})

    result = fetcher.fetch("http://example.com/", etag='"v1"')

    assert (result.status_code, result.body, result.etag) == (304, None, '"v1"')


# -- status codes and transport failures -------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_server_errors_and_429_are_transient(status: int) -> None:
    fetcher, _ = make_fetcher({"http://example.com/": FakeResponse(status)})

    with pytest.raises(TransientError, match=str(status)):
        fetcher.fetch("http://example.com/")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 451])
def test_client_errors_are_permanent(status: int) -> None:
    fetcher, _ = make_fetcher({"http://example.com/": FakeResponse(status)})

    with pytest.raises(PermanentError, match=str(status)):
        fetcher.fetch("http://example.com/")


@pytest.mark.parametrize(
    "failure",
    [
        TimeoutError("timed out"),
        ConnectionResetError("reset by peer"),
        ConnectionRefusedError("refused"),
        http.client.RemoteDisconnected("closed without response"),
        OSError(113, "No route to host"),
    ],
    ids=["timeout", "reset", "refused", "remote-disconnected", "unreachable"],
)
def test_network_failures_are_transient(failure: Exception) -> None:
    fetcher, _ = make_fetcher({"http://example.com/": failure})

    with pytest.raises(TransientError):
        fetcher.fetch("http://example.com/")


def test_a_timeout_while_reading_the_body_is_transient() -> None:
    response = FakeResponse(200, fail_on_read=TimeoutError("timed out"))
    fetcher, _ = make_fetcher({"http://example.com/": response})

    with pytest.raises(TransientError, match="timed out"):
        fetcher.fetch("http://example.com/")


def test_a_truncated_body_is_transient() -> None:
    response = FakeResponse(200, fail_on_read=http.client.IncompleteRead(b"abc", 100))
    fetcher, _ = make_fetcher({"http://example.com/": response})

    with pytest.raises(TransientError):
        fetcher.fetch("http://example.com/")


@pytest.mark.parametrize(
    "failure",
    [ssl.SSLCertVerificationError("certificate verify failed"), http.client.BadStatusLine("x")],
    ids=["bad-certificate", "garbled-status-line"],
)
def test_protocol_failures_that_repeat_are_permanent(failure: Exception) -> None:
    fetcher, _ = make_fetcher({"https://example.com/": failure})

    with pytest.raises(PermanentError):
        fetcher.fetch("https://example.com/")


def test_running_past_the_total_timeout_is_transient() -> None:
    ticks = iter([0.0, 0.0, 100.0, 100.0])
    body = b"x" * (200 * 1024)  # several chunks, so the deadline is checked mid-body
    fetcher, _ = make_fetcher(
        {"http://example.com/": FakeResponse(200, body=body)},
        clock=lambda: next(ticks, 100.0),
        total_timeout=10.0,
    )

    with pytest.raises(TransientError, match="longer than"):
        fetcher.fetch("http://example.com/")


# -- content type and size ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"content-type": "application/pdf"}, {"content-type": "image/png"}, {}],
    ids=["pdf", "png", "untyped"],
)
def test_anything_but_html_is_permanent(headers: dict[str, str]) -> None:
    fetcher, _ = make_fetcher({"http://example.com/": FakeResponse(200, headers, b"%PDF-1.4")})

    with pytest.raises(PermanentError, match="not HTML"):
        fetcher.fetch("http://example.com/")


def test_a_body_over_the_limit_is_permanent_and_not_read_to_the_end() -> None:
    response = FakeResponse(200, body=b"x" * 10_000)
    fetcher, _ = make_fetcher({"http://example.com/": response}, max_bytes=1_000)

    with pytest.raises(PermanentError, match="too large"):
        fetcher.fetch("http://example.com/")
    assert response.bytes_read == 1_001


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    response = FakeResponse(200, {**HTML, "content-length": "5000"}, b"x" * 5000)
    fetcher, _ = make_fetcher({"http://example.com/": response}, max_bytes=1_000)

    with pytest.raises(PermanentError, match="too large"):
        fetcher.fetch("http://example.com/")
    assert response.bytes_read == 0


def test_a_body_exactly_at_the_limit_is_accepted() -> None:
    fetcher, _ = make_fetcher(
        {"http://example.com/": FakeResponse(200, body=b"x" * 1_000)}, max_bytes=1_000
    )

    assert fetcher.fetch("http://example.com/").body == b"x" * 1_000


# -- redirects ---------------------------------------------------------------------------------


def test_a_relative_redirect_is_followed_to_the_final_url() -> None:
    fetcher, _ = make_fetcher({
        "http://example.com/old": redirect("/new", 301),
        "http://example.com/new": FakeResponse(200),
    })

    result = fetcher.fetch("http://example.com/old")

    assert (result.url, result.final_url, result.status_code) == (
        "http://example.com/old", "http://example.com/new", 200)


def test_a_redirect_loop_is_permanent() -> None:
    fetcher, _ = make_fetcher({
        "http://example.com/a": redirect("/b"),
        "http://example.com/b": redirect("/a"),
    })

    with pytest.raises(PermanentError, match="redirect loop"):
        fetcher.fetch("http://example.com/a")


def test_more_redirects_than_allowed_is_permanent() -> None:
    routes: dict[str, Route] = {
        f"http://example.com/{hop}": redirect(f"/{hop + 1}") for hop in range(10)
    }
    fetcher, transport = make_fetcher(routes, max_redirects=3)

    with pytest.raises(PermanentError, match="too many redirects"):
        fetcher.fetch("http://example.com/0")
    assert len(transport.hops) == 4


def test_a_redirect_without_location_is_permanent() -> None:
    fetcher, _ = make_fetcher({"http://example.com/": FakeResponse(302, {}, b"")})

    with pytest.raises(PermanentError, match="302"):
        fetcher.fetch("http://example.com/")


def test_a_redirect_to_another_scheme_is_permanent() -> None:
    fetcher, _ = make_fetcher({"http://example.com/": redirect("ftp://example.com/file")})

    with pytest.raises(PermanentError, match="malformed URL"):
        fetcher.fetch("http://example.com/")


# -- SSRF guard --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "0.0.0.0",
        "224.0.0.1", "240.0.0.1", "100.64.0.1", "::1", "fd00:ec2::254", "fe80::1", "fc00::1",
        "::ffff:127.0.0.1", "::",
    ],
)
def test_the_guard_refuses_non_public_literal_addresses(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    fetcher, transport = make_fetcher({})

    with pytest.raises(PermanentError, match="blocked address"):
        fetcher.fetch(f"http://{host}/")
    assert transport.hops == []


def test_the_guard_refuses_a_name_resolving_to_a_private_address() -> None:
    fetcher, transport = make_fetcher({}, dns={"intranet.example": ["10.1.2.3"]})

    with pytest.raises(PermanentError, match=r"blocked address.*10\.1\.2\.3"):
        fetcher.fetch("http://intranet.example/")
    assert transport.hops == []


def test_the_guard_refuses_a_name_with_any_private_address_among_public_ones() -> None:
    fetcher, _ = make_fetcher({}, dns={"mixed.example": [PUBLIC_IP, "127.0.0.1"]})

    with pytest.raises(PermanentError, match="blocked address"):
        fetcher.fetch("http://mixed.example/")


def test_the_guard_checks_every_redirect_hop() -> None:
    fetcher, transport = make_fetcher(
        {"http://example.com/": redirect("http://169.254.169.254/latest/meta-data/")}
    )

    with pytest.raises(PermanentError, match=r"blocked address.*169\.254\.169\.254"):
        fetcher.fetch("http://example.com/")
    assert [hop.host for hop in transport.hops] == ["example.com"]


def test_the_guard_checks_a_redirect_to_a_name_that_resolves_privately() -> None:
    fetcher, transport = make_fetcher(
        {"http://example.com/": redirect("http://db.internal/")}, dns={"db.internal": ["10.0.0.5"]}
    )

    with pytest.raises(PermanentError, match="blocked address"):
        fetcher.fetch("http://example.com/")
    assert len(transport.hops) == 1


def test_the_transport_connects_to_the_addresses_that_were_checked() -> None:
    fetcher, transport = make_fetcher(
        {"http://example.com/": FakeResponse(200)}, dns={"example.com": [PUBLIC_IP]}
    )

    fetcher.fetch("http://example.com/")

    assert (transport.hops[0].host, transport.hops[0].addresses) == ("example.com", (PUBLIC_IP,))


def test_an_allowlisted_host_and_port_passes_the_guard() -> None:
    fetcher, _ = make_fetcher(
        {"http://127.0.0.1:8765/": FakeResponse(200)}, allowed_hosts=frozenset({"127.0.0.1:8765"})
    )

    assert fetcher.fetch("http://127.0.0.1:8765/").status_code == 200


@pytest.mark.parametrize("url", ["http://localhost/", "https://localhost/"])
def test_an_allowlisted_host_without_port_passes_the_guard_on_the_default_ports(url: str) -> None:
    fetcher, _ = make_fetcher(
        {url: FakeResponse(200)},
        dns={"localhost": ["127.0.0.1"]},
        allowed_hosts=frozenset({"localhost"}),
    )

    assert fetcher.fetch(url).status_code == 200


def test_an_allowlisted_host_without_port_does_not_open_other_ports() -> None:
    # Decided: "localhost" means http(s)://localhost/, not every service on the machine.
    fetcher, transport = make_fetcher(
        {}, dns={"localhost": ["127.0.0.1"]}, allowed_hosts=frozenset({"localhost"})
    )

    with pytest.raises(PermanentError, match="blocked address"):
        fetcher.fetch("http://localhost:9000/")
    assert transport.hops == []


def test_an_allowlisted_ipv6_host_and_port_passes_the_guard() -> None:
    fetcher, _ = make_fetcher(
        {"http://::1:8080/": FakeResponse(200)}, allowed_hosts=frozenset({"[::1]:8080"})
    )

    assert fetcher.fetch("http://[::1]:8080/").status_code == 200


def test_an_allowlisted_host_port_does_not_open_other_ports() -> None:
    fetcher, _ = make_fetcher({}, allowed_hosts=frozenset({"127.0.0.1:8765"}))

    with pytest.raises(PermanentError, match="blocked address"):
        fetcher.fetch("http://127.0.0.1:22/")


def test_the_allowlist_does_not_exempt_a_redirect_to_another_host() -> None:
    fetcher, _ = make_fetcher(
        {"http://127.0.0.1:8765/": redirect("http://10.0.0.1/")},
        allowed_hosts=frozenset({"127.0.0.1:8765"}),
    )

    with pytest.raises(PermanentError, match=r"blocked address.*10\.0\.0\.1"):
        fetcher.fetch("http://127.0.0.1:8765/")


def test_check_host_returns_every_public_address() -> None:
    addresses = check_host(
        "example.com", 443, resolver=resolver_for({"example.com": [PUBLIC_IP, "2606:2800::1"]}),
        allowed_hosts=frozenset(),
    )

    assert addresses == (PUBLIC_IP, "2606:2800::1")


# -- malformed URLs and name resolution --------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://example.com:99999/", "http://example.com:port/", "mailto:a@example.com", "/x"]
)
def test_malformed_urls_are_permanent(url: str) -> None:
    fetcher, transport = make_fetcher({})

    with pytest.raises(PermanentError, match="malformed URL"):
        fetcher.fetch(url)
    assert transport.hops == []


def test_an_unknown_host_name_is_permanent(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_name(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)

    with pytest.raises(PermanentError, match="could not resolve"):
        resolve("no-such-host.example", 80)


def test_a_failing_resolver_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolver_down(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", resolver_down)

    with pytest.raises(TransientError, match="could not resolve"):
        resolve("example.com", 80)


def test_resolve_returns_each_address_once(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_IP, 80)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_IP, 80)),
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:2800::1", 80, 0, 0)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answer)

    assert resolve("example.com", 80) == [PUBLIC_IP, "2606:2800::1"]


# -- deadline ----------------------------------------------------------------------------------


def test_each_hop_is_given_the_time_left_before_the_deadline() -> None:
    ticks = iter([0.0, 4.0, 4.0, 4.0])
    fetcher, transport = make_fetcher(
        {"http://example.com/": FakeResponse(200)},
        clock=lambda: next(ticks, 4.0),
        total_timeout=10.0,
    )

    fetcher.fetch("http://example.com/")

    assert transport.hops[0].time_left == 6.0


def test_a_redirect_hop_gets_only_what_is_left_of_the_one_deadline() -> None:
    now = [0.0]

    class Slow(FakeTransport):
        def send(self, hop: Hop) -> FakeResponse:
            now[0] += 3.0  # each hop takes 3 s
            return super().send(hop)

    transport = Slow({"http://example.com/a": redirect("/b"), "http://example.com/b": FakeResponse(200)})
    fetcher = Fetcher(FetchPolicy(total_timeout=10.0), transport, resolver=resolver_for({}),
                      clock=lambda: now[0])

    fetcher.fetch("http://example.com/a")

    assert [hop.time_left for hop in transport.hops] == [10.0, 7.0]


def test_no_hop_is_sent_once_the_deadline_has_passed() -> None:
    ticks = iter([0.0, 11.0])
    fetcher, transport = make_fetcher({}, clock=lambda: next(ticks, 11.0), total_timeout=10.0)

    with pytest.raises(TransientError, match=r"longer than 10\.0 s"):
        fetcher.fetch("http://example.com/")
    assert transport.hops == []


def test_a_transport_that_hits_the_deadline_is_reported_as_too_slow() -> None:
    fetcher, _ = make_fetcher({"http://example.com/": DeadlineExceeded("headers")})

    with pytest.raises(TransientError, match=r"took longer than 25\.0 s"):
        fetcher.fetch("http://example.com/")


def test_a_body_read_failing_after_the_deadline_is_too_slow_not_a_reset() -> None:
    ticks = iter([0.0, 0.0, 30.0])
    response = FakeResponse(200, fail_on_read=ConnectionResetError("shut down"))
    fetcher, _ = make_fetcher({"http://example.com/": response}, clock=lambda: next(ticks, 30.0))

    with pytest.raises(TransientError, match="took longer than"):
        fetcher.fetch("http://example.com/")


def test_a_body_ending_after_the_deadline_is_too_slow_not_complete() -> None:
    # The transport cuts a body at the deadline: the end that follows is not the body's end.
    ticks = iter([0.0, 0.0, 0.0, 30.0])
    fetcher, _ = make_fetcher(
        {"http://example.com/": FakeResponse(200, body=b"<p>short</p>")},
        clock=lambda: next(ticks, 30.0),
    )

    with pytest.raises(TransientError, match="took longer than"):
        fetcher.fetch("http://example.com/")


def test_a_resolver_that_never_answers_is_given_up_at_the_deadline() -> None:
    hang = threading.Event()

    def stuck(host: str, port: int) -> list[str]:
        hang.wait(5)
        return [PUBLIC_IP]

    fetcher = Fetcher(FetchPolicy(total_timeout=0.05), FakeTransport({}), resolver=stuck)
    try:
        with pytest.raises(TransientError, match=r"took longer than 0\.05 s"):
            fetcher.fetch("http://example.com/")
    finally:
        hang.set()


def test_resolve_within_hands_over_the_resolvers_own_error() -> None:
    def failing(host: str, port: int) -> list[str]:
        raise PermanentError("could not resolve x")

    with pytest.raises(PermanentError, match="could not resolve x"):
        resolve_within(failing, "x", 80, 5.0)


# -- compression -------------------------------------------------------------------------------

PAGE = b"<html><head><title>t</title></head><body>" + b"<p>hello world</p>" * 200 + b"</body></html>"


def test_gzip_and_deflate_are_offered() -> None:
    fetcher, transport = make_fetcher({"http://example.com/": FakeResponse(200)})

    fetcher.fetch("http://example.com/")

    assert transport.hops[0].headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # RFC 9110: zlib-wrapped
        ("deflate", lambda data: zlib.compress(data, wbits=-15)),  # what many servers send
        ("identity", lambda data: data),
    ],
    ids=["gzip", "x-gzip", "deflate-zlib", "deflate-raw", "identity"],
)
def test_an_encoded_body_is_decoded(encoding: str, compress: Callable[[bytes], bytes]) -> None:
    response = FakeResponse(200, {**HTML, "content-encoding": encoding}, compress(PAGE))
    fetcher, _ = make_fetcher({"http://example.com/": response})

    assert fetcher.fetch("http://example.com/").body == PAGE


def test_a_gzip_body_of_several_members_is_decoded_whole() -> None:
    response = FakeResponse(200, {**HTML, "content-encoding": "gzip"},
                            gzip.compress(PAGE[:100]) + gzip.compress(PAGE[100:]))
    fetcher, _ = make_fetcher({"http://example.com/": response})

    assert fetcher.fetch("http://example.com/").body == PAGE


def gzip_bomb(mib: int) -> bytes:
    """``mib`` MiB of zeros, gzip-compressed about a thousand to one, built without holding them."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    return b"".join([*(compressor.compress(zeros) for _ in range(mib)), compressor.flush()])


def test_a_gzip_bomb_stops_at_the_cap_and_is_permanent() -> None:
    bomb = gzip_bomb(200)  # 200 MiB in about 200 KiB
    response = FakeResponse(200, {**HTML, "content-encoding": "gzip"}, bomb)
    fetcher, _ = make_fetcher({"http://example.com/": response}, max_bytes=1024 * 1024)

    with pytest.raises(PermanentError, match=r"decompresses to over 1048576 bytes.*bomb"):
        fetcher.fetch("http://example.com/")
    assert response.bytes_read < len(bomb)  # stopped early, not inflated to the end


def test_the_decoder_never_holds_more_than_the_cap() -> None:
    decoder = BodyDecoder("gzip", 1000, "http://example.com/")
    bomb = gzip.compress(b"a" * 1_000_000)

    with pytest.raises(PermanentError, match="too large"):
        decoder.feed(bomb)
    assert decoder.size == 1001


def test_the_raw_size_is_capped_too_for_an_encoded_body() -> None:
    noise = random.Random(1).randbytes(5000)  # incompressible
    response = FakeResponse(200, {**HTML, "content-encoding": "gzip"}, gzip.compress(noise))
    fetcher, _ = make_fetcher({"http://example.com/": response}, max_bytes=1000)

    with pytest.raises(PermanentError, match="too large"):
        fetcher.fetch("http://example.com/")


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, gzip", "deflate, gzip"])
def test_an_encoding_not_offered_is_refused(encoding: str) -> None:
    response = FakeResponse(200, {**HTML, "content-encoding": encoding}, b"\x8b\x00")
    fetcher, _ = make_fetcher({"http://example.com/": response})

    with pytest.raises(PermanentError, match=r"content encoding .* was not offered"):
        fetcher.fetch("http://example.com/")


def test_a_corrupt_gzip_body_is_permanent() -> None:
    broken = bytearray(gzip.compress(PAGE))
    broken[20:40] = b"\xff" * 20
    response = FakeResponse(200, {**HTML, "content-encoding": "gzip"}, bytes(broken))
    fetcher, _ = make_fetcher({"http://example.com/": response})

    with pytest.raises(PermanentError, match="corrupt gzip body"):
        fetcher.fetch("http://example.com/")


def test_a_gzip_stream_that_ends_early_is_transient() -> None:
    cut = gzip.compress(PAGE)[:-12]
    response = FakeResponse(200, {**HTML, "content-encoding": "gzip"}, cut)
    fetcher, _ = make_fetcher({"http://example.com/": response})

    with pytest.raises(TransientError, match=r"gzip stream .* ends early"):
        fetcher.fetch("http://example.com/")


# -- content sniffing --------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (PNG, "PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 100, "JPEG image"),
        (b"GIF89a" + b"\x01\x00" * 50, "GIF image"),
        (gzip.compress(PAGE), "gzip data"),  # compressed without saying so
        (b"PK\x03\x04" + b"\x14" * 50, "ZIP archive"),
        (b"%PDF-1.4\n%\xe2\xe3", "PDF document"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 50, "ELF executable"),
        (random.Random(2).randbytes(4096), "binary data"),
        (b"<html>" + b"\x00" * 10 + b"</html>", "binary data"),
    ],
    ids=["png", "jpeg", "gif", "gzip", "zip", "pdf", "elf", "random", "nul-bytes"],
)
def test_a_binary_body_labelled_html_is_permanent_and_named(body: bytes, what: str) -> None:
    fetcher, _ = make_fetcher({"http://example.com/": FakeResponse(200, body=body)})

    with pytest.raises(PermanentError, match=f"labelled HTML but its body is {what}"):
        fetcher.fetch("http://example.com/")


def test_a_large_binary_body_is_refused_after_its_first_chunk_not_read_whole() -> None:
    response = FakeResponse(200, body=PNG * 200)
    fetcher, _ = make_fetcher({"http://example.com/": response})

    with pytest.raises(PermanentError, match="PNG image"):
        fetcher.fetch("http://example.com/")
    assert response.bytes_read == CHUNK_BYTES


@pytest.mark.parametrize(
    ("body", "charset"),
    [
        ("<p>caf\u00e9 \u2013 na\u00efve</p>".encode(), None),
        ("\ufeff<p>utf-16</p>".encode("utf-16"), None),  # with its BOM
        ("<p>utf-16</p>".encode("utf-16-le"), "utf-16le"),  # declared
        (b"<p>one stray \x08 control character</p>" + b"<p>in ordinary text</p>" * 10, None),
        (b"\x0c<p>form feed and tabs\t are text</p>\r\n", None),
    ],
    ids=["utf-8", "utf-16-bom", "utf-16-declared", "one-stray-control", "whitespace"],
)
def test_text_is_not_taken_for_binary(body: bytes, charset: str | None) -> None:
    content_type = "text/html" + (f"; charset={charset}" if charset else "")
    response = FakeResponse(200, {"content-type": content_type}, body)
    fetcher, _ = make_fetcher({"http://example.com/": response})

    assert fetcher.fetch("http://example.com/").body == body


def test_sniff_names_nothing_for_html() -> None:
    assert sniff(PAGE) is None


# -- short bodies ------------------------------------------------------------------------------


def test_a_body_shorter_than_its_content_length_is_transient() -> None:
    response = FakeResponse(200, {**HTML, "content-length": "5000"}, b"<p>cut</p>")
    fetcher, _ = make_fetcher({"http://example.com/": response})

    with pytest.raises(TransientError, match=r"truncated body: .* sent 10 of the 5000 bytes"):
        fetcher.fetch("http://example.com/")


def test_content_length_counts_the_encoded_bytes() -> None:
    encoded = gzip.compress(PAGE)
    response = FakeResponse(
        200, {**HTML, "content-encoding": "gzip", "content-length": str(len(encoded))}, encoded
    )
    fetcher, _ = make_fetcher({"http://example.com/": response})

    assert fetcher.fetch("http://example.com/").body == PAGE


def test_a_chunked_body_is_not_held_to_its_content_length() -> None:
    # RFC 9112 6.3: Transfer-Encoding overrides Content-Length; the chunk framing delimits it.
    response = FakeResponse(
        200, {**HTML, "transfer-encoding": "chunked", "content-length": "5000"}, b"<p>ok</p>"
    )
    fetcher, _ = make_fetcher({"http://example.com/": response})

    assert fetcher.fetch("http://example.com/").body == b"<p>ok</p>"


def test_a_broken_chunked_body_is_transient() -> None:
    response = FakeResponse(200, fail_on_read=http.client.IncompleteRead(b""))
    fetcher, _ = make_fetcher({"http://example.com/": response})

    with pytest.raises(TransientError, match="truncated body"):
        fetcher.fetch("http://example.com/")


# -- header, trailer and redirect limits -------------------------------------------------------


def test_too_many_headers_is_permanent() -> None:
    headers = {**HTML, **{f"x-h{number}": "1" for number in range(20)}}
    fetcher, _ = make_fetcher({"http://example.com/": FakeResponse(200, headers)}, max_headers=10)

    with pytest.raises(PermanentError, match=r"too many headers: .* sent 21, limit 10"):
        fetcher.fetch("http://example.com/")


def test_headers_over_the_size_limit_are_permanent() -> None:
    headers = {**HTML, "x-big": "a" * 5000}
    fetcher, _ = make_fetcher(
        {"http://example.com/": FakeResponse(200, headers)}, max_header_bytes=4096
    )

    with pytest.raises(PermanentError, match=r"headers too large: .* limit 4096"):
        fetcher.fetch("http://example.com/")


def test_a_redirect_carries_the_header_limits_too() -> None:
    fetcher, transport = make_fetcher(
        {"http://example.com/": FakeResponse(302, {"location": "/b", "x-big": "a" * 5000}, b"")},
        max_header_bytes=4096,
    )

    with pytest.raises(PermanentError, match="headers too large"):
        fetcher.fetch("http://example.com/")
    assert len(transport.hops) == 1


@pytest.mark.parametrize(
    "failure",
    [http.client.HTTPException("got more than 100 headers"), http.client.LineTooLong("header line"),
     TooManyTrailers("more than 100 trailer lines")],
    ids=["http-client-header-count", "header-line", "trailers"],
)
def test_transport_limits_are_permanent_and_say_which(failure: Exception) -> None:
    fetcher, _ = make_fetcher({"http://example.com/": FakeResponse(200, fail_on_read=failure)})

    with pytest.raises(PermanentError, match=f"malformed HTTP response.*{str(failure)[:20]}"):
        fetcher.fetch("http://example.com/")


def test_a_redirect_chain_across_too_many_hosts_is_permanent() -> None:
    routes: dict[str, Route] = {
        f"http://h{number}.example/": redirect(f"http://h{number + 1}.example/") for number in range(5)
    }
    fetcher, transport = make_fetcher(routes, max_redirect_hosts=3)

    with pytest.raises(PermanentError, match=r"too many hosts: .* more than 3 hosts \(reached h3"):
        fetcher.fetch("http://h0.example/")
    assert [hop.host for hop in transport.hops] == ["h0.example", "h1.example", "h2.example"]


def test_redirects_within_one_host_do_not_count_as_hosts() -> None:
    routes: dict[str, Route] = {f"http://example.com/{n}": redirect(f"/{n + 1}") for n in range(4)}
    routes["http://example.com/4"] = FakeResponse(200)
    fetcher, _ = make_fetcher(routes, max_redirect_hosts=1)

    assert fetcher.fetch("http://example.com/0").final_url == "http://example.com/4"


def test_a_redirect_location_too_long_is_permanent() -> None:
    fetcher, _ = make_fetcher({"http://example.com/": redirect("/" + "a" * 10_000)})

    with pytest.raises(PermanentError, match="redirect location too long"):
        fetcher.fetch("http://example.com/")


# -- IPv6 forms embedding IPv4, site-local -----------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("2002:7f00:1::", r"6to4 of 127\.0\.0\.1: loopback"),
        ("2002:a9fe:a9fe::1", r"6to4 of 169\.254\.169\.254: cloud metadata"),
        ("2002:0a00:0001::", r"6to4 of 10\.0\.0\.1: private"),
        ("64:ff9b::7f00:1", r"NAT64 of 127\.0\.0\.1: loopback"),
        ("64:ff9b::a9fe:a9fe", r"NAT64 of 169\.254\.169\.254"),
        ("64:ff9b:1::a00:1", r"NAT64 of 10\.0\.0\.1: private"),
        ("64:ff9b:1:a00:1::5db8:d70e", "local-use NAT64 outside its /96 form"),
        # Teredo: client 10.0.0.1 (stored inverted, 0xf5fffffe), public server 65.54.227.120.
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", r"Teredo of 10\.0\.0\.1: private"),
        ("fec0::1", "site-local"),
        ("fec0:1:2:3::4", "site-local"),
    ],
)
def test_the_guard_judges_ipv6_forms_by_the_address_they_carry(address: str, reason: str) -> None:
    fetcher, transport = make_fetcher({})

    with pytest.raises(PermanentError, match=f"blocked address.*{reason}"):
        fetcher.fetch(f"http://[{address}]/")
    assert transport.hops == []


@pytest.mark.parametrize(
    "address",
    ["2002:5db8:d70e::1", "64:ff9b::5db8:d70e", "64:ff9b:1::5db8:d70e",
     "2001:0:4136:e378:8000:63bf:a247:28f1"],  # Teredo client 93.184.215.14
    ids=["6to4", "nat64", "nat64-local", "teredo"],
)
def test_ipv6_forms_carrying_a_public_address_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_a_name_resolving_to_a_6to4_form_of_loopback_is_refused() -> None:
    fetcher, _ = make_fetcher({}, dns={"sneaky.example": ["2002:7f00:1::1"]})

    with pytest.raises(PermanentError, match=r"blocked address.*6to4 of 127\.0\.0\.1"):
        fetcher.fetch("http://sneaky.example/")
