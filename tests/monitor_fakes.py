"""Stand-ins for the monitor's tests: a site whose pages change, go down and turn toxic, the four
steps answering from it (conditional GET included), and the real orchestrator engine over them.

``SiteSteps`` is an ``invoke(step, payload)`` like tests.orchestrator_fakes.FakeSteps, but its
answers follow the site: a page's ETag is its version, a matching If-None-Match gets a 304, a page
that is down fails the scraper with a TransientError, a toxic page is scored 0.9 (block).
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator.engine import Budget, Engine
from pipeline.errors import TransientError
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
from tests.orchestrator_fakes import FakeAlerts, MemoryRunLog

FETCHED_AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@dataclass
class Page:
    version: int = 1
    toxic: bool = False
    down: bool = False

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
    """A PipelineRunner running the real orchestrator engine in memory over ``steps``."""

    steps: SiteSteps
    engine: str = "orchestrator"
    requests: list[RunRequest] = field(default_factory=list)
    pipeline_alerts: FakeAlerts = field(default_factory=FakeAlerts)

    def run(self, request: RunRequest, *, expired: Any) -> RunSummary:
        self.requests.append(request)
        engine = Engine(invoke=self.steps, runs=MemoryRunLog(), alerts=self.pipeline_alerts,
                        sleep=lambda _: None, rng=random.Random(0))
        return engine.run(request, budget=Budget(lambda: 900_000),
                          continue_run=lambda _: None)
