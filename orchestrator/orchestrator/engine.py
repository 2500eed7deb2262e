"""The orchestrator's logic: every URL of a run through scraper → transformer → moderator → store.

Pure: steps are called through an injected ``invoke(step, payload) -> dict``, the run is recorded
through a ``RunLog``, alerts go to an ``Alerts``, time comes from a ``Budget``, and waiting is an
injected ``sleep`` — so tests run the whole engine in memory, without sleeping.

Behaviour shared with the state machine (statemachines/pipeline.asl.json):
- each step is retried per ``pipeline.policy`` (names, waits and counts as ASL ``Retry``);
- whatever is left fails that item only, with its step, error name and message: one bad URL
  never fails the run;
- a page answered 304 Not Modified ends after the scraper (there is nothing to transform);
- a stored verdict of review or block publishes one alert (unless the request says
  ``alert_flagged: false``: the monitor alerts on transitions itself); a failed alert fails the
  item (step "alert") but keeps its record, which was stored;
- a URL in the request's ``previous`` is fetched conditionally with those validators (else the
  ``previous_check`` hook's); a succeeded item reports the validators its server sent.

An item's ``attempts`` is the attempts of its step that was tried most (the scraper's 3 for a page
that answered 500 twice, then 200): the figure the CLI also derives from Step Functions history.

What an item costs the runs table: its start, one write per step that did not end it (written
as the next begins), and its outcome together with the step that ended it; the run's progress is
added once a second at most. An unchanged page is two writes.

A continuation is claimed before anything runs and held by a lease renewed while it works
(``orchestrator.lease``): a duplicated delivery does nothing, a retry after a crash takes over.

Runs longer than one invocation: before starting an item, the engine checks its ``Budget``; when
too little time is left it stops starting items, lets those in flight finish (each is recorded as
it ends), and hands the run to ``continue_run`` (the handler re-invokes the function
asynchronously). The next invocation reads the finished items back and does only the rest.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from engines.alerts import Alerts, alert_once
from engines.choreography import PreviousCheck, no_previous_check
from orchestrator.lease import LEASE_S, Lease, LeaseLog
from pipeline.keys import url_id
from pipeline.models import (
    FLAGGED,
    Contract,
    ItemOutcome,
    RunRequest,
    RunSummary,
    ScrapedPage,
    ScrapeRequest,
    StepRecord,
    StoredRecord,
)
from pipeline.observability import logger
from pipeline.policy import GaveUp, RetryPolicy, call_with_retries, error_name
from pipeline.steps import FIRST, ORCHESTRATOR, STEPS, Step

ENGINE = ORCHESTRATOR
ALERT = "alert"  # the step name an item's alert is recorded under (not a pipeline step)
# Items ended are added to the run's progress at most this often, not one write per item:
# progress is what a follower shows, and every checkpoint sets it exactly (save_summary).
PROGRESS_EVERY_S = 1.0

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]
ContinueRun = Callable[[RunRequest], None]
class StepError(Exception):
    """A step failed with an error known only by name (e.g. Sandbox.Timedout, ValidationError)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class RunLog(LeaseLog, Protocol):
    """Where the run is recorded (engines.runs.RunsTable in production): its claim operations
    (the lease's) and its items'."""

    def finished_items(self, run_id: str) -> dict[str, ItemOutcome]: ...

    def item_started(self, run_id: str, url: str, at: datetime,
                     first_step: StepRecord | None = None) -> bool: ...

    def claim_alert(self, run_id: str, url: str) -> bool: ...

    def release_alert(self, run_id: str, url: str) -> None: ...

    def step_finished(self, run_id: str, url: str, step: StepRecord) -> None: ...

    def item_finished(self, outcome: ItemOutcome, at: datetime,
                      last_step: StepRecord | None = None,
                      started_at: datetime | None = None) -> bool: ...

    def add_progress(self, run_id: str, done: int, failed: int) -> None: ...

    def save_summary(self, summary: RunSummary) -> None: ...


@dataclass(frozen=True)
class Budget:
    """The invocation's remaining time, and when to stop starting items."""

    remaining_ms: Callable[[], int]
    safety_margin_s: float = 60.0

    def allows_new_item(self, slowest_item_s: float) -> bool:
        """True while more than the margin, and twice the slowest item so far, remain."""
        remaining_s = self.remaining_ms() / 1000
        return remaining_s > max(self.safety_margin_s, 2 * slowest_item_s)


