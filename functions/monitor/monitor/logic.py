"""The monitor's use case: one firing = read the watchlist, run the pipeline, check, alert, record.

Pure: the watchlist, the state table, the engine and the alert topic are injected (the real ones
are pipeline.watchlist, pipeline.monitor_state, engines.client and monitor.dal), as are
time and ids.

Guarantees:
- **one run at a time**: a firing takes the state table's lease first; if an earlier run still
  holds it, this firing is recorded as skipped and does nothing else;
- **alerts only on transitions** (monitor.check), one per URL and run at most;
- **at least once**: a URL's new state is saved only after its alert was published; a failed
  publish leaves the old state, so the next run detects (and alerts) the transition again;
- **cheap unchanged pages**: each URL's previous ETag / Last-Modified travel in the run request,
  so an unchanged page ends at the scraper with a 304 and is classified unchanged;
- the pipeline's own per-page "flagged" alerts are switched off for monitor runs
  (``alert_flagged=False``): the monitor alerts on transitions instead.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from engines.client import Expired
from monitor.check import alert_for, alert_subject, check
from pipeline.models import RunRequest, RunSummary, Validators
from pipeline.monitor_models import (
    Alert,
    AlertSent,
    Check,
    MonitorRun,
    MonitorRunStatus,
    Thresholds,
    UrlState,
    WatchEntry,
)
from pipeline.observability import logger

Trigger = Literal["schedule", "direct"]


class PipelineRunner(Protocol):
    """Runs a whole run and returns its final summary (engines.client.Runner)."""

    @property
    def engine(self) -> str: ...

    def run(self, request: RunRequest, *, expired: Expired) -> RunSummary: ...


class Watchlist(Protocol):
    def entries(self) -> list[WatchEntry]: ...


class StateStore(Protocol):
    def states(self, urls: Sequence[str]) -> dict[str, UrlState]: ...

    def save_state(self, state: UrlState) -> None: ...

    def save_run(self, run: MonitorRun) -> None: ...

    def save_checks(self, run: MonitorRun, checks: Sequence[Check]) -> None: ...

    def acquire_lease(self, owner: str, *, now: float, seconds: float) -> str | None: ...

    def release_lease(self, owner: str) -> None: ...


class AlertTopic(Protocol):
    def publish(self, subject: str, alert: Alert) -> None: ...


def new_run_id() -> str:
    """A run id valid as a Step Functions execution name, sortable by time."""
    return f"monitor-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"


def run_request(run_id: str, entries: Sequence[WatchEntry], previous: dict[str, UrlState],
                max_concurrency: int) -> RunRequest:
    """The run over the watchlist, with each URL's validators for a conditional GET and its
    entry's fetch options (headers, cookies, robots.txt opt-out)."""
    validators = {
        url: Validators(etag=state.etag, last_modified=state.last_modified)
        for url, state in previous.items() if state.etag or state.last_modified
    }
    return RunRequest(run_id=run_id, urls=[entry.url for entry in entries],
                      max_concurrency=max_concurrency, previous=validators, alert_flagged=False,
                      options={entry.url: entry.options for entry in entries if entry.options})


@dataclass
class Monitor:
    """One monitor: its collaborators and defaults."""

    watchlist: Watchlist
    table: StateStore
    runner: PipelineRunner
    alerts: AlertTopic
    defaults: Thresholds
    max_concurrency: int = 8
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    new_run_id: Callable[[], str] = new_run_id

    def run_once(self, *, trigger: Trigger, expired: Expired, lease_seconds: float) -> MonitorRun:
        """One firing: the run's record, also written to the state table."""
        run = MonitorRun(run_id=self.new_run_id(), engine=self.runner.engine, trigger=trigger,
                         status=MonitorRunStatus.RUNNING, started_at=self.now())
        holder = self.table.acquire_lease(run.run_id, now=run.started_at.timestamp(),
                                          seconds=lease_seconds)
        if holder is not None:
            logger.warning("skipped: an earlier monitor run is in progress", holder=holder)
            return self._finish(run, MonitorRunStatus.SKIPPED,
                                error=f"monitor run {holder} was still in progress")
        try:
            return self._run(run, expired)
        finally:
            self.table.release_lease(run.run_id)

    def _run(self, run: MonitorRun, expired: Expired) -> MonitorRun:
        entries = self.watchlist.entries()
        if not entries:
            logger.info("the watchlist is empty: nothing to run")
            return self._finish(run, MonitorRunStatus.DONE, error="the watchlist is empty")
        previous = self.table.states([entry.url for entry in entries])
        request = run_request(run.run_id, entries, previous, self.max_concurrency)
        run = run.model_copy(update={"total": len(entries)})
        self.table.save_run(run)  # `--follow` sees the run start
        try:
            summary = self.runner.run(request, expired=expired)
        except Exception as error:
            logger.exception("the pipeline run failed: nothing compared", run_id=run.run_id)
            self._finish(run, MonitorRunStatus.FAILED, error=f"{type(error).__name__}: {error}")
            raise
        outcomes = {item.url: item for item in summary.items}
        checked_at = self.now()
        checks = [check(entry, outcomes.get(entry.url), previous.get(entry.url),
                        defaults=self.defaults, run_id=run.run_id, now=checked_at)
                  for entry in entries]
        sent = [self._settle(one, run.run_id) for one in checks]
        self.table.save_checks(run, checks)
        return self._finish(
            run, MonitorRunStatus.DONE,
            counts=dict(Counter(one.state for one in checks)),
            alerts=[alert for alert in sent if alert is not None],
        )

    def _settle(self, one: Check, run_id: str) -> AlertSent | None:
        """Publish the check's alert if it is a transition, then save its state (in that order)."""
        sent = None
        if one.transition:
            subject = alert_subject(one)
            try:
                self.alerts.publish(subject, alert_for(one, run_id))
            except Exception as error:  # recorded; the state stays, so the next run retries
                logger.exception("alert not published", url=one.url, transition=one.state)
                return AlertSent(url=one.url, label=one.label, transition=one.state,
                                 subject=subject, published=False,
                                 error=f"{type(error).__name__}: {error}")
            sent = AlertSent(url=one.url, label=one.label, transition=one.state, subject=subject,
                             published=True)
            logger.info("alert published", url=one.url, transition=one.state)
        if one.current is not None:
            self.table.save_state(one.current)
        return sent

    def _finish(self, run: MonitorRun, status: MonitorRunStatus, **changes: object) -> MonitorRun:
        finished = run.model_copy(update={"status": status, "ended_at": self.now(), **changes})
        finished = MonitorRun.model_validate(finished.model_dump())  # re-validate the changes
        self.table.save_run(finished)
        return finished
