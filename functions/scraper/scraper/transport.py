"""The real transport: one HTTP(S) request with http.client, connected to checked addresses only."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from scraper.fetch import Hop


@dataclass
class HttpResponse:
    """An http.client response seen through the fetcher's Response protocol."""

    status: int
    headers: Mapping[str, str]
    _response: http.client.HTTPResponse
    _connection: http.client.HTTPConnection

    def read(self, amount: int) -> bytes:
        """Up to ``amount`` bytes of the body; b"" at its end."""
        return self._response.read(amount)

    def close(self) -> None:
        """Close the connection, dropping any body left unread."""
        self._connection.close()


class HttpTransport:
    """Sends a Hop over a fresh connection: no pooling, no proxy, no automatic redirects."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context or ssl.create_default_context()

    def send(self, hop: Hop) -> HttpResponse:
        """Connect to one of ``hop.addresses`` and send the GET; the caller closes the response."""
        connection: http.client.HTTPConnection
        if hop.scheme == "https":
            connection = http.client.HTTPSConnection(
                hop.host, hop.port, timeout=hop.connect_timeout, context=self.ssl_context
            )
        else:
            connection = http.client.HTTPConnection(hop.host, hop.port, timeout=hop.connect_timeout)
        # http.client would resolve hop.host again; connecting to the addresses the guard
        # checked closes the DNS-rebinding window, while Host and TLS SNI still use hop.host.
        connection._create_connection = _connector(hop)  # type: ignore[attr-defined]
        try:
            connection.request("GET", hop.target, headers=dict(hop.headers))
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        headers = {name.lower(): value for name, value in response.getheaders()}
        return HttpResponse(response.status, headers, response, connection)


def _connector(hop: Hop) -> Callable[..., socket.socket]:
    def connect(
        address: tuple[str, int], timeout: float | None = None, source_address: object = None
    ) -> socket.socket:
        last_error: OSError | None = None
        for ip in hop.addresses:
            try:
                sock = socket.create_connection((ip, hop.port), timeout=hop.connect_timeout)
            except OSError as error:
                last_error = error
                continue
            sock.settimeout(hop.read_timeout)
            return sock
        raise last_error or ConnectionError(f"no address to connect to for {hop.host}")

    return connect
