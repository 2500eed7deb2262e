"""Pydantic contracts between the steps, the only thing the three engines pass around.

Pages travel by reference (S3 keys), never inline: Step Functions caps payloads at 256 KiB.
Every model forbids unknown fields so a malformed event fails with the offending field's name.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Verdict(StrEnum):
    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"


class Change(StrEnum):
    NEW = "new"
    UNCHANGED = "unchanged"
    CHANGED = "changed"


class ScrapeRequest(Contract):
    """Input of the scraper: one URL of one run, with what the previous check saw."""

    run_id: str = Field(min_length=1)
    url: AnyHttpUrl
    etag: str | None = None  # from the previous check, for a conditional GET
    last_modified: str | None = None


class ScrapedPage(Contract):
    """Output of the scraper. ``raw_key`` is None when the server answered 304 Not Modified."""

    run_id: str
    url: AnyHttpUrl
    final_url: AnyHttpUrl
    status_code: int
    raw_key: str | None
    content_type: str | None = None
    charset: str | None = None  # as declared by the Content-Type header, if any
    etag: str | None = None
    last_modified: str | None = None
    size_bytes: int = 0
    fetched_at: datetime
    elapsed_ms: float

    @property
    def not_modified(self) -> bool:
        return self.raw_key is None


class TransformedPage(Contract):
    """Output of the transformer: clean text (by reference) and metadata."""

    run_id: str
    url: AnyHttpUrl
    final_url: AnyHttpUrl
    text_key: str  # S3 key of the extracted UTF-8 text
    title: str | None = None
    language: str | None = None
    word_count: int = 0
    links: list[str] = Field(default_factory=list)
    content_hash: str  # sha256 of the normalised text
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: datetime


class ModerationResult(Contract):
    """Output of the moderator: the transformed page plus its toxicity assessment."""

    page: TransformedPage
    score: float = Field(ge=0.0, le=1.0)
    labels: dict[str, float] = Field(default_factory=dict)
    verdict: Verdict
    backend: str


class StoredRecord(Contract):
    """Output of the store: what was recorded, and how it compares with the previous check."""

    run_id: str
    url: AnyHttpUrl
    content_hash: str
    text_key: str
    change: Change
    previous_hash: str | None = None
    verdict: Verdict
    score: float
    checked_at: datetime


class ItemOutcome(Contract):
    """One URL's end of a run, whichever engine ran it: stored, or failed with its reason."""

    run_id: str
    url: str  # as requested: a malformed URL is an outcome too
    succeeded: bool
    record: StoredRecord | None = None
    error_type: str | None = None  # the error's class name, e.g. "PermanentError"
    error: str | None = None
    failed_step: str | None = None
    attempts: int = 1
    duration_ms: float = 0.0
