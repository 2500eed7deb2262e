"""The orchestrator's hooks for the monitor: conditional fetches, no per-page alerts."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from orchestrator.engine import Budget, Engine
from pipeline.models import ItemOutcome, RunRequest, RunSummary, Validators
from tests.monitor_fakes import Page, SiteSteps
from tests.orchestrator_fakes import FakeAlerts, MemoryRunLog

A, B = "http://site.test/pages/a", "http://site.test/pages/b"
REQUEST = RunRequest(run_id="monitor-1", urls=[A, B], previous={A: Validators(etag='"v1"')},
                     alert_flagged=False)
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def outcomes() -> list[ItemOutcome]:
    return [ItemOutcome(run_id="monitor-1", url=url, succeeded=True) for url in (A, B)]


# ---- the orchestrator's hooks for the monitor --------------------------------------------------

def engine_over(steps: SiteSteps, alerts: FakeAlerts) -> Engine:
    return Engine(invoke=steps, runs=MemoryRunLog(), alerts=alerts, sleep=lambda _: None,
                  rng=random.Random(0))


def run(engine: Engine, request: RunRequest) -> RunSummary:
    return engine.run(request, budget=Budget(lambda: 900_000), continue_run=lambda _: None)


def test_the_request_validators_make_the_scraper_fetch_conditionally() -> None:
    steps = SiteSteps({A: Page(), B: Page()})

    summary = run(engine_over(steps, FakeAlerts()), REQUEST)

    sent = {str(request.url): request.etag for request in steps.scrape_requests}
    assert sent == {A: '"v1"', B: None}
    by_url = {item.url: item for item in summary.items}
    assert by_url[A].record is None and by_url[A].succeeded  # 304: ended after the scraper
    assert by_url[B].record is not None
    assert steps.count("moderator") == 1


def test_every_succeeded_item_reports_its_validators() -> None:
    summary = run(engine_over(SiteSteps({A: Page(), B: Page(version=3)}), FakeAlerts()), REQUEST)

    assert {item.url: item.etag for item in summary.items} == {A: '"v1"', B: '"v3"'}


def test_without_request_validators_the_previous_check_hook_still_applies() -> None:
    steps = SiteSteps({A: Page()})
    engine = engine_over(steps, FakeAlerts())
    engine.previous_check = lambda url: ('"v1"', None)

    run(engine, RunRequest(run_id="r", urls=[A]))

    assert steps.scrape_requests[0].etag == '"v1"'


@pytest.mark.parametrize(("alert_flagged", "alerts"), [(True, 1), (False, 0)])
def test_flagged_pages_are_alerted_by_the_engine_unless_the_request_says_not_to(
    alert_flagged: bool, alerts: int
) -> None:
    sent = FakeAlerts()

    summary = run(engine_over(SiteSteps({A: Page(toxic=True)}), sent),
                  RunRequest(run_id="r", urls=[A], alert_flagged=alert_flagged))

    assert len(sent.sent) == alerts and summary.flagged == 1
