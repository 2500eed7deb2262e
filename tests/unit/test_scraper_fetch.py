"""The scraper's fetch logic over a fake transport and resolver: no socket is ever opened."""

from __future__ import annotations

import http.client
import io
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pytest

from pipeline.errors import PermanentError, TransientError
from scraper.fetch import Fetcher, FetchPolicy, Hop, check_host, resolve

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
