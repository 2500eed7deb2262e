"""In-memory stand-ins for the orchestrator's collaborators: the four steps, the runs log, alerts.

The fake steps answer with contract-valid payloads (so the engine's parsing is exercised) and
fail on a script: ``fail("scraper", url, TransientError("500"), TransientError("500"))`` makes
the next two scraper calls for ``url`` raise, the third succeed.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engines.runs import RunClaimed
from pipeline.keys import page_text_key, raw_key, url_id
from pipeline.models import (
    Change,
    ItemOutcome,
    ModerationResult,
    RunSummary,
    ScrapedPage,
    ScrapeRequest,
    StepRecord,
    StoredRecord,
    TransformedPage,
    Verdict,
)

FETCHED_AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@dataclass
class FakeSteps:
    """``invoke(step, payload)`` answering like the four functions, with scripted failures."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)  # url -> verdict (default allow)
    not_modified: set[str] = field(default_factory=set)  # urls answering 304
    calls: list[tuple[str, str]] = field(default_factory=list)  # (step, url) in call order
    before: Callable[[str, str], None] | None = None  # hook run at the start of every call
    _failures: dict[tuple[str, str], list[BaseException]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, step: str, url: str, *errors: BaseException) -> None:
        """The next calls of ``step`` for ``url`` raise ``errors``, one per call."""
        self._failures[(step, url)].extend(errors)

    def count(self, step: str, url: str | None = None) -> int:
        """How many times ``step`` was called (for ``url``, if given)."""
        return sum(1 for s, u in self.calls if s == step and (url is None or u == url))

    def __call__(self, step: str, payload: dict[str, Any]) -> dict[str, Any]:
        # Tests use URLs in their normalised form ("http://a.test/"), as the models echo them.
        url = payload["page"]["url"] if "page" in payload else payload["url"]
        if self.before is not None:
            self.before(step, url)
        with self._lock:
            self.calls.append((step, url))
            scripted = self._failures.get((step, url))
            error = scripted.pop(0) if scripted else None
        if error is not None:
            raise error
        return self._answer(step)(payload, url)

    def _answer(self, step: str) -> Any:
        """The method answering as ``step``'s function: one per step of the registry."""
        answer = getattr(self, step, None)
        if answer is None:
            raise AssertionError(f"FakeSteps answers no step {step!r}: add a method {step}() to "
                                 f"tests/orchestrator_fakes.py for this step of pipeline.steps")
        return answer

    def scraper(self, payload: dict[str, Any], url: str) -> dict[str, Any]:
        request = ScrapeRequest.model_validate(payload)
        modified = url not in self.not_modified
        return ScrapedPage(
            run_id=request.run_id,
            url=request.url,
            final_url=request.url,
            status_code=200 if modified else 304,
            raw_key=raw_key(request.run_id, url) if modified else None,
            content_type="text/html",
            size_bytes=100 if modified else 0,
            fetched_at=FETCHED_AT,
            elapsed_ms=1.0,
        ).model_dump(mode="json")

    def transformer(self, payload: dict[str, Any], url: str) -> dict[str, Any]:
        page = ScrapedPage.model_validate(payload)
        return TransformedPage(
            run_id=page.run_id,
            url=page.url,
            final_url=page.final_url,
            text_key=f"text/{page.run_id}/{url_id(url)}.txt",
            title="A page",
            word_count=10,
            content_hash=url_id(url) * 4,
            fetched_at=page.fetched_at,
        ).model_dump(mode="json")

    def moderator(self, payload: dict[str, Any], url: str) -> dict[str, Any]:
        page = TransformedPage.model_validate(payload)
        verdict = self.verdicts.get(url, Verdict.ALLOW)
        score = {Verdict.ALLOW: 0.1, Verdict.REVIEW: 0.6, Verdict.BLOCK: 0.9}[verdict]
        return ModerationResult(
            page=page, score=score, labels={"toxicity": score}, verdict=verdict, backend="fake"
        ).model_dump(mode="json")

    def store(self, payload: dict[str, Any], url: str) -> dict[str, Any]:
        result = ModerationResult.model_validate(payload)
        return StoredRecord(
            run_id=result.page.run_id,
            url=result.page.url,
            content_hash=result.page.content_hash,
            text_key=page_text_key(url, result.page.content_hash),
            change=Change.NEW,
            verdict=result.verdict,
            score=result.score,
            checked_at=result.page.fetched_at,
        ).model_dump(mode="json")


