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
    CheckState,
    MonitorRun,
    MonitorRunStatus,
    Thresholds,
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
    """One firing whose budget is spent once it has looked at its run (a held run outlives it)."""
    return world.monitor().run_once(trigger="schedule", expired=lambda: True, lease_seconds=60)


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

        def wait(self, handle: str, request: RunRequest, *, started_at: datetime,
                 expired: Any) -> RunSummary | None:
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


# ---- runs that outlive their firing ----------------------------------------------------------


def test_a_run_that_outlives_its_firing_is_settled_and_alerted_by_a_later_one(world: World) -> None:
    run(world)
    world.pages[NEWS].version = 2
    world.runner.hold = True

    started = run(world)  # the run is still going when this firing's budget ends
    assert started.status is MonitorRunStatus.RUNNING and started.alerts == []
    assert world.table.runs[started.run_id].status is MonitorRunStatus.RUNNING
    assert world.table.lease is not None and world.table.lease.owner == started.run_id
    assert world.table.lease.followed_until == 0.0  # let go of: the next firing may follow it
    assert world.topic.sent == [] and world.table.saved[NEWS].run_id != started.run_id

    waiting = run(world)  # still going: adopted and followed, no second run over the watchlist
    assert (waiting.status, waiting.adopted) == (MonitorRunStatus.SKIPPED, started.run_id)
    assert waiting.error == f"monitor run {started.run_id} was still in progress"
    assert len(world.runner.requests) == 2 and world.runner.waits[started.run_id] == 2

    world.runner.hold = False
    after = run(world)  # sees it end: settles it, then starts the next run
    settled = world.table.runs[started.run_id]
    assert settled.status is MonitorRunStatus.DONE
    assert settled.counts == {CheckState.UNCHANGED: 3, CheckState.CHANGED: 1}
    assert [(sent.url, sent.transition, sent.published) for sent in settled.alerts] == [
        (NEWS, CheckState.CHANGED, True)]
    assert world.topic.transitions() == [(NEWS, "changed")]  # once, by the settling firing
    news = next(one for one in world.table.checks[after.run_id] if one.url == NEWS)
    assert news.previous is not None and news.previous.run_id == started.run_id
    assert after.adopted == started.run_id and after.status is MonitorRunStatus.DONE
    assert after.counts == {CheckState.UNCHANGED: 4} and world.table.lease is None


def test_a_firing_does_not_follow_a_run_another_firing_follows(world: World) -> None:
    run(world)
    world.pages[NEWS].version = 2
    world.runner.hold = True
    started = run(world)
    assert world.table.lease is not None
    world.table.lease = world.table.lease.model_copy(   # another firing follows it now
        update={"follower": "monitor-other", "followed_until": float("inf")})
    world.runner.hold = False

    duplicate = run(world)

    assert (duplicate.status, duplicate.adopted) == (MonitorRunStatus.SKIPPED, None)
    assert world.runner.waits[started.run_id] == 1  # only the starting firing's
    assert world.topic.sent == [] and world.table.runs[started.run_id].status == "running"


def test_a_duplicated_schedule_event_does_nothing(world: World) -> None:
    first = world.monitor().run_once(trigger="schedule", expired=lambda: False,
                                     lease_seconds=60, event_id="event-1")
    again = world.monitor().run_once(trigger="schedule", expired=lambda: False,
                                     lease_seconds=60, event_id="event-1")

    assert first.status is MonitorRunStatus.DONE
    assert (again.status, again.error) == (MonitorRunStatus.SKIPPED,
                                           "schedule event event-1 was delivered before")
    assert len(world.runner.requests) == 1


def test_a_run_whose_lease_ran_out_is_recorded_abandoned_and_a_new_one_starts(
    world: World,
) -> None:
    world.runner.hold = True
    lost = run(world)
    assert world.table.lease is not None
    world.table.lease = world.table.lease.model_copy(update={"lease_until": 0.0})
    world.runner.hold = False

    fresh = run(world)

    assert world.table.runs[lost.run_id].status is MonitorRunStatus.FAILED
    assert world.table.runs[lost.run_id].error == "did not end within 21600 s: abandoned"
    assert fresh.status is MonitorRunStatus.DONE and fresh.adopted is None
    assert fresh.counts == {CheckState.NEW: 4}


