"""Stand-ins for the monitor's tests: a site whose pages change, go down, turn toxic or break the
parser, the four steps answering from it (conditional GET included), the real orchestrator engine
over them (as a runner whose runs can outlive any firing), and the state table in memory.

``SiteSteps`` is an ``invoke(step, payload)`` like tests.orchestrator_fakes.FakeSteps, but its
answers follow the site: a page's ETag is its version, a matching If-None-Match gets a 304, a page
that is down fails the scraper with a TransientError, a toxic page is scored 0.9 (block).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator.engine import Budget, Engine
from pipeline.errors import PermanentError, TransientError
from pipeline.keys import page_text_key, raw_key, url_id
from pipeline.models import (
    Change,
    ModerationResult,
    RunRequest,
    RunSummary,
    ScrapedPage,
    ScrapeRequest,
    StoredRecord,
    TransformedPage,
    Verdict,
)
from pipeline.monitor_models import Check, MonitorRun, UrlState
from pipeline.monitor_state import PendingRun
from tests.orchestrator_fakes import FakeAlerts, MemoryRunLog

FETCHED_AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@dataclass
class Page:
    version: int = 1
    toxic: bool = False
    down: bool = False
    unparsable: bool = False  # fetched fine, but the transformer fails on it

    @property
    def etag(self) -> str:
        return f'"v{self.version}{"-toxic" if self.toxic else ""}"'


@dataclass
class SiteSteps:
    """The four steps over a fake site; ``calls`` counts (step, url)."""

    pages: dict[str, Page]
    score_toxic: float = 0.9
    score_clean: float = 0.1
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    scrape_requests: list[ScrapeRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, step: str) -> int:
        return sum(n for (name, _), n in self.calls.items() if name == step)

    def __call__(self, step: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = payload["page"]["url"] if "page" in payload else payload["url"]
        with self._lock:
            self.calls[(step, url)] += 1
        answer: dict[str, Any] = self._answer(step)(payload)
        return answer

    def _answer(self, step: str) -> Any:
        """The method answering as ``step``'s function: one per step of the registry."""
        answer = getattr(self, step, None)
        if answer is None:
            raise AssertionError(f"SiteSteps answers no step {step!r}: add a method {step}() to "
                                 f"tests/monitor_fakes.py for this step of pipeline.steps")
        return answer

    def scraper(self, payload: dict[str, Any]) -> dict[str, Any]:
        request = ScrapeRequest.model_validate(payload)
        self.scrape_requests.append(request)
        page = self.pages[str(request.url)]
        if page.down:
            raise TransientError(f"HTTP 503 from {request.url}")
        modified = request.etag != page.etag
        return ScrapedPage(
            run_id=request.run_id, url=request.url, final_url=request.url,
            status_code=200 if modified else 304,
            raw_key=raw_key(request.run_id, str(request.url)) if modified else None,
            content_type="text/html", etag=page.etag, size_bytes=100 if modified else 0,
            fetched_at=FETCHED_AT, elapsed_ms=1.0,
        ).model_dump(mode="json")

    def transformer(self, payload: dict[str, Any]) -> dict[str, Any]:
        scraped = ScrapedPage.model_validate(payload)
        page = self.pages[str(scraped.url)]
        if page.unparsable:
            raise PermanentError(f"no text could be extracted from {scraped.url}")
        content = f"{scraped.url} v{page.version} toxic={page.toxic}"
        return TransformedPage(
            run_id=scraped.run_id, url=scraped.url, final_url=scraped.final_url,
            text_key=f"text/{scraped.run_id}/{url_id(str(scraped.url))}.txt",
            content_hash=hashlib.sha256(content.encode()).hexdigest(),
            etag=scraped.etag, fetched_at=scraped.fetched_at,
        ).model_dump(mode="json")

    def moderator(self, payload: dict[str, Any]) -> dict[str, Any]:
        text = TransformedPage.model_validate(payload)
        toxic = self.pages[str(text.url)].toxic
        score = self.score_toxic if toxic else self.score_clean
        verdict = Verdict.BLOCK if score >= 0.8 else Verdict.REVIEW if score >= 0.5 else Verdict.ALLOW
        return ModerationResult(page=text, score=score, verdict=verdict,
                                backend="fake").model_dump(mode="json")

    def store(self, payload: dict[str, Any]) -> dict[str, Any]:
        result = ModerationResult.model_validate(payload)
        page = result.page
        return StoredRecord(
            run_id=page.run_id, url=page.url, content_hash=page.content_hash,
            text_key=page_text_key(str(page.url), page.content_hash), change=Change.NEW,
            verdict=result.verdict, score=result.score, checked_at=page.fetched_at,
        ).model_dump(mode="json")


