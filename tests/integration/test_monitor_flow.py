"""The monitor over moto: watchlist and state in DynamoDB, alerts through SNS to an SQS queue.

The pipeline is the real orchestrator engine over a fake site (tests.monitor_fakes): between runs
one page changes, one goes down and one turns toxic; then the down page comes back.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from baton.watch import Watch
from engines.client import START_TIMEOUT_S, Deployment, EngineFailed, OrchestratorClient
from engines.runs import RUNS_TABLE_SCHEMA, RunsTable
from monitor import handler
from monitor.check import SUBJECT_MAX
from monitor.dal import TransitionAlerts
from monitor.engine import EnginePipelineRunner
from monitor.logic import Monitor
from pipeline.alerts import SnsAlerts
from pipeline.models import ItemOutcome, RunRequest, RunSummary
from pipeline.monitor_models import (
    Availability,
    Check,
    CheckState,
    MonitorRun,
    MonitorRunStatus,
    Thresholds,
    UrlState,
)
from pipeline.monitor_state import MONITOR_STATE_TABLE_SCHEMA, WRITE_WORKERS, MonitorTable
from pipeline.watchlist import WATCHLIST_TABLE_SCHEMA, WatchlistTable
from tests.monitor_fakes import EngineRunner, Page, SiteSteps

SITE = "http://site.test/pages"
GARDEN, LIBRARY, NEWS, RANT, SHOP = (f"{SITE}/{name}"
                                     for name in ("garden", "library", "news", "rant", "shop"))
WATCHLIST = f"""# the monitor's pages
{GARDEN}    Garden
{LIBRARY}   Library
{NEWS}      News
{RANT}      Rant   review=0.5 block=0.8
{SHOP}
"""

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def tables(aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fresh watchlist and monitor state tables, exported as the monitor's variables."""
    dynamodb = boto3.client("dynamodb")
    names = {"watchlist": f"baton-watch-{uuid.uuid4().hex[:8]}",
             "state": f"baton-monitor-{uuid.uuid4().hex[:8]}"}
    dynamodb.create_table(TableName=names["watchlist"], **WATCHLIST_TABLE_SCHEMA)
    dynamodb.create_table(TableName=names["state"], **MONITOR_STATE_TABLE_SCHEMA)
    monkeypatch.setenv("WATCHLIST_TABLE_NAME", names["watchlist"])
    monkeypatch.setenv("MONITOR_STATE_TABLE_NAME", names["state"])
    return names


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Every SNS notification waiting in the queue (and delete them)."""
    sqs = boto3.client("sqs")
    notifications: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", [])
        if not messages:
            return notifications
        for message in messages:
            notifications.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def transitions(notifications: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((json.loads(n["Message"])["url"], json.loads(n["Message"])["transition"])
                  for n in notifications)


@pytest.fixture
def site() -> dict[str, Page]:
    return {url: Page() for url in (GARDEN, LIBRARY, NEWS, RANT, SHOP)}


@pytest.fixture
def steps(site: dict[str, Page]) -> SiteSteps:
    return SiteSteps(site)


@pytest.fixture
def monitor(tables: dict[str, str], alert_queue: dict[str, str], steps: SiteSteps,
            tmp_path: Path) -> Monitor:
    watchlist = WatchlistTable(tables["watchlist"])
    path = tmp_path / "watchlist.txt"
    path.write_text(WATCHLIST)
    Watch(watchlist).import_file(path)
    return Monitor(watchlist=watchlist, table=MonitorTable(tables["state"]),
                   runner=EngineRunner(steps), alerts=TransitionAlerts(SnsAlerts(alert_queue["topic"])),
                   defaults=Thresholds(review=0.5, block=0.8))


def fire(monitor: Monitor) -> MonitorRun:
    return monitor.run_once(trigger="schedule", expired=lambda: True, lease_seconds=60)


def test_one_alert_per_transition_and_none_for_unchanged_pages(
    monitor: Monitor, site: dict[str, Page], steps: SiteSteps, alert_queue: dict[str, str],
) -> None:
    first = fire(monitor)
    assert first.counts == {CheckState.NEW: 5}
    assert drain(alert_queue["queue"]) == []  # new pages are not alerted

    site[NEWS].version = 2
    site[SHOP].down = True
    site[RANT].toxic = True
    moderated = steps.count("moderator")
    second = fire(monitor)

    alerts = drain(alert_queue["queue"])
    assert transitions(alerts) == [(NEWS, "changed"), (RANT, "flagged"), (SHOP, "down")]
    assert second.counts == {CheckState.UNCHANGED: 2, CheckState.CHANGED: 1,
                             CheckState.FLAGGED: 1, CheckState.DOWN: 1}
    assert steps.count("moderator") - moderated == 2  # only the changed and the toxic page
    by_url = {json.loads(n["Message"])["url"]: n for n in alerts}
    assert by_url[NEWS]["Subject"] == "baton: changed — News"
    assert by_url[SHOP]["Subject"] == "baton: down — site.test/pages/shop"
    assert by_url[RANT]["MessageAttributes"]["transition"]["Value"] == "flagged"
    assert all(len(n["Subject"]) <= SUBJECT_MAX for n in alerts)
    body = json.loads(by_url[RANT]["Message"])
    assert (body["label"], body["run_id"]) == ("Rant", second.run_id)
    assert (body["previous"]["verdict"], body["current"]["verdict"]) == ("allow", "block")
    assert body["checked_at"] and body["current"]["score"] == 0.9

    third = fire(monitor)  # the page stays down, the rant stays toxic
    assert drain(alert_queue["queue"]) == []
    assert third.counts == {CheckState.UNCHANGED: 3, CheckState.FLAGGED: 1, CheckState.DOWN: 1}

    site[SHOP].down = False
    fire(monitor)
    recovered = drain(alert_queue["queue"])
    assert transitions(recovered) == [(SHOP, "recovered")]
    assert recovered[0]["Subject"] == "baton: recovered — site.test/pages/shop"


def test_runs_and_their_checks_are_recorded_newest_first(
    monitor: Monitor, site: dict[str, Page], tables: dict[str, str],
) -> None:
    first = fire(monitor)
    site[NEWS].version = 2
    second = fire(monitor)

    table = MonitorTable(tables["state"])
    recent = table.recent_runs(limit=5)
    assert [run.run_id for run in recent] == [second.run_id, first.run_id]
    assert recent[0] == second and recent[0].status is MonitorRunStatus.DONE
    assert [(sent.url, sent.transition, sent.published) for sent in recent[0].alerts] == [
        (NEWS, CheckState.CHANGED, True)]
    checks = {check.url: check for check in table.run_checks(second.run_id)}
    assert set(checks) == {GARDEN, LIBRARY, NEWS, RANT, SHOP}
    assert checks[GARDEN].not_modified and checks[GARDEN].state is CheckState.UNCHANGED
    previous, current = checks[NEWS].previous, checks[NEWS].current
    assert previous is not None and current is not None
    assert previous.content_hash != current.content_hash
    state = table.states([NEWS])[NEWS]
    assert state.etag == '"v2"' and state.run_id == second.run_id


def test_a_sweeps_many_states_and_checks_are_each_saved_once(tables: dict[str, str]) -> None:
    # More batches than write workers, the last one short: every worker writes several.
    urls = [f"{SITE}/page-{index}" for index in range(25 * WRITE_WORKERS * 2 + 7)]
    run = MonitorRun(run_id="monitor-sweep", engine="orchestrator", trigger="direct",
                     status=MonitorRunStatus.RUNNING, started_at=datetime.now(UTC))
    states = [UrlState(url=url, status=Availability.UP, etag=f'"{index}"', run_id=run.run_id,
                       checked_at=run.started_at) for index, url in enumerate(urls)]
    table = MonitorTable(tables["state"])

    table.save_states(states)
    table.save_checks(run, [Check(url=state.url, state=CheckState.UNCHANGED, transition=False,
                                  previous=state, current=state, not_modified=True)
                            for state in states])

    assert table.states(urls) == {state.url: state for state in states}
    checks = table.run_checks(run.run_id)
    assert sorted(check.url for check in checks) == sorted(urls)
    assert all(check.current == check.previous and check.current is not None
               and check.current.etag for check in checks)


def test_the_lease_keeps_a_second_run_out_until_it_expires(tables: dict[str, str]) -> None:
    table = MonitorTable(tables["state"])

    assert table.acquire_lease("run-1", now=1000, seconds=60) is None
    assert table.acquire_lease("run-2", now=1030, seconds=60) == "run-1"
    assert table.acquire_lease("run-2", now=1061, seconds=60) is None  # run-1's expired
    table.release_lease("run-1")  # not the holder: no effect
    assert table.acquire_lease("run-3", now=1062, seconds=60) == "run-2"
    table.release_lease("run-2")
    assert table.acquire_lease("run-3", now=1063, seconds=60) is None


def test_the_lease_records_the_run_and_one_follower_at_a_time(tables: dict[str, str]) -> None:
    table = MonitorTable(tables["state"])
    run = MonitorRun(run_id="run-1", engine="orchestrator", trigger="schedule",
                     status=MonitorRunStatus.RUNNING, started_at=datetime.now(UTC), total=5)

    assert table.acquire_lease("run-1", now=1000, seconds=3600, run=run,
                               followed_until=1900) is None
    table.set_handle("run-1", "arn:execution:run-1")
    pending = table.pending_run()
    assert pending is not None and (pending.run, pending.handle) == (run, "arn:execution:run-1")
    assert (pending.owner, pending.follower, pending.followed_until) == ("run-1", "run-1", 1900)

    assert not table.take_follow("run-1", "firing-2", until=2800, now=1060)  # run-1 follows it
    table.drop_follow("run-1", "firing-2")  # not the follower: no effect
    assert not table.take_follow("run-1", "firing-2", until=2800, now=1060)
    table.drop_follow("run-1", "run-1")  # its budget ended
    assert table.take_follow("run-1", "firing-2", until=2800, now=1120)
    assert not table.take_follow("run-1", "firing-3", until=2900, now=1120)  # a duplicate
    assert table.take_follow("run-1", "firing-3", until=2900, now=2801)  # firing-2 died
    assert not table.take_follow("run-0", "firing-4", until=2900, now=9000)  # not the holder
    assert table.acquire_lease("run-2", now=1200, seconds=60) == "run-1"

    table.release_lease("run-1")
    assert table.pending_run() is None


def test_a_schedule_event_is_delivered_once(tables: dict[str, str]) -> None:
    table = MonitorTable(tables["state"])

    assert table.first_delivery("event-1", now=1000)
    assert not table.first_delivery("event-1", now=1001)
    assert table.first_delivery("event-2", now=1001)


def test_a_run_that_outlives_its_firing_is_adopted_settled_and_alerted_once(
    monitor: Monitor, site: dict[str, Page], alert_queue: dict[str, str], tables: dict[str, str],
) -> None:
    fire(monitor)
    site[NEWS].version = 2
    site[LIBRARY].unparsable = True
    site[LIBRARY].version = 2
    runner = monitor.runner
    assert isinstance(runner, EngineRunner)
    runner.hold = True
    drain(alert_queue["queue"])

    started = fire(monitor)
    adopting = fire(monitor)  # the run still going: followed, not a second run
    assert started.status is MonitorRunStatus.RUNNING
    assert (adopting.status, adopting.adopted) == (MonitorRunStatus.SKIPPED, started.run_id)
    assert len(runner.requests) == 2 and drain(alert_queue["queue"]) == []

    runner.hold = False
    after = fire(monitor)
    alerts = drain(alert_queue["queue"])
    table = MonitorTable(tables["state"])

    assert transitions(alerts) == [(LIBRARY, "failing"), (NEWS, "changed")]
    assert {json.loads(n["Message"])["run_id"] for n in alerts} == {started.run_id}
    (settled,) = [run for run in table.recent_runs() if run.run_id == started.run_id]
    assert settled.status is MonitorRunStatus.DONE and len(settled.alerts) == 2
    assert after.adopted == started.run_id and after.status is MonitorRunStatus.DONE
    assert table.pending_run() is None
    assert fire(monitor).counts == {CheckState.UNCHANGED: 4, CheckState.FAILING: 1}
    assert drain(alert_queue["queue"]) == []  # the page still fails: no second alert


# ---- the Lambda handler ------------------------------------------------------------------------

SCHEDULED_EVENT = {
    "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
    "source": "aws.events", "account": "123456789012", "time": "2026-11-22T10:00:00Z",
    "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/monitor"],
    "detail": {},
}


@pytest.fixture
def deployed(monitor: Monitor, steps: SiteSteps, monkeypatch: pytest.MonkeyPatch) -> EngineRunner:
    """The handler's environment, its engine replaced by the in-memory one."""
    monkeypatch.setenv("MONITOR_ENGINE", "orchestrator")
    monkeypatch.setenv("ORCHESTRATOR_FUNCTION_NAME", "baton-orchestrator")
    monkeypatch.setenv("RUNS_TABLE_NAME", "baton-runs")
    monkeypatch.setenv("BUCKET_NAME", "baton-data")
    fake = EngineRunner(steps)
    monkeypatch.setattr(handler, "runner", lambda settings, engine: fake)
    return fake


