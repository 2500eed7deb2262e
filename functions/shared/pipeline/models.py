"""Pydantic contracts between the steps, the only thing the three engines pass around.

Pages travel by reference (S3 keys), never inline: Step Functions caps payloads at 256 KiB.
Every model forbids unknown fields so a malformed event fails with the offending field's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be fetched, or None when it is a usable http(s) URL."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number, or out of range, raises only when read
    except ValueError as error:  # an unclosed "[", a bad port: urlsplit says which
        return f"malformed URL: {error}"
    if parts.scheme not in ("http", "https"):
        return "only http and https URLs can be fetched"
    if not parts.hostname:
        return "no host name"
    return None


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


# ---- per-site sessions: request headers and cookies, secrets by reference ----------------------

# Headers an entry may not set: the connection's framing and target (Host, Content-Length...),
# what the fetcher owns (encodings it can decode, validators, the identity robots.txt is read for)
# and Cookie, which is built from ``cookies``.
RESERVED_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "te", "trailer", "connection", "keep-alive",
    "upgrade", "expect", "proxy-authorization", "proxy-connection", "accept-encoding",
    "if-none-match", "if-modified-since", "user-agent", "cookie",
})
MAX_SESSION_VALUES = 20  # headers and cookies together, per entry
MAX_VALUE_CHARS = 4096
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token
_SSM_NAME = re.compile(r"^/[A-Za-z0-9_.\-/]{1,1010}$")
_SECRET_ID = re.compile(r"^[A-Za-z0-9/_+=.@:-]{1,2048}$")
# Names whose values are credentials: a literal value would sit in clear in the watchlist, the runs
# table, run requests and events, so these take references only.
_SECRET_NAME = re.compile(r"auth|token|secret|passw|session|api[-_]?key|^sid$|csrf|xsrf", re.I)


class SsmRef(Contract):
    """A value kept in SSM Parameter Store (a SecureString, typically), read at fetch time."""

    ssm: str = Field(pattern=_SSM_NAME.pattern)

    def describe(self) -> str:
        """How messages name it: the reference, never the value."""
        return f"ssm:{self.ssm}"


class SecretRef(Contract):
    """A value kept in Secrets Manager (its SecretString), by name or ARN, read at fetch time."""

    secret: str = Field(pattern=_SECRET_ID.pattern)

    def describe(self) -> str:
        """How messages name it: the reference, never the value."""
        return f"secret:{self.secret}"


# A literal is for what is not secret (Accept-Language); secrets go by reference, so the
# watchlist, the runs table, run requests, events and logs only ever hold the reference.
SessionValue = str | SsmRef | SecretRef


def value_problem(value: str) -> str | None:
    """Why ``value`` cannot go into a header (a control character would split it), or None."""
    if len(value) > MAX_VALUE_CHARS:
        return f"longer than {MAX_VALUE_CHARS} characters"
    if any((ord(char) < 32 and char != "\t") or ord(char) == 127 for char in value):
        return "contains a control character"
    return None


def cookie_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a cookie's value (RFC 6265 cookie-octets), or None."""
    if (why := value_problem(value)) is not None:
        return why
    if any(char in value for char in ' ",;\\\t'):
        return "contains a space, quote, comma, semicolon or backslash"
    return None


class FetchOptions(Contract):
    """How one URL is fetched besides the defaults: its request headers and cookies (values
    literal or by reference) and whether its site's robots.txt is honoured."""

    headers: dict[str, SessionValue] = Field(default_factory=dict)
    cookies: dict[str, SessionValue] = Field(default_factory=dict)
    robots: bool = True  # False: this entry opts out of robots.txt

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, SessionValue]) -> dict[str, SessionValue]:
        lowered = [name.lower() for name in headers]
        for name in headers:
            if not _TOKEN.match(name):
                raise ValueError(f"header name {name!r} is not an HTTP token")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name} cannot be set per entry (the fetcher owns it)")
            if lowered.count(name.lower()) > 1:
                raise ValueError(f"header {name} is given twice")
        return _literals_checked(headers, value_problem, "header")

    @field_validator("cookies")
    @classmethod
    def _cookie_names(cls, cookies: dict[str, SessionValue]) -> dict[str, SessionValue]:
        for name in cookies:
            if not _TOKEN.match(name):
                raise ValueError(f"cookie name {name!r} is not an HTTP token")
        return _literals_checked(cookies, cookie_value_problem, "cookie")

    @model_validator(mode="after")
    def _bounded(self) -> FetchOptions:
        if len(self.headers) + len(self.cookies) > MAX_SESSION_VALUES:
            raise ValueError(f"more than {MAX_SESSION_VALUES} headers and cookies")
        return self

    @property
    def is_default(self) -> bool:
        """True when these options change nothing (no need to carry them)."""
        return not self.headers and not self.cookies and self.robots


