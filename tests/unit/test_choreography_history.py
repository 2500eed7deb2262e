"""The choreography's history as `baton history` and `baton ui` read it: the adapters' log lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from baton.executions import _chain_step, chain_rows
from engines.events import CHAIN_STEP_LOG, DEAD_LETTER, PAGE_REQUESTED, PAGE_SCRAPED, ChainStep

AT = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def step(emitted: str = PAGE_SCRAPED, **update: object) -> ChainStep:
    fields = {"run_id": "run-1", "url": "http://a.test/", "step": "scraper",
              "consumed": PAGE_REQUESTED, "published_at": AT,
              "delivered_at": AT + timedelta(milliseconds=40),
              "ended_at": AT + timedelta(milliseconds=900), "attempts": 1, "emitted": emitted}
    return ChainStep.model_validate(fields | update)


def powertools_line(message: str, **extra: object) -> str:
    """A log line as Powertools' Logger writes it (JSON, extra keys at the top level)."""
    return json.dumps({"level": "INFO", "location": "handled:1", "message": message,
                       "timestamp": "2026-11-30 10:00:00,900+0000", "service": "scraper",
                       "correlation_id": "run-1", **extra})


def test_a_logged_step_is_read_back_and_other_lines_are_skipped():
    logged = step()
    line = powertools_line(CHAIN_STEP_LOG, chain_step=logged.model_dump(mode="json"))

    assert _chain_step(line, "run-1") == logged
    assert _chain_step(line, "run-2") is None  # a filter match on another run's id
    assert _chain_step(powertools_line("retrying step", step="scraper"), "run-1") is None
    assert _chain_step("START RequestId: 1 Version: $LATEST", "run-1") is None


def test_each_step_is_its_event_delivered_then_the_event_it_published():
    rows = chain_rows([step(), step(DEAD_LETTER, attempts=4, error_type="TransientError",
                                    error="HTTP 503")])

    assert [(row.at, row.step, row.event, row.detail) for row in rows] == [
        ("2026-11-30T10:00:00.040+00:00", "scraper", f"{PAGE_REQUESTED} delivered",
         "published 2026-11-30T10:00:00.000+00:00"),
        ("2026-11-30T10:00:00.900+00:00", "scraper", f"{PAGE_SCRAPED} published", "attempts 1"),
        ("2026-11-30T10:00:00.040+00:00", "scraper", f"{PAGE_REQUESTED} delivered",
         "published 2026-11-30T10:00:00.000+00:00"),
        ("2026-11-30T10:00:00.900+00:00", "scraper", "sent to the dead-letter queue",
         "attempts 4; TransientError: HTTP 503")]
