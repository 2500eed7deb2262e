"""The choreography engine's domain events: names, shape, the chain they form, and publishing.

Every event is ``source`` ``baton.pipeline`` with a versioned ``detail-type`` (a breaking change
of a detail is a new ``.v2`` beside the old one, so rules and consumers can move one at a time).
Its ``detail`` is ``{"metadata": EventMetadata, "data": <contract>}``: ``data`` is the very
pydantic contract the other engines pass between steps, unchanged; ``metadata`` carries what
the orchestrator keeps in memory and an event chain has to carry along (the item's key, its
attempts so far, when it was requested). The contracts forbid unknown fields, so this cannot
ride inside ``data``.

``CHAIN`` derives from the step registry (pipeline.steps); rules, adapters and tests use it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline import aws
from pipeline.errors import TransientError
from pipeline.models import Contract, ItemOutcome
from pipeline.steps import EVENT_SOURCE, FIRST, STEP, STEPS, Step

SOURCE = EVENT_SOURCE

# The chain's events, named after the steps that emit them (pipeline.steps says which).
PAGE_REQUESTED = FIRST.consumes
PAGE_SCRAPED = STEP["scraper"].emits
PAGE_TRANSFORMED = STEP["transformer"].emits
PAGE_MODERATED = STEP["moderator"].emits
PAGE_STORED = STEPS[-1].emits
PAGE_NOT_MODIFIED = "baton.PageNotModified.v1"  # a step's ``ends_item``: the item ends there
PAGE_FAILED = "baton.PageFailed.v1"

# An item's end: the run tracker counts exactly one of these per item.
TERMINAL = (PAGE_STORED, PAGE_NOT_MODIFIED, PAGE_FAILED)

MAX_ENTRIES = 10  # PutEvents accepts at most 10 entries per call

# The chain by step name: each step consumes the previous one's event (pipeline.steps.Step).
CHAIN: dict[str, Step] = dict(STEP)

# detail-type -> its data's model, for every event of the chain.
DATA_MODELS: dict[str, type[Contract]] = {
    **{link.consumes: link.input_model for link in CHAIN.values()},
    **{link.emits: link.output_model for link in CHAIN.values()},
    PAGE_NOT_MODIFIED: ItemOutcome,
    PAGE_FAILED: ItemOutcome,
}


def consumer_of(detail_type: str) -> Step | None:
    """The step that reacts to ``detail_type``, or None for a terminal event."""
    return next((link for link in CHAIN.values() if link.consumes == detail_type), None)


def rule_patterns() -> dict[str, dict[str, Any]]:
    """EventBridge rule patterns by target: each step, and the tracker for terminal events."""
    patterns = {
        link.name: {"source": [SOURCE], "detail-type": [link.consumes]} for link in CHAIN.values()
    }
    patterns["tracker"] = {"source": [SOURCE], "detail-type": list(TERMINAL)}
    return patterns


class EventMetadata(Contract):
    """What travels with an item from event to event besides the step's contract."""

    run_id: str = Field(min_length=1)  # the correlation id
    url: str = Field(min_length=1)  # as requested: the item's key in its run (contracts normalise it)
    attempts: int = Field(default=0, ge=0)  # the most tries any step of the item needed so far
    # When the item was admitted (its PageRequested put; a run keeps at most max_concurrency
    # items in flight): its duration runs from here, as the orchestrator's runs from the moment
    # one of its workers takes the item up.
    requested_at: datetime
    # The waiting item this item's end admits (its key in the runs table), None when none waits
    # behind it (engines.choreography.admit_next).
    admits: str | None = None
    # When this event was put, to the microsecond (the bus's own ``time`` keeps whole seconds):
    # an item's end is the moment its terminal event was put, not the moment it was counted.
    sent_at: datetime | None = None
    # What the page's server sent, from the scraper on: the item's outcome reports them for the
    # next check's conditional GET (the stored record does not carry them).
    etag: str | None = None
    last_modified: str | None = None


class PipelineDetail(BaseModel):
    """An event's detail with its data still unparsed: parsed by the step that consumes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metadata: EventMetadata
    data: dict[str, Any]


class ItemEnd(Contract):
    """An item's end as the state machine hands it to the run tracker (a direct invoke)."""

    outcome: ItemOutcome
    alert_flagged: bool = True  # false for the monitor's runs: it alerts on transitions itself


