"""The monitor's use case in memory: runs over a changing site, alerts only on transitions."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engines.client import EngineFailed
from monitor.logic import Monitor, new_run_id
from pipeline.models import RunRequest, RunSummary
from pipeline.monitor_models import (
    Alert,
    Check,
    CheckState,
    MonitorRun,
    MonitorRunStatus,
    Thresholds,
    UrlState,
    WatchEntry,
)
from tests.monitor_fakes import EngineRunner, MemoryStateTable, Page, SiteSteps

GARDEN, NEWS, RANT, SHOP = (f"http://site.test/pages/{name}"
                            for name in ("garden", "news", "rant", "shop"))
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@dataclass
class MemoryTopic:
    sent: list[tuple[str, Alert]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)  # URLs whose publish fails

    def publish(self, subject: str, alert: Alert) -> None:
        if alert.url in self.failing:
            raise ConnectionError("SNS unreachable")
        self.sent.append((subject, alert))

    def transitions(self) -> list[tuple[str, str]]:
        return [(alert.url, alert.transition.value) for _, alert in self.sent]


@dataclass
class Watchlist:
    items: list[WatchEntry]

    def entries(self) -> list[WatchEntry]:
        return self.items


@dataclass
class World:
    """A site of four pages, all watched, and a monitor over it with in-memory collaborators."""

    pages: dict[str, Page] = field(default_factory=lambda: {
        url: Page() for url in (GARDEN, NEWS, RANT, SHOP)})
    table: MemoryStateTable = field(default_factory=MemoryStateTable)
    topic: MemoryTopic = field(default_factory=MemoryTopic)

    def __post_init__(self) -> None:
        self.steps = SiteSteps(self.pages)
        self.runner = EngineRunner(self.steps)
        self.watchlist = Watchlist([WatchEntry(url=url, added_at=T0) for url in self.pages])
        self.clock = itertools.count()

    def monitor(self) -> Monitor:
        return Monitor(
            watchlist=self.watchlist, table=self.table, runner=self.runner, alerts=self.topic,
            defaults=Thresholds(review=0.5, block=0.8),
            now=lambda: T0 + timedelta(minutes=next(self.clock)),
        )


@pytest.fixture
def world() -> World:
    return World()


def run(world: World) -> MonitorRun:
    return world.monitor().run_once(trigger="schedule", expired=lambda: False, lease_seconds=60)


def test_the_first_run_classifies_everything_new_and_alerts_nothing(world: World) -> None:
    result = run(world)

    assert result.status is MonitorRunStatus.DONE
    assert result.counts == {CheckState.NEW: 4}
    assert world.topic.sent == [] and result.alerts == []
    assert set(world.table.saved) == {GARDEN, NEWS, RANT, SHOP}


def test_the_second_run_alerts_once_per_transition_and_never_for_unchanged_pages(
    world: World,
) -> None:
    run(world)
    world.pages[NEWS].version = 2
    world.pages[SHOP].down = True
    world.pages[RANT].toxic = True

    result = run(world)

    assert sorted(world.topic.transitions()) == [
        (NEWS, "changed"), (RANT, "flagged"), (SHOP, "down")]
    assert result.counts == {CheckState.UNCHANGED: 1, CheckState.CHANGED: 1,
                             CheckState.FLAGGED: 1, CheckState.DOWN: 1}
    assert [sent.transition for sent in result.alerts] == [
        CheckState.CHANGED, CheckState.FLAGGED, CheckState.DOWN]
    assert all(sent.published for sent in result.alerts)


def test_pages_that_stay_down_or_flagged_are_not_alerted_again_and_recovery_is(
    world: World,
) -> None:
    run(world)
    world.pages[SHOP].down = True
    world.pages[RANT].toxic = True
    run(world)
    world.topic.sent.clear()

    third = run(world)  # nothing moved
    assert world.topic.sent == []
    assert third.counts == {CheckState.UNCHANGED: 2, CheckState.DOWN: 1, CheckState.FLAGGED: 1}

    world.pages[SHOP].down = False
    run(world)
    assert world.topic.transitions() == [(SHOP, "recovered")]


def test_unchanged_pages_end_at_the_scraper_with_a_conditional_get(world: World) -> None:
    run(world)
    before = {step: world.steps.count(step) for step in ("scraper", "moderator")}

    second = run(world)

    assert second.counts == {CheckState.UNCHANGED: 4}
    assert world.steps.count("scraper") - before["scraper"] == 4
    assert world.steps.count("moderator") == before["moderator"]  # no re-moderation
    request = world.runner.requests[-1]
    assert request.previous[GARDEN].etag == '"v1"' and not request.alert_flagged
    assert all(check.not_modified for check in world.table.checks[second.run_id])


def test_the_pipeline_does_not_alert_flagged_pages_itself_for_the_monitor(world: World) -> None:
    world.pages[RANT].toxic = True
    run(world)
    run(world)

    assert world.runner.pipeline_alerts.sent == []


def test_a_failed_publish_keeps_the_old_state_so_the_next_run_alerts_again(world: World) -> None:
    run(world)
    world.pages[NEWS].version = 2
    world.topic.failing = {NEWS}

    second = run(world)
    assert [(sent.published, sent.error) for sent in second.alerts] == [
        (False, "ConnectionError: SNS unreachable")]
    news = next(check for check in world.table.checks[second.run_id] if check.url == NEWS)
    assert news.current is not None and world.table.saved[NEWS] != news.current  # old state kept

    world.topic.failing = set()
    run(world)
    assert world.topic.transitions() == [(NEWS, "changed")]


def test_a_run_is_skipped_while_another_holds_the_lease(world: World) -> None:
    world.table.hold_lease("monitor-earlier")

    result = run(world)

    assert result.status is MonitorRunStatus.SKIPPED
    assert result.error == "monitor run monitor-earlier was still in progress"
    assert world.runner.requests == []
    assert world.table.lease is not None and world.table.lease.owner == "monitor-earlier"
    assert world.table.runs[result.run_id] == result


def test_an_empty_watchlist_runs_nothing(world: World) -> None:
    world.watchlist.items.clear()

    result = run(world)

    assert (result.status, result.total, result.error) == (
        MonitorRunStatus.DONE, 0, "the watchlist is empty")
    assert world.runner.requests == []


def test_an_engine_failure_is_recorded_and_raised_and_the_lease_released(world: World) -> None:
    class Broken:
        engine = "stepfunctions"

        def start(self, request: RunRequest) -> str:
            raise EngineFailed("execution ended FAILED")

        def wait(self, handle: str, request: RunRequest, *, expired: Any) -> RunSummary | None:
            raise AssertionError("a run that did not start is not followed")

    monitor = world.monitor()
    monitor.runner = Broken()

    with pytest.raises(EngineFailed):
        monitor.run_once(trigger="direct", expired=lambda: False, lease_seconds=60)

    (recorded,) = world.table.runs.values()
    assert recorded.status is MonitorRunStatus.FAILED
    assert recorded.error == "EngineFailed: execution ended FAILED"
    assert recorded.engine == "stepfunctions" and recorded.trigger == "direct"
    assert world.table.lease is None and world.table.saved == {}


def test_run_ids_are_valid_execution_names() -> None:
    assert RunRequest(run_id=new_run_id(), urls=["http://a.test/"]).run_id.startswith("monitor-")
