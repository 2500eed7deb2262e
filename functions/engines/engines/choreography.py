"""The choreography engine: each function reacts to the previous one's event; nobody controls.

``adapt(step, logic)`` is each step function's entry point: a step request (the orchestrator's
and Step Functions' synchronous invoke) goes straight to ``logic``, the step's RequestResponse
handler; an EventBridge event is consumed: event in (``engines.events.CHAIN`` says which), the
same logic, event out. One function per step serves all three engines, so a local cloud keeps
one pool of warm workers per step whichever engine runs. Per event:

- success: the step's output is published as the next event (a 304 page ends the item with
  ``PageNotModified``: there is nothing to transform);
- ``TransientError``: retried here, per ``pipeline.policy`` (the same names, waits and counts as
  the other two engines, so an item's ``attempts`` means the same thing in all three). When the
  policy gives up the error is re-raised: Lambda's asynchronous invocation then sends the event
  to the function's ``OnFailure`` destination, the dead-letter queue, where the run tracker
  records the item as failed. Unknown errors are re-raised at once, for the same path;
- ``PermanentError`` and validation errors are final: ``PageFailed`` is published and the
  handler returns normally, so nothing retries them.

Why retry in the adapter rather than rely on Lambda's own asynchronous retries: those allow at
most 2 retries (the policy asks for 3), wait about 1 then 2 minutes between tries, cannot be
told apart from a first try inside the function (so ``attempts`` could not be reported), and
would retry a PermanentError just the same. Lambda's retries stay useful for what the adapter
cannot catch (a timeout, a crash): the tracker multiplies ``approximateInvokeCount`` by
``ATTEMPTS_PER_INVOCATION`` for a TransientError that reached the queue.

``start_choreography`` opens a run in the runs table and admits its first ``max_concurrency``
items (one ``PageRequested`` each); the others wait in the runs table, and each item's end admits
one of them (``admit_next``), so a run keeps at most ``max_concurrency`` items in flight, as the
orchestrator does. Without this every item would be queued at once behind the account's
concurrency, and an item's time would be mostly that queue's.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from engines import events
from engines.events import (
    CHAIN,
    CHAIN_STEP_LOG,
    DEAD_LETTER,
    PAGE_FAILED,
    PAGE_NOT_MODIFIED,
    PAGE_REQUESTED,
    ChainStep,
    EventMetadata,
    PipelineDetail,
)
from pipeline.models import Contract, ItemOutcome, RunRequest, ScrapedPage, ScrapeRequest
from pipeline.observability import logger
from pipeline.policy import POLICY, GaveUp, RetryPolicy, call_with_retries, error_name
from pipeline.steps import CHOREOGRAPHY, FIRST, Step

ENGINE = CHOREOGRAPHY

# Tries one invocation of an adapter makes of a step that keeps raising TransientError.
ATTEMPTS_PER_INVOCATION = POLICY.max_attempts + 1

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]
Publish = Callable[[str, EventMetadata, BaseModel], None]
PreviousCheck = Callable[[str], tuple[str | None, str | None]]


def adapt(
    step: str,
    logic: Handler,
    *,
    publish: Publish | None = None,
    policy: RetryPolicy = POLICY,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Handler:
    """The entry point of ``step``'s function: a step request to ``logic``; an EventBridge
    event (``is_event``) in, ``logic``, its output event out."""
    link = CHAIN[step]
    jitter = rng or random.Random()

    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        if is_event(event):
            return consume(event, context)
        return logic(event, context)

    @logger.inject_lambda_context(correlation_id_path="detail.metadata.run_id")
    def consume(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        delivered_at = now()
        received = EventBridgeModel.model_validate(event)
        if received.detail_type != link.consumes:
            # A rule routed the wrong event here: a deployment bug, not the item's fault.
            raise ValueError(f"{step} consumes {link.consumes}, got {received.detail_type}")
        # Without metadata the item cannot be named, so nothing could record its failure:
        # let the error reach the dead-letter queue.
        detail = PipelineDetail.model_validate(received.detail)
        metadata, data = detail.metadata, detail.data
        send = publish or events.publish

        def handled(emitted: str, attempts: int, at: datetime,
                    error: BaseException | None = None) -> None:
            log_chain_step(ChainStep(
                run_id=metadata.run_id, url=metadata.url, step=step, consumed=link.consumes,
                published_at=received.time, delivered_at=delivered_at, ended_at=at,
                attempts=max(attempts, 1), emitted=emitted,
                error_type=None if error is None else error_name(error),
                error=None if error is None else str(error)))

        def on_retry(name: str, attempt: int) -> None:
            logger.info("retrying step", step=step, url=metadata.url, error_type=name,
                        attempt=attempt)

        try:
            # Parsing is part of the call: an answer breaking the contract is a
            # ValidationError, final like any other (as in the orchestrator).
            output, attempt = call_with_retries(
                lambda: link.output_model.model_validate(logic(data, context)),
                policy=policy, sleep=sleep, rng=jitter, on_retry=on_retry)
        except GaveUp as gave_up:
            if gave_up.error_type not in policy.final:
                logger.error("step gave up; to the dead-letter queue", step=step,
                             url=metadata.url, error_type=gave_up.error_type,
                             attempts=gave_up.attempts)
                handled(DEAD_LETTER, gave_up.attempts, now(), gave_up.error)
                raise gave_up.error from None
            # The time the event is put, taken before: its consumer may log before we do.
            failed_at = now()
            failed = failure(link, metadata, gave_up.error, gave_up.attempts, failed_at)
            send(PAGE_FAILED, sent(after(metadata, gave_up.attempts, None), failed_at), failed)
            handled(PAGE_FAILED, gave_up.attempts, failed_at, gave_up.error)
            logger.warning("item failed", step=step, url=metadata.url,
                           error_type=gave_up.error_type, attempts=failed.attempts)
            return {"published": PAGE_FAILED, "attempts": failed.attempts}

        passed_on = after(metadata, attempt, output)
        sent_at = now()
        detail_type, published = next_event(link, passed_on, output, sent_at)
        send(detail_type, sent(passed_on, sent_at), published)
        handled(detail_type, attempt, sent_at)
        return {"published": detail_type, "attempts": passed_on.attempts}

    return lambda_handler


def is_event(event: Any) -> bool:
    """Whether a function's input is an EventBridge event rather than a step request (a step's
    contracts forbid unknown fields, so none has a ``detail-type``)."""
    return isinstance(event, dict) and "detail-type" in event


def log_chain_step(chain_step: ChainStep) -> None:
    """Log one handled event as the line the choreography's history is read from."""
    logger.info(CHAIN_STEP_LOG, chain_step=chain_step.model_dump(mode="json", exclude_none=True))