@dataclass
class MemoryRunLog:
    """The RunsTable's semantics in dicts."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # each run's META
    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Writes by kind, for the tests of what an item costs.
    start_writes: int = 0
    step_writes: int = 0
    item_writes: int = 0
    progress_adds: list[tuple[int, int]] = field(default_factory=list)  # (done, failed) each

    def open_run(
        self, run_id: str, *, engine: str, total: int, started_at: datetime, continuation: int,
        lease_until: datetime | None = None,
    ) -> datetime:
        with self._lock:
            meta = self.runs.setdefault(run_id, {"started_at": started_at})
            if lease_until is not None:
                held = "claimed" in meta and (meta["claimed"] > continuation or (
                    meta["claimed"] == continuation and meta["lease_until"] >= started_at))
                released = meta.get("released", -1) >= continuation
                if held or released or meta.get("ended"):
                    raise RunClaimed(f"run {run_id}: continuation {continuation} is held")
                meta.update(claimed=continuation, lease_until=lease_until)
            meta.update(engine=engine, total=total, status="running", continuations=continuation)
            return meta["started_at"]

    def meta(self, run_id: str) -> dict[str, Any] | None:
        """The run's record as RunsTable.meta reads it (``ended_at`` once it ended)."""
        with self._lock:
            meta = self.runs.get(run_id)
            if meta is None:
                return None
            return {**meta, **({"ended_at": True} if meta.get("ended") else {})}

    def renew_lease(self, run_id: str, continuation: int, until: datetime) -> bool:
        with self._lock:
            meta = self.runs[run_id]
            if meta.get("claimed") != continuation or meta.get("ended"):
                return False
            meta["lease_until"] = until
            return True

    def release(self, run_id: str, continuation: int) -> None:
        with self._lock:
            meta = self.runs[run_id]
            if meta.get("claimed") == continuation:
                meta["released"] = continuation

    def finished_items(self, run_id: str) -> dict[str, ItemOutcome]:
        with self._lock:
            return {
                item_id: item["outcome"]
                for (run, item_id), item in self.items.items()
                if run == run_id and "outcome" in item
            }

    def item_started(self, run_id: str, url: str, at: datetime,
                     first_step: StepRecord | None = None) -> bool:
        with self._lock:
            self.start_writes += 1
            item = self.items.setdefault((run_id, url_id(url)), {})
            if "outcome" in item:
                return False
            # keeps an ``alerted`` mark
            item.update(url=url, status="running", steps=[] if first_step is None else [first_step])
            return True

    def claim_alert(self, run_id: str, url: str) -> bool:
        with self._lock:
            item = self.items.setdefault((run_id, url_id(url)), {"url": url, "steps": []})
            if item.get("alerted"):
                return False
            item["alerted"] = True
            return True

    def release_alert(self, run_id: str, url: str) -> None:
        with self._lock:
            self.items[(run_id, url_id(url))].pop("alerted", None)

    def step_finished(self, run_id: str, url: str, step: StepRecord) -> None:
        with self._lock:
            self.items[(run_id, url_id(url))]["steps"].append(step)
            self.step_writes += 1

    def item_finished(self, outcome: ItemOutcome, at: datetime,
                      last_step: StepRecord | None = None,
                      started_at: datetime | None = None) -> bool:
        with self._lock:
            item = self.items.setdefault(
                (outcome.run_id, url_id(outcome.url)), {"url": outcome.url, "steps": []}
            )
            if started_at is not None and "outcome" not in item:
                item["steps"] = []  # its first write: an earlier attempt's steps are not its own
            if last_step is not None:
                item["steps"].append(last_step)
            if "outcome" in item:
                return False
            item.update(status="succeeded" if outcome.succeeded else "failed", outcome=outcome)
            self.item_writes += 1
            return True

    def add_progress(self, run_id: str, done: int, failed: int) -> None:
        with self._lock:
            meta = self.runs[run_id]
            meta["progress_done"] = meta.get("progress_done", 0) + done
            meta["progress_failed"] = meta.get("progress_failed", 0) + failed
            self.progress_adds.append((done, failed))

    def save_summary(self, summary: RunSummary) -> None:
        with self._lock:
            self.runs[summary.run_id].update(
                status=summary.status.value, succeeded=summary.succeeded, failed=summary.failed,
                flagged=summary.flagged, pending=summary.pending,
                ended=summary.ended_at is not None,
                progress_done=summary.succeeded + summary.failed, progress_failed=summary.failed,
            )

    def steps(self, run_id: str, url: str) -> list[StepRecord]:
        """The step records of one item."""
        return list(self.items[(run_id, url_id(url))]["steps"])


@dataclass
class FakeAlerts:
    """Collects the flagged records; can be told to fail."""

    sent: list[StoredRecord] = field(default_factory=list)
    error: BaseException | None = None
    before: Callable[[], None] | None = None  # hook run at the start of every alert

    def flagged(self, record: StoredRecord) -> None:
        if self.before is not None:
            self.before()
        if self.error is not None:
            raise self.error
        self.sent.append(record)
