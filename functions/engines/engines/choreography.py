"""The choreography engine: each function reacts to the previous one's event; nobody controls.

``adapt(step, logic)`` turns a step's RequestResponse handler into an EventBridge consumer:
event in (``engines.events.CHAIN`` says which), the same logic, event out. Per item:

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

``start_choreography`` opens a run in the runs table and publishes one ``PageRequested`` per URL.
"""

from __future__ import annotations

import random
import time
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
    """The EventBridge handler of ``step``: its input event in, ``logic``, its output event out."""
    link = CHAIN[step]
    jitter = rng or random.Random()

    @logger.inject_lambda_context(correlation_id_path="detail.metadata.run_id")
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
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
            send(PAGE_FAILED, after(metadata, gave_up.attempts, None), failed)
            handled(PAGE_FAILED, gave_up.attempts, failed_at, gave_up.error)
            logger.warning("item failed", step=step, url=metadata.url,
                           error_type=gave_up.error_type, attempts=failed.attempts)
            return {"published": PAGE_FAILED, "attempts": failed.attempts}

        passed_on = after(metadata, attempt, output)
        sent_at = now()
        detail_type, published = next_event(link, passed_on, output, sent_at)
        send(detail_type, passed_on, published)
        handled(detail_type, attempt, sent_at)
        return {"published": detail_type, "attempts": passed_on.attempts}

    return lambda_handler


def log_chain_step(chain_step: ChainStep) -> None:
    """Log one handled event as the line the choreography's history is read from."""
    logger.info(CHAIN_STEP_LOG, chain_step=chain_step.model_dump(mode="json", exclude_none=True))


def after(metadata: EventMetadata, attempts: int, output: BaseModel | None) -> EventMetadata:
    """The metadata passed on once a step took ``attempts`` tries and answered ``output``."""
    update: dict[str, Any] = {"attempts": max(metadata.attempts, attempts)}
    if isinstance(output, ScrapedPage):  # the server's validators, as the orchestrator reports them
        update |= {"etag": output.etag, "last_modified": output.last_modified}
    return metadata.model_copy(update=update)


def duration_ms(metadata: EventMetadata, at: datetime) -> float:
    """Milliseconds from the item's request to ``at`` (never negative: clocks differ)."""
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


# ---- starting a run ---------------------------------------------------------------------------


class RunOpener(Protocol):
    """Where a run is opened (engines.runs.RunsTable: the tracker fills the same table)."""

    def open_run(
        self, run_id: str, *, engine: str, total: int, started_at: datetime, continuation: int
    ) -> datetime: ...

    def record(self, outcome: ItemOutcome, at: datetime) -> bool: ...


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
    """Open the run, then publish one PageRequested per URL; returns when the run started.

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
    """Publish one PageRequested per URL of ``request`` in ``urls`` (a run's start, a redrive).

    An item whose event the bus keeps refusing ends at once as failed, with the refusal's code
    (``EventBridge.<code>``, which a redrive retries): no run waits for an event never sent.
    """
    entries = []
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
            failed = failure(FIRST, metadata, error, 0, now())
            entries.append(events.entry(PAGE_FAILED, metadata, failed, bus_name))
            continue
        entries.append(events.entry(PAGE_REQUESTED, metadata, scrape, bus_name))
    for refused, code in events.put_what_it_can(entries, events_client):
        metadata = PipelineDetail.model_validate_json(refused["Detail"]).metadata
        runs.record(ItemOutcome(
            run_id=metadata.run_id, url=metadata.url, succeeded=False,
            error_type=f"EventBridge.{code}", attempts=0,
            error=f"the pipeline bus refused the item's {refused['DetailType']} event: {code}",
        ), now())