def after(metadata: EventMetadata, attempts: int, output: BaseModel | None) -> EventMetadata:
    """The metadata passed on once a step took ``attempts`` tries and answered ``output``."""
    update: dict[str, Any] = {"attempts": max(metadata.attempts, attempts)}
    if isinstance(output, ScrapedPage):  # the server's validators, as the orchestrator reports them
        update |= {"etag": output.etag, "last_modified": output.last_modified}
    return metadata.model_copy(update=update)


def sent(metadata: EventMetadata, at: datetime) -> EventMetadata:
    """``metadata`` stamped with the moment its event is put (taken before the put)."""
    return metadata.model_copy(update={"sent_at": at})


def duration_ms(metadata: EventMetadata, at: datetime) -> float:
    """Milliseconds from the item's admission to ``at`` (never negative: clocks differ)."""
    return max(0.0, round((at - metadata.requested_at).total_seconds() * 1000, 3))


def next_event(
    link: Step, metadata: EventMetadata, output: Contract, at: datetime
) -> tuple[str, BaseModel]:
    """The event a step's output becomes: the chain's next, or the item's end (a 304 page).

    ``metadata`` is what is passed on (attempts and validators include this step's).
    """
    if link.ends_item(output):
        outcome = ItemOutcome(
            run_id=metadata.run_id, url=metadata.url, succeeded=True, attempts=metadata.attempts,
            duration_ms=duration_ms(metadata, at), etag=metadata.etag,
            last_modified=metadata.last_modified,
        )
        return PAGE_NOT_MODIFIED, outcome
    return link.emits, output


