"""The monitor's use case: one firing = start a run over the watchlist, or follow the one going;
whoever sees a run end settles it: check each URL, alert, record.

Pure: the watchlist, the state table, the engine and the alert topic are injected (the real ones
are pipeline.watchlist, pipeline.monitor_state, monitor.engine and monitor.dal), as are
time and ids.

Guarantees:
- **a run may outlive its firing**: a firing starts the pipeline run and records it in the state
  table's lease (with how its engine follows it), then follows it until its own budget ends. If
  the run is still going then, the firing ends and the run record stays ``running``; a later
  firing adopts it (follows it, and settles it when it sees it end), so its states and alerts
  are produced all the same, just later;
- **one run at a time**: a run starts only with the lease, which its monitor run holds from
  before the start until its checks are settled. A firing that finds a run going does not start
  another: it adopts that run (follows it for its own budget; if the run ends, settles it, then
  starts the next run), or, when another firing already follows it, is recorded as skipped. The
  firing's record names the run it adopted (``adopted``);
- **settled once**: only the one firing that follows a run (a conditional update of the lease)
  settles it, and a URL whose state already comes from this run is not checked again (a settler
  that stopped half-way is finished by the next one). A duplicated delivery of the same schedule
  event is recognised by its id and does nothing;
- **alerts only on transitions** (monitor.check), one per URL and run at most;
- **at least once**: a URL's new state is saved only after its alert was published; a failed
  publish leaves the old state, so the next run detects (and alerts) the transition again;
- **cheap unchanged pages**: each URL's previous ETag / Last-Modified travel in the run request,
  so an unchanged page ends at the scraper with a 304 and is classified unchanged; the states
  of all pages without an alert, then every URL's check, are written 25 to a request, four
  requests at once (pipeline.monitor_state);
- **a run that fails is let go**: when its engine says it failed, the run is recorded failed and
  its lease released; when only following it failed, it keeps the lease for a later firing;
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

from engines.client import EngineFailed, Expired
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
from pipeline.monitor_state import PendingRun
from pipeline.observability import logger

Trigger = Literal["schedule", "direct"]

# A run still holding the lease this long after it started is taken as abandoned (its engine
# lost it): the next firing records it failed and starts afresh.
RUN_LEASE_SECONDS = 6 * 3600


class PipelineRunner(Protocol):
    """Starts a pipeline run, and follows a started one to its summary (monitor.engine)."""

    @property
    def engine(self) -> str: ...

    def start(self, request: RunRequest) -> str:
        """Start ``request``; returns the handle ``wait`` follows it by."""
        ...

    def wait(self, handle: str, request: RunRequest, *, started_at: datetime,
             expired: Expired) -> RunSummary | None:
        """The run's summary once it has ended; None if ``expired()`` came first.
        ``started_at``: when the run was started (maybe by an earlier firing)."""
        ...


class Watchlist(Protocol):
    def entries(self) -> list[WatchEntry]: ...


class StateStore(Protocol):
    def states(self, urls: Sequence[str]) -> dict[str, UrlState]: ...

    def save_states(self, states: Sequence[UrlState]) -> None: ...

    def save_run(self, run: MonitorRun) -> None: ...

    def save_checks(self, run: MonitorRun, checks: Sequence[Check]) -> None: ...

    def acquire_lease(self, owner: str, *, now: float, seconds: float,
                      run: MonitorRun | None = None, followed_until: float = 0.0) -> str | None: ...

    def pending_run(self) -> PendingRun | None: ...

    def set_handle(self, owner: str, handle: str) -> None: ...

    def take_follow(self, owner: str, follower: str, *, until: float, now: float) -> bool: ...

    def drop_follow(self, owner: str, follower: str) -> None: ...

    def release_lease(self, owner: str) -> None: ...

    def first_delivery(self, event_id: str, *, now: float) -> bool: ...


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


def still_in_progress(run_id: str) -> str:
    """The record's reason when a firing found ``run_id`` going and started nothing."""
    return f"monitor run {run_id} was still in progress"


