"""Which requests baton's local servers refuse: those a web page or a DNS-rebinding attack can send.

A page open in the user's browser can send requests to 127.0.0.1 (with its own ``Origin``), and a
rebinding attack makes a foreign name resolve to 127.0.0.1 (with that name as ``Host``). baton's
local servers run code as the user, so they answer neither. SDKs, the CLI and function code send
no ``Origin`` and name the loopback address they connect to, so they are unaffected.

Standard library only: the local cloud's launcher loads this file on MiniStack's interpreter.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


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
    host = lowered.get("host")
    if host is None:
        return "refused: the request has no Host header"
    accepted = {*LOOPBACK_HOSTS, *(f"{name}:{port}" for name in LOOPBACK_HOSTS)}
    if host.strip().lower() not in accepted:
        return f"refused: Host {host!r} is not this machine's loopback address with port {port}"
    origin = lowered.get("origin")
    if origin is not None and origin.rstrip("/") not in (allowed_origins() if origins is None else origins):
        return (f"refused: Origin {origin!r} may not call this server "
                "(allow it with BATON_ALLOWED_ORIGINS)")
    return None