def failure(
    link: Step, metadata: EventMetadata, error: BaseException, attempts: int, at: datetime
) -> ItemOutcome:
    """The failed outcome of an item whose step ended with ``error``."""
    return ItemOutcome(
        run_id=metadata.run_id, url=metadata.url, succeeded=False,
        error_type=error_name(error), error=str(error), failed_step=link.name,
        attempts=max(metadata.attempts, attempts), duration_ms=duration_ms(metadata, at),
    )


# ---- starting a run, admitting its items ----------------------------------------------------


class RunOpener(Protocol):
    """Where a run is opened and its items wait (engines.runs.RunsTable: the tracker fills it)."""

    def open_run(
        self, run_id: str, *, engine: str, total: int, started_at: datetime, continuation: int
    ) -> datetime: ...

    def record(self, outcome: ItemOutcome, at: datetime) -> bool: ...

    def wait(self, run_id: str, waiting: list[tuple[str, str, str]]) -> None: ...

    def waiting(self, run_id: str, key: str) -> str | None: ...

    def admitted(self, run_id: str, key: str) -> None: ...

    def forget_waiting(self, run_id: str, urls: list[str]) -> None: ...


def no_previous_check(url: str) -> tuple[str | None, str | None]:
    """The default hook of both engines that fetch from a URL list: no validators, so every
    fetch is unconditional (the monitor sends its validators in the request's ``previous``)."""
    return None, None