def _literals_checked(values: dict[str, SessionValue], problem: Callable[[str], str | None],
                      kind: str) -> dict[str, SessionValue]:
    for name, value in values.items():
        if not isinstance(value, str):
            continue
        if (why := problem(value)) is not None:
            raise ValueError(f"{kind} {name}: the value {why}")
        if _SECRET_NAME.search(name):
            raise ValueError(f"{kind} {name} looks like a credential: give its value by reference "
                             "(ssm:/baton/… or secret:baton/…), the watchlist keeps no secret in "
                             "clear")
    return values


class ScrapeRequest(Contract):
    """Input of the scraper: one URL of one run, with what the previous check saw."""

    run_id: str = Field(min_length=1)
    url: AnyHttpUrl
    etag: str | None = None  # from the previous check, for a conditional GET
    last_modified: str | None = None
    options: FetchOptions | None = None  # the URL's headers, cookies, robots.txt opt-out


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


# A step's output travels whole through Step Functions (256 KiB a state) and EventBridge (256 KB
# an event), whatever the page: the text goes by reference, and what travels inline is bounded.
MAX_TITLE_CHARS = 1_000
MAX_LINKS_BYTES = 32 * 1024  # the links kept inline, all together (UTF-8)
MAX_LINK_CHARS = 2_048  # a longer link is not kept


def bounded_title(title: str | None) -> str | None:
    """The title as it travels: at most MAX_TITLE_CHARS, cut with an ellipsis."""
    if title is None or len(title) <= MAX_TITLE_CHARS:
        return title
    return title[: MAX_TITLE_CHARS - 1] + "…"


def bounded_links(links: list[str]) -> list[str]:
    """The first links of a page that fit in MAX_LINKS_BYTES (each under MAX_LINK_CHARS)."""
    kept: list[str] = []
    size = 0
    for link in links:
        if len(link) > MAX_LINK_CHARS:
            continue
        size += len(link.encode()) + 4  # the JSON quotes and separator
        if size > MAX_LINKS_BYTES:
            break
        kept.append(link)
    return kept


class TransformedPage(Contract):
    """Output of the transformer: clean text (by reference) and metadata, bounded in size."""

    run_id: str
    url: AnyHttpUrl
    final_url: AnyHttpUrl
    text_key: str  # S3 key of the extracted UTF-8 text
    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    language: str | None = None
    word_count: int = 0
    # The page's first links (bounded_links); ``link_count`` says how many it had in all.
    links: list[str] = Field(default_factory=list)
    link_count: int = Field(default=0, ge=0)
    content_hash: str  # sha256 of the normalised text
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: datetime

    @model_validator(mode="after")
    def _links_are_bounded(self) -> TransformedPage:
        if bounded_links(self.links) != self.links:
            raise ValueError(f"links: over {MAX_LINKS_BYTES} bytes or a link over "
                             f"{MAX_LINK_CHARS} characters (see bounded_links)")
        return self


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
    # The validators the server sent with the page (also on a 304), for the next conditional GET:
    # the stored record does not carry them. Set by the orchestrator; None when unknown.
    etag: str | None = None
    last_modified: str | None = None


# ---- runs: what an engine is asked to do and what it reports ----------------------------------

# Step Functions runs at most 40 inline Map iterations at once; the orchestrator keeps to the
# same bound so that a run request means the same thing to both engines.
MAX_CONCURRENCY = 40