class _StepFailed(Exception):
    """An item's step gave up: carries what its ItemOutcome reports."""

    def __init__(
        self, step: str, error: BaseException, attempts: int, record: StoredRecord | None = None
    ) -> None:
        super().__init__(str(error))
        self.step = step
        self.error_type = error_name(error)
        self.message = str(error)
        self.attempts = attempts
        self.record = record


@dataclass
class Engine:
    """Runs runs. Every collaborator is injected; the defaults are the real clock and sleep."""

    invoke: Invoke
    runs: RunLog
    alerts: Alerts
    policy: RetryPolicy | None = None  # None: each step's own (pipeline.steps)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    previous_check: PreviousCheck = no_previous_check
    max_continuations: int = 20
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    lease_s: float = LEASE_S

    def run(self, request: RunRequest, *, budget: Budget, continue_run: ContinueRun) -> RunSummary:
        """Run (or continue) ``request``; the summary is final unless its status is running."""
        run_id = request.run_id
        # One item per URL: the runs table keys items by url_id, so a duplicate would collide.
        urls = list(dict.fromkeys(request.urls))
        # The invocation claims its continuation: a duplicated delivery of it finds the claim
        # alive and does nothing; a retry after its holder died takes it over.
        lease = Lease(self.runs, run_id, request.continuation, now=self.now, sleep=self.sleep,
                      lease_s=self.lease_s)
        started_at = lease.claim(engine=ENGINE, total=len(urls),
                                 time_left_s=lambda: budget.remaining_ms() / 1000)
        if started_at is None:
            done = list(self.runs.finished_items(run_id).values())
            return RunSummary.from_outcomes(run_id, ENGINE, done, total=max(len(urls), len(done)))
        outcomes = self.runs.finished_items(run_id)  # from earlier invocations of this run
        pending = [url for url in urls if url_id(url) not in outcomes]
        if outcomes:
            logger.info("continuing run", run_id=run_id, finished=len(outcomes), pending=len(pending))

        with lease.kept():
            done, left = self._run_items(request, pending, budget, stop=lambda: lease.lost)
        if lease.lost:  # another invocation took the run over: it records the rest
            done_ids = {url_id(outcome.url) for outcome in done}
            ended = list(outcomes.values()) + done
            logger.warning("lease lost; leaving the run to its new holder", run_id=run_id,
                           left=len([url for url in pending if url_id(url) not in done_ids]))
            return RunSummary.from_outcomes(run_id, ENGINE, ended, total=len(urls))
        outcomes.update((url_id(outcome.url), outcome) for outcome in done)

        if left and request.continuation >= self.max_continuations:
            # Belt and braces against a run re-invoking itself for ever: give up on the rest.
            for url in left:
                outcome = self._give_up(run_id, url, request.continuation)
                outcomes[url_id(url)] = outcome
            left = []

        ordered = [outcomes[url_id(url)] for url in urls if url_id(url) in outcomes]
        summary = RunSummary.from_outcomes(
            run_id, ENGINE, ordered, total=len(urls), started_at=started_at, ended_at=self.now()
        )
        self.runs.save_summary(summary)  # a checkpoint when items are left, else the end
        if left:
            following = request.model_copy(update={"continuation": request.continuation + 1})
            logger.info("out of time; continuing in a new invocation", run_id=run_id,
                        pending=len(left), continuation=following.continuation)
            continue_run(following)
        lease.release()  # after the hand-off: a crash before it lets a retry hand off again
        return summary

    def _run_items(
        self, request: RunRequest, urls: Sequence[str], budget: Budget,
        stop: Callable[[], bool] = lambda: False,
    ) -> tuple[list[ItemOutcome], list[str]]:
        """Run items, at most max_concurrency at once, while the budget allows and ``stop``
        does not say so; (done, left)."""
        run_id, limit = request.run_id, request.max_concurrency
        queue = deque(urls)
        done: list[ItemOutcome] = []
        slowest_s = 0.0
        progress = _Progress(self.runs, run_id, self.clock)
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="item") as pool:
            in_flight: set[Future[tuple[ItemOutcome, bool]]] = set()
            while queue or in_flight:
                while queue and len(in_flight) < limit and not stop():
                    # Progress first: each invocation starts at least one item whatever the
                    # budget, so a run always advances and cannot re-invoke itself in a loop.
                    if (done or in_flight) and not budget.allows_new_item(slowest_s):
                        break
                    in_flight.add(pool.submit(self._run_item, run_id, queue.popleft(), request))
                if not in_flight:
                    break  # the budget stopped us and nothing is running
                # Wake at least once a progress interval while items are counted and not yet
                # added: a run whose quick items are done and whose slow ones still run shows them.
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED,
                                           timeout=progress.due_in())
                for future in finished:
                    # A runs-table failure propagates: retry the run.
                    outcome, recorded = future.result()
                    slowest_s = max(slowest_s, outcome.duration_ms / 1000)
                    done.append(outcome)
                    if recorded:
                        progress.count(outcome)
                if not stop():  # a lost lease's new holder sets the progress itself
                    progress.flush_if_due()
        # What is still unflushed is counted by the checkpoint that follows (save_summary).
        return done, list(queue)

    def run_item(self, run_id: str, url: str, request: RunRequest | None = None) -> ItemOutcome:
        """One URL through the four steps (and the alert); never raises for a step's failure.

        ``request`` (the item's run) supplies the URL's previous validators and whether to alert.
        """
        return self._run_item(run_id, url, request)[0]

    def _run_item(self, run_id: str, url: str,
                  request: RunRequest | None = None) -> tuple[ItemOutcome, bool]:
        """run_item's outcome, and whether this call recorded it (else another invocation did)."""
        began = self.clock()
        # The item's start is written with its first step's record (or with its outcome, if
        # that step ended it: an unchanged page costs one write, not two). A run's continuation
        # leaves out the items it finds finished; the start's condition catches an invocation
        # that recorded the item meanwhile (a lease lost while it ran).
        item = _Item(self.runs, run_id, url, self.now())
        try:
            record, page = self._steps(item, request)
            outcome = ItemOutcome(
                run_id=run_id, url=url, succeeded=True, record=record, attempts=item.attempts,
                duration_ms=self._since(began), etag=page.etag, last_modified=page.last_modified,
            )
        except _StepFailed as failure:
            outcome = ItemOutcome(
                run_id=run_id, url=url, succeeded=False, record=failure.record,
                error_type=failure.error_type, error=failure.message,
                failed_step=failure.step, attempts=item.attempts,
                duration_ms=self._since(began),
            )
            logger.warning("item failed", run_id=run_id, url=url, step=failure.step,
                           error_type=failure.error_type, attempts=item.attempts)
        except _RecordedElsewhere:
            # Finished by another invocation meanwhile: its outcome stands, nothing is redone.
            return self.runs.finished_items(run_id)[url_id(url)], False
        # The step that ended the item is recorded with its outcome: one write, not two.
        if not self.runs.item_finished(outcome, self.now(), item.last,
                                       started_at=None if item.opened else item.started_at):
            # Another invocation ran it at the same moment and recorded it first: one outcome.
            return self.runs.finished_items(run_id)[url_id(url)], False
        return outcome, True

    def _steps(
        self, item: _Item, run: RunRequest | None
    ) -> tuple[StoredRecord | None, ScrapedPage]:
        """The registry's steps in order, each one's answer the next one's payload."""
        run_id, url = item.run_id, item.url
        previous = run.previous.get(url) if run else None
        if previous is not None:
            etag, last_modified = previous.etag, previous.last_modified
        else:
            etag, last_modified = self.previous_check(url)
        try:
            payload: Contract = ScrapeRequest(
                run_id=run_id,
                url=url,  # type: ignore[arg-type]  # validated by the model
                etag=etag,
                last_modified=last_modified,
                options=run.options.get(url) if run else None,
            )
        except ValidationError as error:
            # A malformed URL fails where the first step's own input model would have rejected
            # it; attempts 0 says nothing was invoked.
            raise _StepFailed(FIRST.name, error, attempts=0) from error
        page: ScrapedPage | None = None
        for step in STEPS:
            payload = self._step(item, step, payload)
            if isinstance(payload, ScrapedPage):
                page = payload  # its validators are the item's, for the next conditional GET
            if step.ends_item(payload):
                assert page is not None
                return None, page  # e.g. 304: unchanged since the previous check
        assert page is not None and isinstance(payload, StoredRecord)
        if payload.verdict in FLAGGED and (run is None or run.alert_flagged):
            self._alert(item, payload)
        return payload, page

    def _step(self, item: _Item, step: Step, payload: BaseModel) -> Contract:
        """Invoke ``step`` with retries per the policy; its answer parsed as its output model."""
        item.flush()  # the step before this one did not end the item
        run_id, url = item.run_id, item.url
        started_at = self.now()
        body = payload.model_dump(mode="json")

        def on_retry(name: str, attempt: int) -> None:
            logger.info("retrying step", run_id=run_id, url=url, step=step.name,
                        error_type=name, attempt=attempt)

        try:
            # Parsing is part of the call: an answer breaking the contract is a
            # ValidationError, final like any other.
            result, attempt = call_with_retries(
                lambda: step.output_model.model_validate(self.invoke(step.name, body)),
                policy=self.policy or step.policy, sleep=self.sleep, rng=self.rng,
                on_retry=on_retry)
        except GaveUp as gave_up:
            self._record_step(item, step.name, started_at, gave_up.attempts, gave_up.error)
            raise _StepFailed(step.name, gave_up.error, gave_up.attempts) from gave_up.error
        self._record_step(item, step.name, started_at, attempt)
        return result

    def _alert(self, item: _Item, record: StoredRecord) -> None:
        item.flush()  # the store did not end the item: its alert does
        started_at = self.now()
        try:
            if not alert_once(self.runs, self.alerts, item.run_id, item.url, record):
                return  # an earlier attempt at this item sent it: one alert per (run, URL)
        except Exception as error:  # the record is stored; the item fails at its alert
            self._record_step(item, ALERT, started_at, 1, error)
            raise _StepFailed(ALERT, error, 1, record=record) from error
        self._record_step(item, ALERT, started_at, 1)

    def _record_step(
        self,
        item: _Item,
        step: str,
        started_at: datetime,
        attempts: int,
        error: BaseException | None = None,
    ) -> None:
        item.ended(
            StepRecord(
                step=step,
                started_at=started_at,
                ended_at=self.now(),
                attempts=attempts,
                error_type=None if error is None else error_name(error),
                error=None if error is None else str(error),
            ),
        )

    def _give_up(self, run_id: str, url: str, continuation: int) -> ItemOutcome:
        outcome = ItemOutcome(
            run_id=run_id, url=url, succeeded=False, error_type="RunTooLong",
            error=f"not started: the run was continued {continuation} times, the most allowed",
            attempts=0,
        )
        self.runs.item_finished(outcome, self.now())
        return outcome

    def _since(self, began: float) -> float:
        return round((self.clock() - began) * 1000, 3)