def test_a_url_already_settled_from_the_run_is_not_checked_or_alerted_again(world: World) -> None:
    run(world)
    world.pages[NEWS].version = 2
    world.pages[SHOP].version = 2
    world.runner.hold = True
    started = run(world)
    # A settler stopped half-way: it had alerted NEWS and saved its state from this run.
    world.table.saved[NEWS] = world.table.saved[NEWS].model_copy(
        update={"run_id": started.run_id, "content_hash": "after"})
    world.runner.hold = False

    run(world)

    settled = world.table.runs[started.run_id]
    assert [(alert.url, alert.transition) for _, alert in world.topic.sent
            if alert.run_id == started.run_id] == [(SHOP, CheckState.CHANGED)]
    assert NEWS not in {one.url for one in world.table.checks[started.run_id]}
    assert settled.counts == {CheckState.UNCHANGED: 2, CheckState.CHANGED: 1}


def test_an_adopted_run_checks_only_the_urls_it_ran(world: World) -> None:
    run(world)
    world.runner.hold = True
    started = run(world)
    added = "http://site.test/pages/added"
    world.pages[added] = Page()
    world.watchlist.items.append(WatchEntry(url=added, added_at=T0))
    world.runner.hold = False

    after = run(world)

    assert {one.url for one in world.table.checks[started.run_id]} == {GARDEN, NEWS, RANT, SHOP}
    assert after.counts == {CheckState.UNCHANGED: 4, CheckState.NEW: 1}  # the next run has it


# ---- alert rules -------------------------------------------------------------------------------


def test_a_page_that_keeps_failing_after_the_fetch_alerts_once_then_recovers(world: World) -> None:
    run(world)
    world.pages[NEWS].version = 2
    world.pages[NEWS].unparsable = True

    failing = run(world)
    assert world.topic.transitions() == [(NEWS, "failing")]
    assert failing.counts[CheckState.FAILING] == 1

    still = run(world)  # a new fetch each time (the failed version's ETag is not kept) …
    assert world.topic.transitions() == [(NEWS, "failing")]  # … but no second alert
    assert still.counts[CheckState.FAILING] == 1
    assert world.runner.requests[-1].previous[NEWS].etag == '"v1"'

    world.pages[NEWS].unparsable = False
    run(world)
    assert world.topic.transitions() == [(NEWS, "failing"), (NEWS, "recovered")]


def test_a_page_that_comes_back_flagged_alerts_as_flagged(world: World) -> None:
    run(world)
    world.pages[SHOP].down = True
    run(world)
    world.pages[SHOP].down = False
    world.pages[SHOP].toxic = True

    run(world)

    assert world.topic.transitions() == [(SHOP, "down"), (SHOP, "flagged")]
    alert = world.topic.sent[-1][1]
    assert alert.previous is not None and alert.previous.status == "down"


def test_unchanged_states_are_written_in_batches(world: World) -> None:
    run(world)
    writes = world.table.state_writes

    run(world)

    assert world.table.state_writes - writes == 1  # four states, one batch


def test_a_failure_to_follow_keeps_the_run_for_a_later_firing(world: World) -> None:
    world.runner.hold = True
    started = run(world)
    original_wait = world.runner.wait

    def unreachable(*args: Any, **kwargs: Any) -> RunSummary | None:
        raise ConnectionError("runs table unreachable")

    world.runner.wait = unreachable  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        run(world)
    lease = world.table.lease
    assert lease is not None and (lease.owner, lease.followed_until) == (started.run_id, 0.0)
    assert world.table.runs[started.run_id].status is MonitorRunStatus.RUNNING

    world.runner.wait = original_wait  # type: ignore[method-assign]
    world.runner.hold = False
    run(world)
    assert world.table.runs[started.run_id].status is MonitorRunStatus.DONE


def test_an_adopted_run_that_failed_is_recorded_failed_and_let_go(world: World) -> None:
    world.runner.hold = True
    started = run(world)

    def failed(*args: Any, **kwargs: Any) -> RunSummary | None:
        raise EngineFailed("execution ended FAILED")

    world.runner.wait = failed  # type: ignore[method-assign]
    with pytest.raises(EngineFailed):
        run(world)

    assert world.table.runs[started.run_id].status is MonitorRunStatus.FAILED
    assert world.table.lease is None and world.topic.sent == []