class Validators(Contract):
    """What a server said about the page it sent (ETag, Last-Modified), for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


class RunRequest(Contract):
    """Input of a run, for the orchestrator (and, minus ``continuation``, the state machine).

    URLs are plain strings: a malformed one becomes that item's failed outcome (error_type
    ``ValidationError``, as the scraper's own input model would report it), not a rejected run.
    """

    # Also the Step Functions execution name, hence its alphabet and length.
    run_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    urls: list[str] = Field(min_length=1, max_length=10_000)
    max_concurrency: int = Field(default=8, ge=1, le=MAX_CONCURRENCY)
    # How many times the orchestrator has re-invoked itself for this run (0: the first call).
    continuation: int = Field(default=0, ge=0)
    # url (as in ``urls``) -> what its previous check's server said, so the scraper sends a
    # conditional GET and a 304 ends the item after the scraper. The monitor fills it.
    previous: dict[str, Validators] = Field(default_factory=dict)
    # False: the engine does not alert on flagged pages; the caller (the monitor, which alerts
    # on transitions only) does. True keeps `baton run`'s one alert per flagged page.
    alert_flagged: bool = True
    # url (as in ``urls``) -> its watch entry's fetch options (headers and cookies, secrets by
    # reference only; robots.txt opt-out), passed to the scraper the way ``previous`` is.
    options: dict[str, FetchOptions] = Field(default_factory=dict)

    def state_machine_items(self) -> list[dict[str, Any]]:
        """The pipeline state machine's items, one per distinct URL with its previous check's
        validators (null: unconditional) and its fetch options (null: the defaults): the JSON
        array its Distributed Map reads from S3, so the execution's input stays a pointer
        whatever the number of URLs."""
        return [{"url": url,
                 "previous": (self.previous.get(url) or Validators()).model_dump(mode="json"),
                 "options": _dumped(self.options.get(url))}
                for url in dict.fromkeys(self.urls)]

    def state_machine_input(self, bucket: str, items_key: str) -> dict[str, Any]:
        """The pipeline state machine's input: the run's settings and where its items are
        (``state_machine_items`` stored at ``bucket``/``items_key``), a few hundred bytes."""
        return {"run_id": self.run_id, "max_concurrency": self.max_concurrency,
                "alert_flagged": self.alert_flagged, "total": len(dict.fromkeys(self.urls)),
                "items": {"bucket": bucket, "key": items_key}}


def _dumped(options: FetchOptions | None) -> dict[str, Any] | None:
    return None if options is None else options.model_dump(mode="json")


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # every item succeeded
    FAILED_ITEMS = "failed-items"  # the run finished, some items failed


FLAGGED = frozenset({Verdict.REVIEW, Verdict.BLOCK})


class StepRecord(Contract):
    """One step of one item as an engine ran it, retries included."""

    step: str  # "scraper", "transformer", "moderator", "store" or "alert"
    started_at: datetime
    ended_at: datetime
    attempts: int = Field(ge=1)
    error_type: str | None = None  # set when the step finally failed
    error: str | None = None


class RunSummary(Contract):
    """What a run did, whichever engine ran it: counts and every item's outcome."""

    run_id: str
    engine: str  # "orchestrator", "stepfunctions" or "choreography"
    status: RunStatus
    total: int
    succeeded: int
    failed: int
    flagged: int  # items whose stored verdict is review or block
    pending: int = 0  # items not finished yet (status running)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    items: list[ItemOutcome] = Field(default_factory=list)

    @classmethod
    def from_outcomes(
        cls,
        run_id: str,
        engine: str,
        items: list[ItemOutcome],
        *,
        total: int | None = None,
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
    ) -> RunSummary:
        """The summary of ``items``; ``total`` above ``len(items)`` means some are pending."""
        total = len(items) if total is None else total
        succeeded = sum(item.succeeded for item in items)
        failed = len(items) - succeeded
        pending = total - len(items)
        status = RunStatus.FAILED_ITEMS if failed else RunStatus.SUCCEEDED
        if pending:
            status = RunStatus.RUNNING
        return cls(
            run_id=run_id,
            engine=engine,
            status=status,
            total=total,
            succeeded=succeeded,
            failed=failed,
            flagged=sum(bool(item.record and item.record.verdict in FLAGGED) for item in items),
            pending=pending,
            started_at=started_at,
            ended_at=None if pending else ended_at,
            items=items,
        )