@dataclass
class Monitor:
    """One monitor: its collaborators and defaults."""

    watchlist: Watchlist
    table: StateStore
    runner: PipelineRunner
    alerts: AlertTopic
    defaults: Thresholds
    max_concurrency: int = 8
    # The runner of another engine, for adopting a run started with an engine override.
    runner_for: Callable[[str], PipelineRunner] | None = None
    run_lease_seconds: float = RUN_LEASE_SECONDS
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    new_run_id: Callable[[], str] = new_run_id

    def run_once(self, *, trigger: Trigger, expired: Expired, lease_seconds: float,
                 event_id: str | None = None) -> MonitorRun:
        """One firing: the record of the run it started (or of itself, when it started none),
        also written to the state table. ``lease_seconds``: how long this firing may still run
        (its claim on following a run lasts that long); ``event_id``: the schedule event's."""
        firing = MonitorRun(run_id=self.new_run_id(), engine=self.runner.engine, trigger=trigger,
                            status=MonitorRunStatus.RUNNING, started_at=self.now())
        now = firing.started_at.timestamp()
        if event_id is not None and not self.table.first_delivery(event_id, now=now):
            logger.warning("skipped: a duplicated delivery of a schedule event", event_id=event_id)
            return self._finish(firing, MonitorRunStatus.SKIPPED,
                                error=f"schedule event {event_id} was delivered before")
        pending = self.table.pending_run()
        if pending is not None:
            if pending.lease_until < now:
                self._abandon(pending)
            # A run being started (no handle yet), an older monitor's lease (no run), or a run
            # another firing follows now: nothing for this firing to do.
            elif pending.run is None or pending.handle is None or not self.table.take_follow(
                    pending.owner, firing.run_id, until=now + lease_seconds, now=now):
                return self._skip(firing, pending.owner)
            else:
                firing = firing.model_copy(update={"adopted": pending.owner})
                if self._adopt(pending.run, pending.handle, firing.run_id, expired) is None:
                    return self._skip(firing, pending.owner)
        return self._start(firing, expired, now + lease_seconds)

    def _skip(self, firing: MonitorRun, holder: str) -> MonitorRun:
        logger.info("no run started: an earlier monitor run is in progress", holder=holder,
                    adopted=firing.adopted)
        return self._finish(firing, MonitorRunStatus.SKIPPED, error=still_in_progress(holder))

    def _start(self, run: MonitorRun, expired: Expired, followed_until: float) -> MonitorRun:
        entries = self.watchlist.entries()
        if not entries:
            logger.info("the watchlist is empty: nothing to run")
            return self._finish(run, MonitorRunStatus.DONE, error="the watchlist is empty")
        # Started now, after any run this firing adopted: runs never overlap, records neither.
        run = run.model_copy(update={"total": len(entries), "started_at": self.now()})
        holder = self.table.acquire_lease(run.run_id, now=run.started_at.timestamp(),
                                          seconds=self.run_lease_seconds, run=run,
                                          followed_until=followed_until)
        if holder is not None:
            return self._skip(run, holder)
        previous = self.table.states([entry.url for entry in entries])
        request = run_request(run.run_id, entries, previous, self.max_concurrency)
        self.table.save_run(run)  # `--follow` sees the run start
        try:
            handle = self.runner.start(request)
        except Exception as error:
            self._fail(run, error)
            raise
        self.table.set_handle(run.run_id, handle)
        settled = self._follow(run, handle, request, entries, previous, run.run_id, expired,
                               whole=True)
        return run if settled is None else settled

    def _adopt(self, run: MonitorRun, handle: str, follower: str,
               expired: Expired) -> MonitorRun | None:
        """Follow an earlier firing's run (this firing holds the follow); settled, or None."""
        logger.info("following an earlier monitor run", adopted=run.run_id)
        entries = self.watchlist.entries()
        if not entries:
            self.table.release_lease(run.run_id)
            return self._finish(run, MonitorRunStatus.DONE,
                                error="the watchlist was emptied while the run ran")
        previous = self.table.states([entry.url for entry in entries])
        request = run_request(run.run_id, entries, previous, self.max_concurrency)
        # The watchlist may have changed since the run started: only the URLs it ran are checked.
        return self._follow(run, handle, request, entries, previous, follower, expired,
                            whole=False)

    def _follow(self, run: MonitorRun, handle: str, request: RunRequest,
                entries: Sequence[WatchEntry], previous: dict[str, UrlState], follower: str,
                expired: Expired, *, whole: bool) -> MonitorRun | None:
        """Follow the run until it ends (then settle it) or ``expired()`` (then let go of it).
        ``whole``: ``entries`` are exactly the run's URLs (else only those it reports count)."""
        try:
            summary = self._runner(run.engine).wait(handle, request, started_at=run.started_at,
                                                    expired=expired)
        except EngineFailed as error:
            logger.exception("the pipeline run failed: nothing compared", run_id=run.run_id)
            self._fail(run, error)
            raise
        except Exception:
            # Following it failed (not the run): it may still be going, so it keeps the lease
            # and a later firing follows it again.
            self.table.drop_follow(run.run_id, follower)
            raise
        if summary is None:
            logger.info("the run continues after this firing: a later firing settles it",
                        run_id=run.run_id)
            self.table.drop_follow(run.run_id, follower)
            return None
        settled = self._settle(run, summary, entries, previous, whole=whole)
        self.table.release_lease(run.run_id)
        return settled

    def _runner(self, engine: str) -> PipelineRunner:
        if engine == self.runner.engine:
            return self.runner
        if self.runner_for is None:
            raise ValueError(f"no runner for the {engine} engine of an earlier run")
        return self.runner_for(engine)

    def _fail(self, run: MonitorRun, error: Exception) -> None:
        self._finish(run, MonitorRunStatus.FAILED, error=f"{type(error).__name__}: {error}")
        self.table.release_lease(run.run_id)

    def _abandon(self, pending: PendingRun) -> None:
        """Record a run whose lease ran out as failed; its lease is then taken over."""
        if pending.run is not None:
            logger.warning("an earlier monitor run never ended: abandoned", run_id=pending.owner)
            self._finish(pending.run, MonitorRunStatus.FAILED,
                         error=f"did not end within {self.run_lease_seconds:.0f} s: abandoned")

    def _settle(self, run: MonitorRun, summary: RunSummary, entries: Sequence[WatchEntry],
                previous: dict[str, UrlState], *, whole: bool) -> MonitorRun:
        """Check each URL of the ended run, alert on transitions, save states and checks."""
        outcomes = {item.url: item for item in summary.items}
        checked_at = self.now()
        checks = [check(entry, outcomes.get(entry.url), previous.get(entry.url),
                        defaults=self.defaults, run_id=run.run_id, now=checked_at)
                  for entry in entries
                  # Not checked twice: a state from this very run was settled already.
                  if (whole or entry.url in outcomes)
                  and getattr(previous.get(entry.url), "run_id", None) != run.run_id]
        # The many quiet pages' states in batches; a transition's state only after its alert
        # was published, one by one, so a settler stopping half-way re-sends one alert at most.
        self.table.save_states([one.current for one in checks
                                if one.current is not None and not one.transition])
        sent = []
        for one in checks:
            if one.transition:
                sent.append(self._alert(one, run.run_id))
                if sent[-1].published and one.current is not None:
                    self.table.save_states([one.current])
        self.table.save_checks(run, checks)
        return self._finish(
            run, MonitorRunStatus.DONE,
            counts=dict(Counter(one.state for one in checks)),
            alerts=sent,
        )

    def _alert(self, one: Check, run_id: str) -> AlertSent:
        """Publish a transition's alert; what was sent, or why not."""
        subject = alert_subject(one)
        try:
            self.alerts.publish(subject, alert_for(one, run_id))
        except Exception as error:  # recorded; the state stays, so the next run retries
            logger.exception("alert not published", url=one.url, transition=one.state)
            return AlertSent(url=one.url, label=one.label, transition=one.state,
                             subject=subject, published=False,
                             error=f"{type(error).__name__}: {error}")
        logger.info("alert published", url=one.url, transition=one.state)
        return AlertSent(url=one.url, label=one.label, transition=one.state, subject=subject,
                         published=True)

    def _finish(self, run: MonitorRun, status: MonitorRunStatus, **changes: object) -> MonitorRun:
        finished = run.model_copy(update={"status": status, "ended_at": self.now(), **changes})
        finished = MonitorRun.model_validate(finished.model_dump())  # re-validate the changes
        self.table.save_run(finished)
        return finished