def start_choreography(
    request: RunRequest,
    bus_name: str,
    runs: RunOpener,
    events_client: Any,
    *,
    previous_check: PreviousCheck = no_previous_check,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> datetime:
    """Open the run, then admit its first items (``request_pages``); returns when it started.

    The run is opened first so that the tracker knows its total before any item can end.
    As in the orchestrator: a URL in ``request.previous`` is fetched conditionally with those
    validators (else with the ``previous_check`` hook's); a malformed URL ends at once as a
    failed item (ValidationError in the scraper, attempts 0); duplicate URLs are one item.
    """
    urls = list(dict.fromkeys(request.urls))
    started_at = runs.open_run(
        request.run_id, engine=ENGINE, total=len(urls), started_at=now(), continuation=0
    )
    request_pages(request, urls, bus_name, events_client, started_at, runs,
                  previous_check=previous_check, now=now)
    logger.info("run started", run_id=request.run_id, engine=ENGINE, items=len(urls))
    return started_at


def request_pages(
    request: RunRequest,
    urls: list[str],
    bus_name: str,
    events_client: Any,
    requested_at: datetime,
    runs: RunOpener,
    *,
    previous_check: PreviousCheck = no_previous_check,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Run the items of ``request`` in ``urls`` (a run's start, a redrive): the first
    ``max_concurrency`` are admitted now, the others wait, each for the end of the item
    ``max_concurrency`` places before it (its lane: a fixed successor, so that an end admits
    exactly one item without a shared counter every end would contend for).

    The waiting items are stored before any item is admitted, so no end can look for one not
    yet there. A redrive's items leave any earlier lane they waited in: a late end of the
    earlier attempt then admits nothing. A malformed URL ends at once as a failed item, outside
    the lanes (it holds no place in flight).
    """
    runs.forget_waiting(request.run_id, urls)
    failed: list[dict[str, Any]] = []
    pages: list[tuple[EventMetadata, ScrapeRequest]] = []
    for url in urls:
        metadata = EventMetadata(run_id=request.run_id, url=url, requested_at=requested_at)
        previous = request.previous.get(url)
        etag, last_modified = (
            (previous.etag, previous.last_modified) if previous else previous_check(url)
        )
        try:
            scrape = ScrapeRequest(
                run_id=request.run_id,
                url=url,  # type: ignore[arg-type]  # validated by the model
                etag=etag,
                last_modified=last_modified,
                options=request.options.get(url),
            )
        except ValidationError as error:
            failed.append(events.entry(PAGE_FAILED, metadata,
                                       failure(FIRST, metadata, error, 0, now()), bus_name))
            continue
        pages.append((metadata, scrape))

    lanes = request.max_concurrency
    # A redrive's keys never meet its run's earlier ones. (A whole uuid: the fault injector
    # masks it, so a seeded run draws the same faults every time.)
    batch = str(uuid.uuid4())
    keys = [f"{batch}#{index:06d}" for index in range(len(pages))]

    def lane_entry(index: int) -> tuple[EventMetadata, ScrapeRequest]:
        behind = index + lanes
        metadata, scrape = pages[index]
        return metadata.model_copy(
            update={"admits": keys[behind] if behind < len(pages) else None}), scrape

    waiting = [(keys[index], pages[index][0].url,
                events.entry(PAGE_REQUESTED, *lane_entry(index), bus_name)["Detail"])
               for index in range(lanes, len(pages))]
    if waiting:
        runs.wait(request.run_id, waiting)
    admitted = [events.entry(PAGE_REQUESTED, *lane_entry(index), bus_name)
                for index in range(min(lanes, len(pages)))]
    put_requests([(put, None) for put in failed + admitted], bus_name, events_client, runs,
                 now=now)


def admit_next(
    metadata: EventMetadata,
    runs: RunOpener,
    *,
    bus_name: str | None = None,
    events_client: Any = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> bool:
    """Admit the item waiting behind the item ``metadata`` is about, which has ended; True if
    one was admitted (its PageRequested put, or failed for good if the bus refused it).

    Called on every delivery of an end, counted or not: the waiting item is forgotten only once
    its event is put, so an end whose tracker died in between admits it when it is delivered
    again. An end delivered twice at the same moment can admit its item twice, as any event may
    be delivered twice: it is counted once.
    """
    if metadata.admits is None:
        return False
    bus = bus_name or events.get_settings().event_bus_name
    admission = _admission(runs, metadata.run_id, metadata.admits, bus, now)
    if admission is None:
        return False  # admitted already (an end delivered again), or redriven since
    put_requests([admission], bus, events_client, runs, now=now)
    return True


# An item's first event, and its key among the waiting items (None: it never waited).
Request = tuple[dict[str, Any], str | None]


def _admission(runs: RunOpener, run_id: str, key: str, bus_name: str,
               now: Callable[[], datetime]) -> Request | None:
    """The PageRequested of the item waiting under ``key``, admitted now; None if none waits."""
    stored = runs.waiting(run_id, key)
    if stored is None:
        return None
    waiting = PipelineDetail.model_validate_json(stored)
    admitted = waiting.metadata.model_copy(update={"requested_at": now()})
    page = ScrapeRequest.model_validate(waiting.data)
    return events.entry(PAGE_REQUESTED, admitted, page, bus_name), key


def put_requests(
    requests: list[Request],
    bus_name: str,
    events_client: Any,
    runs: RunOpener,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Put items' first events; an admitted one is then no longer waiting.

    An item whose event the bus keeps refusing ends at once as failed, with the refusal's code
    (``EventBridge.<code>``, which a redrive retries), and admits the item behind it: no run
    waits for an event never sent.
    """
    while requests:
        refused = events.put_what_it_can([put for put, _ in requests], events_client)
        for put, key in requests:
            if key is not None:
                runs.admitted(_metadata(put).run_id, key)
        requests = []
        for put, code in refused:
            metadata = _metadata(put)
            runs.record(ItemOutcome(
                run_id=metadata.run_id, url=metadata.url, succeeded=False,
                error_type=f"EventBridge.{code}", attempts=0,
                error=f"the pipeline bus refused the item's {put['DetailType']} event: {code}",
            ), now())
            if metadata.admits is not None:
                behind = _admission(runs, metadata.run_id, metadata.admits, bus_name, now)
                requests += [behind] if behind is not None else []


def _metadata(put: dict[str, Any]) -> EventMetadata:
    return PipelineDetail.model_validate_json(put["Detail"]).metadata