# The line each adapter logs once it has handled an event: the choreography's step history
# (``baton history`` and ``baton ui`` read it from CloudWatch Logs; no table is written per step).
CHAIN_STEP_LOG = "choreography step"
DEAD_LETTER = "dead-letter queue"  # where an event goes that its step could not handle


class ChainStep(Contract):
    """One step of one item as the choreography ran it: the event it was delivered, when that
    event was published and delivered, the step's attempts, and what it passed on."""

    run_id: str
    url: str
    step: str
    consumed: str  # the event's detail-type
    published_at: datetime  # the event's time on the bus (EventBridge keeps whole seconds)
    delivered_at: datetime  # when the step's function received it
    ended_at: datetime  # when the step published its own event (or gave up)
    attempts: int = Field(ge=1)
    emitted: str  # the event it published, or DEAD_LETTER
    error_type: str | None = None
    error: str | None = None


class ChoreographySettings(BaseSettings):
    """Where events are published."""

    model_config = SettingsConfigDict(frozen=True)

    event_bus_name: str = Field(min_length=1, validation_alias="EVENT_BUS_NAME")


@functools.cache
def get_settings() -> ChoreographySettings:
    """The publisher's settings, read from the environment on first use."""
    return ChoreographySettings()  # type: ignore[call-arg]  # fields come from the environment


def entry(
    detail_type: str, metadata: EventMetadata, data: BaseModel, bus_name: str
) -> dict[str, Any]:
    """One PutEvents entry."""
    # Unset, the admission and the put stamp are left out: such an event is the very bytes it was
    # before they existed (what the fault injector's seeded draws are keyed on, too).
    unset = {name for name in ("admits", "sent_at") if getattr(metadata, name) is None}
    detail = {"metadata": metadata.model_dump(mode="json", exclude=unset),
              "data": data.model_dump(mode="json")}
    return {
        "Source": SOURCE,
        "DetailType": detail_type,
        "Detail": PipelineDetail.model_validate(detail).model_dump_json(),
        "EventBusName": bus_name,
    }


def put_entries(
    entries: Sequence[dict[str, Any]],
    client: Any = None,
    *,
    tries: int = 3,
    sleep: Any = time.sleep,
) -> None:
    """Put ``entries`` in batches of 10 (see ``put_what_it_can``); raises TransientError naming
    the error codes when some are still refused after ``tries``."""
    refused = put_what_it_can(entries, client, tries=tries, sleep=sleep)
    if refused:
        codes = sorted({code for _, code in refused})
        raise TransientError(
            f"EventBridge refused {len(refused)} event(s) after {tries} tries: {', '.join(codes)}")


def put_what_it_can(
    entries: Sequence[dict[str, Any]],
    client: Any = None,
    *,
    tries: int = 3,
    sleep: Any = time.sleep,
) -> list[tuple[dict[str, Any], str]]:
    """Put ``entries`` in batches of 10; the entries still refused after ``tries``, each with
    its error code.

    Only the rejected entries are sent again (a whole batch again would run the accepted
    ones twice: harmless, since consumers are idempotent, but wasteful). A call that fails as a
    whole (throttled, unreachable) is tried again the same way.
    """
    client = client or aws.client("events")
    refused: list[tuple[dict[str, Any], str]] = []
    for start in range(0, len(entries), MAX_ENTRIES):
        batch = [(entry, "") for entry in entries[start : start + MAX_ENTRIES]]
        for attempt in range(1, tries + 1):
            try:
                answer = client.put_events(Entries=[entry for entry, _ in batch])
            except (ClientError, BotoCoreError) as error:
                code = aws.error_code(error) if isinstance(error, ClientError) else ""
                batch = [(entry, code or type(error).__name__) for entry, _ in batch]
            else:
                if not answer.get("FailedEntryCount"):
                    batch = []  # all accepted
                    break
                results = answer.get("Entries", [])
                batch = [(entry, str(result["ErrorCode"]))
                         for (entry, _), result in zip(batch, results, strict=True)
                         if "ErrorCode" in result]
            if not batch:
                break
            if attempt < tries:
                sleep(0.2 * 2 ** (attempt - 1))
        refused += batch
    return refused


def publish(detail_type: str, metadata: EventMetadata, data: BaseModel, client: Any = None) -> None:
    """Publish one event on the bus named by EVENT_BUS_NAME."""
    put_entries([entry(detail_type, metadata, data, get_settings().event_bus_name)], client)