@dataclass
class EngineRunner:
    """A monitor PipelineRunner running the real orchestrator engine in memory over ``steps``.

    A run is computed when it starts (from the site as it is then); ``wait`` reports it ended
    unless ``hold`` is set: then every run outlives every firing's budget (``expired``) until
    it is cleared.
    """

    steps: SiteSteps
    engine: str = "orchestrator"
    requests: list[RunRequest] = field(default_factory=list)
    pipeline_alerts: FakeAlerts = field(default_factory=FakeAlerts)
    hold: bool = False
    summaries: dict[str, RunSummary] = field(default_factory=dict)
    waits: Counter[str] = field(default_factory=Counter)

    def start(self, request: RunRequest) -> str:
        self.requests.append(request)
        engine = Engine(invoke=self.steps, runs=MemoryRunLog(), alerts=self.pipeline_alerts,
                        sleep=lambda _: None, rng=random.Random(0))
        self.summaries[request.run_id] = engine.run(request, budget=Budget(lambda: 900_000),
                                                    continue_run=lambda _: None)
        return f"handle-{request.run_id}"

    def wait(self, handle: str, request: RunRequest, *, started_at: datetime,
             expired: Any) -> RunSummary | None:
        assert handle == f"handle-{request.run_id}", "followed by another run's handle"
        self.waits[request.run_id] += 1
        give_up = time.monotonic() + 5
        while self.hold:  # followed until the firing's budget ends, as engines.client.follow
            if expired():
                return None
            if time.monotonic() > give_up:
                raise AssertionError("the firing's budget never ended while the run was held")
            time.sleep(0.001)
        return self.summaries[request.run_id]


@dataclass
class MemoryStateTable:
    """pipeline.monitor_state.MonitorTable's behaviour in dicts (its lease conditions included)."""

    saved: dict[str, UrlState] = field(default_factory=dict)
    runs: dict[str, MonitorRun] = field(default_factory=dict)
    checks: dict[str, list[Check]] = field(default_factory=dict)
    lease: PendingRun | None = None
    deliveries: set[str] = field(default_factory=set)
    state_writes: int = 0  # write requests, as DynamoDB would count them (25 states to a batch)

    def states(self, urls: Sequence[str]) -> dict[str, UrlState]:
        return {url: self.saved[url] for url in urls if url in self.saved}

    def save_states(self, states: Sequence[UrlState]) -> None:
        self.state_writes += -(-len(states) // 25)
        self.saved.update({state.url: state for state in states})

    def save_run(self, run: MonitorRun) -> None:
        self.runs[run.run_id] = run

    def save_checks(self, run: MonitorRun, checks: Sequence[Check]) -> None:
        self.checks[run.run_id] = list(checks)

    def hold_lease(self, owner: str) -> None:
        """A lease as an older monitor took it: its owner only, for a long time."""
        self.lease = PendingRun(owner=owner, lease_until=float("inf"))

    def acquire_lease(self, owner: str, *, now: float, seconds: float,
                      run: MonitorRun | None = None, followed_until: float = 0.0) -> str | None:
        if self.lease is not None and self.lease.lease_until >= now:
            return self.lease.owner
        self.lease = PendingRun(run=run, owner=owner, lease_until=now + seconds,
                                follower=owner if run else None, followed_until=followed_until)
        return None

    def pending_run(self) -> PendingRun | None:
        return self.lease

    def set_handle(self, owner: str, handle: str) -> None:
        if self.lease is not None and self.lease.owner == owner:
            self.lease = self.lease.model_copy(update={"handle": handle})

    def take_follow(self, owner: str, follower: str, *, until: float, now: float) -> bool:
        lease = self.lease
        if lease is None or lease.owner != owner or (
                lease.followed_until >= now and lease.follower != follower):
            return False
        self.lease = lease.model_copy(update={"follower": follower, "followed_until": until})
        return True

    def drop_follow(self, owner: str, follower: str) -> None:
        if self.lease is not None and self.lease.owner == owner \
                and self.lease.follower == follower:
            self.lease = self.lease.model_copy(update={"followed_until": 0.0})

    def release_lease(self, owner: str) -> None:
        if self.lease is not None and self.lease.owner == owner:
            self.lease = None

    def first_delivery(self, event_id: str, *, now: float) -> bool:
        if event_id in self.deliveries:
            return False
        self.deliveries.add(event_id)
        return True