def test_a_scheduled_event_runs_the_watchlist(
    deployed: EngineRunner, lambda_context: Any, alert_queue: dict[str, str]
) -> None:
    answer = handler.lambda_handler(SCHEDULED_EVENT, lambda_context)

    run = MonitorRun.model_validate(answer)
    assert (run.trigger, run.status, run.total) == ("schedule", MonitorRunStatus.DONE, 5)
    assert deployed.requests[0].run_id == run.run_id and not deployed.requests[0].alert_flagged


def test_a_scheduled_event_delivered_twice_runs_once(
    deployed: EngineRunner, lambda_context: Any
) -> None:
    first = MonitorRun.model_validate(handler.lambda_handler(SCHEDULED_EVENT, lambda_context))
    again = MonitorRun.model_validate(handler.lambda_handler(SCHEDULED_EVENT, lambda_context))

    assert first.status is MonitorRunStatus.DONE
    assert again.status is MonitorRunStatus.SKIPPED
    assert again.error == f"schedule event {SCHEDULED_EVENT['id']} was delivered before"
    assert len(deployed.requests) == 1


def test_a_run_longer_than_the_follow_budget_is_left_running(
    deployed: EngineRunner, lambda_context: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MONITOR_FOLLOW_SECONDS", "0.001")
    handler.get_settings.cache_clear()
    deployed.hold = True

    run = MonitorRun.model_validate(handler.lambda_handler({}, lambda_context))

    assert run.status is MonitorRunStatus.RUNNING and run.ended_at is None
    assert deployed.waits[run.run_id] == 1


def test_a_direct_invoke_runs_now(deployed: EngineRunner, lambda_context: Any) -> None:
    run = MonitorRun.model_validate(handler.lambda_handler({}, lambda_context))

    assert run.trigger == "direct" and run.status is MonitorRunStatus.DONE


def test_the_engine_override_needs_its_variables(
    tables: dict[str, str], alert_queue: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_FUNCTION_NAME", "baton-orchestrator")
    monkeypatch.setenv("RUNS_TABLE_NAME", "baton-runs")
    monkeypatch.setenv("BUCKET_NAME", "baton-data")

    with pytest.raises(ValueError, match="stepfunctions engine needs STATE_MACHINE_ARN"):
        handler.lambda_handler({"engine": "stepfunctions"}, lambda_context)


def test_a_malformed_direct_invoke_names_the_field(deployed: EngineRunner, lambda_context: Any) -> None:
    with pytest.raises(ValueError, match="engine"):
        handler.lambda_handler({"engine": "choreography"}, lambda_context)


# ---- following a continued orchestrator run through the runs table -----------------------------

class ContinuedOrchestrator:
    """Answers ``running`` (the run continued itself); the run then finishes in the runs table."""

    def __init__(self, runs: RunsTable, request: RunRequest) -> None:
        self.runs, self.request = runs, request
        self.calls: list[dict[str, Any]] = []

    def finish(self, _seconds: float) -> None:
        """The continuation ends the run while the monitor sleeps between polls."""
        second, now = self.rest
        self.runs.item_finished(second, now)
        first = ItemOutcome(run_id=self.request.run_id, url=self.request.urls[0], succeeded=True)
        self.runs.save_summary(RunSummary.from_outcomes(
            self.request.run_id, "orchestrator", [first, second], started_at=now, ended_at=now))

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        now = datetime.now(UTC)
        first, second = (ItemOutcome(run_id=self.request.run_id, url=url, succeeded=True)
                         for url in self.request.urls)
        self.runs.open_run(self.request.run_id, engine="orchestrator", total=2, started_at=now,
                           continuation=0)
        for url in self.request.urls:
            self.runs.item_started(self.request.run_id, url, now)
        self.runs.item_finished(first, now)
        running = RunSummary.from_outcomes(self.request.run_id, "orchestrator", [first], total=2,
                                           started_at=now)
        self.runs.save_summary(running)
        self.rest = (second, now)
        return {"StatusCode": 200, "Payload": io.BytesIO(running.model_dump_json().encode())}


def test_a_continued_orchestrator_run_is_followed_in_the_runs_table(aws: None) -> None:
    name = f"baton-runs-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb").create_table(TableName=name, **RUNS_TABLE_SCHEMA)
    runs = RunsTable(name, boto3.client("dynamodb"))
    request = RunRequest(run_id="monitor-run-1", urls=[GARDEN, NEWS])
    orchestrator = ContinuedOrchestrator(runs, request)
    boto3.client("s3").create_bucket(Bucket=name)  # where the run's request is kept
    clients = {"lambda": orchestrator, "dynamodb": boto3.client("dynamodb"),
               "s3": boto3.client("s3")}
    deployment = Deployment(orchestrator_function=name, runs_table_name=name,
                            data_bucket_name=name)
    runner = EnginePipelineRunner(OrchestratorClient(deployment, clients.__getitem__),
                                  sleep=orchestrator.finish)

    summary = runner.wait(runner.start(request), request, started_at=datetime.now(UTC),
                          expired=lambda: False)
    assert summary is not None

    (call,) = orchestrator.calls  # one asynchronous start; the run is followed in the table
    assert call["InvocationType"] == "Event"
    assert RunRequest.model_validate_json(call["Payload"]) == request
    assert (summary.total, summary.succeeded, summary.pending) == (2, 2, 0)
    assert summary == runs.summary(request.run_id)
    assert RunsTable(name, boto3.client("dynamodb")).summary("never-ran") is None


def test_an_adopted_run_not_yet_opened_is_timed_from_its_own_start(aws: None) -> None:
    name = f"baton-runs-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb").create_table(TableName=name, **RUNS_TABLE_SCHEMA)
    clients = {"dynamodb": boto3.client("dynamodb"), "s3": boto3.client("s3")}
    deployment = Deployment(orchestrator_function=name, runs_table_name=name,
                            data_bucket_name=name)
    request = RunRequest(run_id="monitor-run-queued", urls=[GARDEN])
    # A fresh firing's runner: the run was started by an earlier one, its invoke still queued.
    adopting = EnginePipelineRunner(OrchestratorClient(deployment, clients.__getitem__))
    recently = datetime.now(UTC) - timedelta(seconds=10)

    assert adopting.wait(request.run_id, request, started_at=recently,
                         expired=lambda: True) is None  # still starting: followed later

    long_ago = datetime.now(UTC) - timedelta(seconds=START_TIMEOUT_S + 5)
    with pytest.raises(EngineFailed, match="did not start run monitor-run-queued"):
        EnginePipelineRunner(OrchestratorClient(deployment, clients.__getitem__)).wait(
            request.run_id, request, started_at=long_ago, expired=lambda: True)
