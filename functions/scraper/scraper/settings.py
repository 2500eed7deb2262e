"""The scraper's environment, validated once: a bad variable fails fast with its name."""

from __future__ import annotations

import functools
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AliasGenerator,
    Field,
    PositiveFloat,
    PositiveInt,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from scraper.fetch import FetchPolicy


class ScraperSettings(BaseSettings):
    """Limits and destinations of the scraper; every variable but BUCKET_NAME is SCRAPER_*."""

    # Aliases are the variable names, so a validation error names the variable to fix.
    model_config = SettingsConfigDict(
        alias_generator=AliasGenerator(validation_alias=lambda name: f"SCRAPER_{name.upper()}"),
        frozen=True,
    )

    bucket_name: str = Field(min_length=3, validation_alias="BUCKET_NAME")
    connect_timeout: PositiveFloat = 5.0
    read_timeout: PositiveFloat = 10.0
    # One absolute deadline for the whole fetch (resolve, connect, headers, body, redirects):
    # the transport ends the attempt by then, whatever the server does.
    total_timeout: PositiveFloat = 25.0
    max_bytes: PositiveInt = 5 * 1024 * 1024  # on the wire and once decompressed
    max_redirects: Annotated[int, Field(ge=0, le=20)] = 5
    max_redirect_hosts: PositiveInt = FetchPolicy.max_redirect_hosts
    max_headers: PositiveInt = FetchPolicy.max_headers
    max_header_bytes: PositiveInt = FetchPolicy.max_header_bytes
    allowed_content_types: Annotated[tuple[str, ...], NoDecode] = (
        "text/html",
        "application/xhtml+xml",
    )
    # Hosts exempt from the SSRF guard, e.g. "127.0.0.1:8765,localhost,[::1]:8080". An entry
    # with a port opens that port only; one without opens the default ports 80 and 443 only.
    allowed_hosts: Annotated[frozenset[str], NoDecode] = frozenset()
    user_agent: str = Field(default=FetchPolicy.user_agent, min_length=1)
    # Politeness: at most host_concurrency fetches of one host:port in flight across every
    # invocation, counted in the host slots table (unset: no shared count, e.g. in unit tests).
    # A fetch waits up to slot_wait seconds for a slot (slot_max_wait), inside its attempt.
    slots_table: str | None = Field(default=None, min_length=1)
    host_concurrency: PositiveInt = 2
    slot_wait: PositiveFloat = 10.0
    robots_ttl: PositiveFloat = 3600.0  # how long a warm scraper keeps a site's robots.txt
    # Header and cookie values by reference: only under these prefixes (the IAM policy's), and
    # kept secret_ttl seconds per warm scraper.
    parameter_prefix: str = Field(default="/baton/", pattern=r"^/")
    secret_prefix: str = Field(default="baton/", min_length=1)
    secret_ttl: PositiveFloat = 300.0

    @field_validator("allowed_content_types", "allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _check_hosts(cls, value: frozenset[str]) -> frozenset[str]:
        for entry in value:
            try:
                parts = urlsplit(f"//{entry}")
                port = parts.port
            except ValueError as error:
                raise ValueError(f"{entry!r} is not host or host:port ({error})") from error
            if not parts.hostname or parts.netloc != entry or "@" in entry:
                raise ValueError(f"{entry!r} is not host or host:port")
            if port == 0:
                raise ValueError(f"{entry!r}: port 0 is not a port")
        return value

    def slot_max_wait(self) -> float:
        """How long an attempt may wait for a host slot: slot_wait, but at most half the attempt
        (the fetch keeps the other half), as the wait is part of the attempt's deadline."""
        return min(self.slot_wait, self.total_timeout / 2)

    def fetch_policy(self) -> FetchPolicy:
        """The fetcher's limits, as configured."""
        return FetchPolicy(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            total_timeout=self.total_timeout,
            max_bytes=self.max_bytes,
            max_redirects=self.max_redirects,
            max_redirect_hosts=self.max_redirect_hosts,
            max_headers=self.max_headers,
            max_header_bytes=self.max_header_bytes,
            allowed_content_types=frozenset(self.allowed_content_types),
            allowed_hosts=self.allowed_hosts,
            user_agent=self.user_agent,
        )


@functools.cache
def get_settings() -> ScraperSettings:
    """The scraper's settings, read from the environment on first use."""
    return ScraperSettings()  # type: ignore[call-arg]  # fields come from the environment
