"""The monitor's models: watchlist entries, what it keeps per URL, each check, alerts and runs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from pipeline.models import Contract, FetchOptions, Verdict, url_problem

LABEL_MAX = 200




def display_name(url: str, label: str | None) -> str:
    """A page's label, else its host and path (shorter than the URL, and enough to tell)."""
    if label:
        return label
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")

# The engines the monitor can drive: choreography reports no end the monitor could wait for
# in one firing's budget (pipeline.steps names all three).
MonitorEngine = Literal["orchestrator", "stepfunctions"]


class Thresholds(Contract):
    """Toxicity score thresholds: review at or above ``review``, block at or above ``block``."""

    review: float = Field(ge=0.0, le=1.0)
    block: float = Field(ge=0.0, le=1.0)


class WatchEntry(Contract):
    """One watched URL: its label and, optionally, thresholds that override the moderator's."""

    url: str = Field(min_length=1)
    label: str | None = Field(default=None, max_length=LABEL_MAX)
    review_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    block_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    added_at: datetime
    # Headers and cookies (secret values by reference only) and the robots.txt opt-out; None
    # when the entry is fetched with the defaults.
    options: FetchOptions | None = None

    @field_validator("url")
    @classmethod
    def _fetchable(cls, url: str) -> str:
        if (why := url_problem(url)) is not None:
            raise ValueError(why)
        return url

    @field_validator("options")
    @classmethod
    def _only_if_not_default(cls, options: FetchOptions | None) -> FetchOptions | None:
        return None if options is None or options.is_default else options

    @model_validator(mode="after")
    def _ordered(self) -> WatchEntry:
        if (self.review_threshold is not None and self.block_threshold is not None
                and self.review_threshold > self.block_threshold):
            raise ValueError(f"review threshold {self.review_threshold} must not exceed "
                             f"block threshold {self.block_threshold}")
        return self

    @property
    def name(self) -> str:
        """How alerts and tables name the page: its label, else host and path."""
        return display_name(self.url, self.label)


class Availability(StrEnum):
    UP = "up"
    DOWN = "down"
    FAILING = "failing"  # fetched, but a later step failed (parse, moderation, store)


class UrlState(Contract):
    """What the monitor knows about a URL after a check: compared with at the next one."""

    url: str
    status: Availability
    # The content last fetched (kept while the page is down, to compare when it comes back).
    content_hash: str | None = None
    score: float | None = None
    moderator_verdict: Verdict | None = None
    verdict: Verdict | None = None  # after the entry's own thresholds, if it has any
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None  # why it is down or failing
    checked_at: datetime
    run_id: str


class CheckState(StrEnum):
    """A URL's classification in one check, against its previous check."""

    NEW = "new"  # first check: no alert
    UNCHANGED = "unchanged"
    CHANGED = "changed"  # the content hash differs
    FLAGGED = "flagged"  # review/block (an alert only when it was not flagged before)
    DOWN = "down"  # the fetch failed (an alert only when it was up before)
    RECOVERED = "recovered"  # up again after being down or failing
    FAILING = "failing"  # fetched, but a later step failed (an alert only when it did not before)
    ERROR = "error"  # the run told nothing about the page: nothing known, state kept


class Check(Contract):
    """One URL in one monitor run: its classification and whether that is an alerted transition."""

    url: str
    label: str | None = None
    state: CheckState
    transition: bool  # True: the state changed in a way worth one alert
    previous: UrlState | None = None
    current: UrlState | None = None  # None: nothing learned (error); the previous state stays
    not_modified: bool = False  # answered 304: nothing was transformed or moderated
    error: str | None = None


class Alert(Contract):
    """The structured body of one transition's SNS message."""

    url: str
    label: str | None = None
    transition: CheckState
    previous: UrlState | None = None
    current: UrlState
    run_id: str
    checked_at: datetime


class AlertSent(Contract):
    """A transition as the run record lists it (what `baton monitor --follow` shows)."""

    url: str
    label: str | None = None
    transition: CheckState
    subject: str
    published: bool
    error: str | None = None


class MonitorRunStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # the pipeline run failed or did not finish: nothing was compared
    SKIPPED = "skipped"  # another monitor run was still in progress (see ``adopted``)


class MonitorRun(Contract):
    """One firing of the monitor: its pipeline run, counts by classification, alerts raised."""

    run_id: str  # also the pipeline run's id (runs table, Step Functions execution name)
    engine: str
    trigger: Literal["schedule", "direct"]
    status: MonitorRunStatus
    started_at: datetime
    ended_at: datetime | None = None
    total: int = 0
    counts: dict[CheckState, int] = Field(default_factory=dict)
    alerts: list[AlertSent] = Field(default_factory=list)
    error: str | None = None
    # The earlier run this firing followed instead of starting one over it (and settled, when it
    # saw that run end): a firing never overlaps the previous one's run.
    adopted: str | None = None


class Invocation(Contract):
    """A direct invocation (`baton monitor --once`): optionally another engine than the default."""

    engine: MonitorEngine | None = None
