"""One run of any engine as the UI, the terminal timeline and the cost estimate read it.

Each engine records a run differently (the runs table's steps, a Step Functions history, the
choreography's item ends); ``baton.ui.reader`` turns each into a ``RunView``: the run's counts,
its items' outcomes and its bars (one per step attempt, where the engine's record says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipeline.models import ItemOutcome
from pipeline.steps import STEPS as REGISTRY

STEPS = tuple(step.name for step in REGISTRY)  # the pipeline's steps, in order (pipeline.steps)
LAMBDA_STEPS = frozenset(STEPS)


@dataclass(frozen=True)
class Bar:
    """One step attempt of one URL (or, where the engine records one span for several
    attempts, that span with ``attempts`` > 1)."""

    url: str
    step: str  # scraper | transformer | moderator | store | alert | chain (a whole choreography)
    attempt: int  # 1-based; the first attempt the bar covers
    attempts: int  # how many attempts the bar covers
    started_at: datetime
    ended_at: datetime
    outcome: str  # succeeded | retried | failed | running
    error_type: str | None = None
    error: str | None = None
    input: Any = None
    output: Any = None

    @property
    def duration_ms(self) -> float:
        """The bar's length in milliseconds."""
        return (self.ended_at - self.started_at).total_seconds() * 1000


@dataclass
class RunView:
    """A run of one engine, in the one shape every page and the cost estimate read."""

    run_id: str
    engine: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    total: int
    succeeded: int = 0
    failed: int = 0
    flagged: int = 0
    items: list[ItemOutcome] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    state_transitions: int = 0  # Step Functions only
    continuations: int = 0  # orchestrator only: re-invocations past its time budget
    notes: list[str] = field(default_factory=list)  # what this engine's record cannot tell

    @property
    def duration_s(self) -> float | None:
        """Wall time from start to end (None while running)."""
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def urls(self) -> list[str]:
        """The run's URLs in the order they started."""
        first: dict[str, datetime] = {}
        for bar in self.bars:
            first[bar.url] = min(first.get(bar.url, bar.started_at), bar.started_at)
        ordered = sorted(first, key=lambda url: first[url])
        return ordered + [item.url for item in self.items if item.url not in first]

    def bars_of(self, url: str) -> list[Bar]:
        """One URL's bars in time order."""
        return sorted((bar for bar in self.bars if bar.url == url), key=lambda bar: bar.started_at)
