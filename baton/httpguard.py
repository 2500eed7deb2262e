"""The request guard of baton's local servers: refuse browser-origin and DNS-rebinding requests.

A page on another site can make the browser send requests to 127.0.0.1 (with its own Origin), and
a rebound DNS name can reach it with its own Host header. Both are refused, so only the user's own
tools (and origins they list) can use the local cloud, the sample site and the UI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def allowed_origins() -> frozenset[str]:
    """Origins allowed to call baton's local servers: BATON_ALLOWED_ORIGINS (comma-separated), empty by default."""  # noqa: E501
    raw = os.environ.get("BATON_ALLOWED_ORIGINS", "")
    return frozenset(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())


def refusal(headers: Mapping[str, str], port: int, origins: frozenset[str] | None = None) -> str | None:
    """Why a request with these headers must be refused (a short reason), or None to serve it.

    Refused: a Host that is not 127.0.0.1, localhost or [::1] with ``port`` (or without a port);
    an Origin header that is present and not in ``origins`` (default ``allowed_origins()``).
    Header names are matched case-insensitively. A preflight (OPTIONS) is judged the same way.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    host = lowered.get("host", "").strip().lower()
    if not _is_local_host(host, port):
        return f"Host {host!r} is not this local server (127.0.0.1, localhost or [::1] on port {port})"
    origin = lowered.get("origin")
    if origin is not None:
        allowed = allowed_origins() if origins is None else origins
        if origin.strip().rstrip("/") not in allowed:
            return f"Origin {origin!r} is not allowed (BATON_ALLOWED_ORIGINS lists allowed origins)"
    return None


def _is_local_host(host: str, port: int) -> bool:
    if host in _LOCAL_HOSTS:
        return True
    name, separator, given_port = host.rpartition(":")
    return bool(separator) and name in _LOCAL_HOSTS and given_port == str(port)