class _RecordedElsewhere(Exception):
    """The item has an outcome recorded by another invocation: this one goes no further."""


class _Item:
    """One item's bookkeeping, in the thread that runs it: when it began, whether its start is
    recorded yet, the most attempts any of its steps needed so far, and the record of the step
    that ended last, held until it is known whether that step ended the item (then the item's
    end writes it with the outcome) or not (then it is written as the next step begins, when it
    would have been written anyway, with the item's start if this is the first)."""

    def __init__(self, runs: RunLog, run_id: str, url: str, started_at: datetime) -> None:
        self.runs = runs
        self.run_id = run_id
        self.url = url
        self.started_at = started_at
        self.opened = False  # its start is recorded
        self.attempts = 0
        self.last: StepRecord | None = None

    def ended(self, step: StepRecord) -> None:
        """A step ended: hold its record."""
        self.flush()
        self.attempts = max(self.attempts, step.attempts)
        self.last = step

    def flush(self) -> None:
        """Write the held record: the item goes on. Raises _RecordedElsewhere if another
        invocation recorded the item's outcome meanwhile."""
        if self.last is None:
            return
        if self.opened:
            self.runs.step_finished(self.run_id, self.url, self.last)
        elif self.runs.item_started(self.run_id, self.url, self.started_at, self.last):
            self.opened = True
        else:
            raise _RecordedElsewhere(self.url)
        self.last = None


class _Progress:
    """The items this invocation recorded, added to the run's progress in batches."""

    def __init__(self, runs: RunLog, run_id: str, clock: Callable[[], float]) -> None:
        self.runs = runs
        self.run_id = run_id
        self.clock = clock
        self.done = self.failed = 0
        self.flushed_at = clock()

    def count(self, outcome: ItemOutcome) -> None:
        """One more item recorded."""
        self.done += 1
        self.failed += int(not outcome.succeeded)

    def due_in(self) -> float | None:
        """Seconds until what was counted is due to be added; None when nothing waits."""
        if not self.done:
            return None
        return max(0.0, PROGRESS_EVERY_S - (self.clock() - self.flushed_at))

    def flush_if_due(self) -> None:
        """Add what was counted, if the last addition is PROGRESS_EVERY_S old."""
        if self.done and self.clock() - self.flushed_at >= PROGRESS_EVERY_S:
            self.runs.add_progress(self.run_id, self.done, self.failed)
            self.done = self.failed = 0
            self.flushed_at = self.clock()
