"""What a run would cost on AWS: a trace of billable requests, priced from ``prices.json``.

A ``Trace`` is what a run used: Lambda invocations (configured memory, billed duration), Step
Functions Standard state transitions, EventBridge events, SNS publishes, SQS requests, DynamoDB
read and write units and S3 requests. ``trace_of`` builds it from a run as its engine recorded it:

- **orchestrator** (runs table steps): one invocation per step attempt; each attempt's billed
  duration is its step's span divided by its attempts (estimated: the span includes the backoff
  waits); plus the orchestrator itself, billed for the run's wall time once per invocation
  (continuations included), and its runs-table writes.
- **stepfunctions** (execution history): one invocation per TaskStarted, billed from TaskStarted
  to its TaskSucceeded/TaskFailed (measured); state transitions counted from the history.
- **choreography** (item ends): the steps an item went through follow from its outcome, and one
  invocation per step plus one per retry plus the tracker's; each invocation is billed an equal
  share of the item's duration (estimated: the share includes EventBridge's delivery time); one
  event per PageRequested and per step's event; the tracker's runs-table writes.

For all engines the steps' own requests (S3 objects, the records table, the alert) are counted
per successful step from what the functions' code does (``STEP_REQUESTS``), assuming items under
1 KB for writes and 4 KB for reads. Free tiers are ignored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from baton.errors import BatonError
from baton.ui.model import LAMBDA_STEPS, STEPS, Bar, RunView
from pipeline.models import FLAGGED, ItemOutcome

PRICES_FILE = Path(__file__).with_name("prices.json")

# What one successful step requests besides its own invocation, read from the functions' code.
# Every step of the registry has an entry (a test checks it): a new step says what it requests,
# even nothing, instead of being costed as nothing by default.
STEP_REQUESTS: dict[str, dict[str, float]] = {
    "scraper": {"s3_puts": 1},  # the raw body
    "transformer": {"s3_gets": 1, "s3_puts": 1},  # raw body in, text out
    "moderator": {"s3_gets": 1},  # the text
    # two consistent GetItems; one transaction of three Puts (2 units each); the text's copy
    "store": {"dynamodb_reads": 2, "dynamodb_writes": 6, "s3_puts": 1},
    "alert": {"sns_publishes": 1},
}
ORCHESTRATOR_MEMORY_KEY = "orchestrator"
TRACKER_MEMORY_KEY = "tracker"


@dataclass(frozen=True)
class Invocation:
    function: str
    memory_mb: int
    billed_ms: float

    @property
    def gb_seconds(self) -> float:
        """Configured memory times billed duration (rounded up to the millisecond, as AWS bills)."""
        return self.memory_mb / 1024 * math.ceil(self.billed_ms) / 1000


@dataclass
class Trace:
    """The billable requests of one run."""

    invocations: list[Invocation] = field(default_factory=list)
    state_transitions: int = 0
    events: int = 0
    sns_publishes: int = 0
    sqs_requests: int = 0
    dynamodb_reads: float = 0
    dynamodb_writes: float = 0
    s3_puts: int = 0
    s3_gets: int = 0
    estimated: list[str] = field(default_factory=list)

    def add(self, requests: Mapping[str, float]) -> None:
        """Add counted requests (names are this class's fields)."""
        for name, count in requests.items():
            setattr(self, name, getattr(self, name) + count)


@dataclass(frozen=True)
class Cost:
    total_usd: float
    by_service: dict[str, float]
    counts: dict[str, float]
    estimated: list[str]

    def as_json(self) -> dict[str, Any]:
        """``cost_usd`` as `baton history --json` shows it."""
        return {"total": round(self.total_usd, 9),
                "by_service": {k: round(v, 9) for k, v in self.by_service.items()},
                "counts": self.counts, "estimated": self.estimated}


def load_prices(path: Path = PRICES_FILE) -> dict[str, float]:
    """The unit prices of the price table (USD per request, unit or GB-second)."""
    try:
        table = json.loads(path.read_text())
        return {name: float(value) for name, value in table["prices"].items()}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BatonError(f"cannot read the price table {path}: {error}") from error


def cost(trace: Trace, prices: Mapping[str, float] | None = None) -> Cost:
    """The trace priced: a total and one figure per service."""
    p = load_prices() if prices is None else prices
    gb_seconds = sum(invocation.gb_seconds for invocation in trace.invocations)
    by_service = {
        "lambda": len(trace.invocations) * p["lambda_request"] + gb_seconds * p["lambda_gb_second"],
        "stepfunctions": trace.state_transitions * p["stepfunctions_state_transition"],
        "eventbridge": trace.events * p["eventbridge_event"],
        "sns": trace.sns_publishes * p["sns_publish"],
        "sqs": trace.sqs_requests * p["sqs_request"],
        "dynamodb": trace.dynamodb_writes * p["dynamodb_write_unit"]
        + trace.dynamodb_reads * p["dynamodb_read_unit"],
        "s3": trace.s3_puts * p["s3_put_request"] + trace.s3_gets * p["s3_get_request"],
    }
    counts = {"lambda_invocations": len(trace.invocations), "lambda_gb_seconds": round(gb_seconds, 6),
              "step_attempts": sum(1 for i in trace.invocations if i.function in LAMBDA_STEPS)}
    counts |= {k: v for k, v in asdict(trace).items() if k not in ("invocations", "estimated")}
    return Cost(sum(by_service.values()), by_service, counts, list(trace.estimated))


def steps_reached(item: ItemOutcome) -> list[str]:
    """The steps an item went through, from its outcome alone (the last one may have failed)."""
    if not item.succeeded:
        failed = item.failed_step or STEPS[0]
        if failed == "alert":
            return [*STEPS, "alert"]
        return list(STEPS[: STEPS.index(failed) + 1]) if failed in STEPS else [STEPS[0]]
    if item.record is None:
        return [STEPS[0]]  # not modified: the scraper's conditional GET only
    flagged = item.record.verdict in FLAGGED
    return [*STEPS, "alert"] if flagged else list(STEPS)


def _step_requests(trace: Trace, step: str, succeeded: bool) -> None:
    if succeeded:
        trace.add(STEP_REQUESTS[step])


def trace_of(view: RunView, memory_mb: Mapping[str, int]) -> Trace:
    """The billable trace of a run, built from what its engine recorded (see the module's doc)."""
    if view.engine == "stepfunctions":
        return _sfn_trace(view, memory_mb)
    if view.engine == "choreography":
        return _choreography_trace(view, memory_mb)
    return _orchestrator_trace(view, memory_mb)


def _bar_invocations(trace: Trace, bars: list[Bar], memory_mb: Mapping[str, int]) -> None:
    for bar in bars:
        if bar.step in LAMBDA_STEPS:
            trace.invocations += [Invocation(bar.step, memory_mb[bar.step],
                                             bar.duration_ms / bar.attempts)] * bar.attempts
        elif bar.step == "alert" and bar.outcome != "succeeded":
            continue
        _step_requests(trace, bar.step, bar.outcome == "succeeded")


def _orchestrator_trace(view: RunView, memory_mb: Mapping[str, int]) -> Trace:
    trace = Trace(estimated=[
        "each attempt's billed duration is its step's span / attempts (backoff waits included)",
        "the orchestrator is billed for the run's wall time",
        "DynamoDB units assume items under 1 KB"])
    _bar_invocations(trace, view.bars, memory_mb)
    invocations = 1 + view.continuations
    wall_ms = (view.duration_s or 0) * 1000
    trace.invocations += [Invocation(ORCHESTRATOR_MEMORY_KEY, memory_mb[ORCHESTRATOR_MEMORY_KEY],
                                     wall_ms / invocations)] * invocations
    steps = sum(1 for bar in view.bars if bar.step in LAMBDA_STEPS or bar.step == "alert")
    # Runs table: per item its start, each step, its end; per invocation the run's opening and
    # its summary.
    trace.dynamodb_writes += 2 * len(view.items) + steps + 2 * invocations
    return trace


def _sfn_trace(view: RunView, memory_mb: Mapping[str, int]) -> Trace:
    trace = Trace(state_transitions=view.state_transitions,
                  estimated=["state transitions inside the Map follow each item's path where the "
                             "history leaves them out (as the local cloud's does)",
                             "DynamoDB units assume items under 1 KB"])
    _bar_invocations(trace, view.bars, memory_mb)
    return trace


def _choreography_trace(view: RunView, memory_mb: Mapping[str, int]) -> Trace:
    trace = Trace(estimated=[
        "steps follow from each item's outcome (the choreography records no steps)",
        "each invocation is billed an equal share of its item's duration",
        "DynamoDB units assume items under 1 KB"])
    for item in view.items:
        steps = steps_reached(item)
        lambda_steps = [step for step in steps if step in LAMBDA_STEPS]
        calls = len(lambda_steps) + (item.attempts - 1)
        share_ms = item.duration_ms / max(calls, 1)
        trace.invocations += [Invocation(step, memory_mb[step], share_ms) for step in lambda_steps]
        retried = item.failed_step if item.failed_step in LAMBDA_STEPS else STEPS[0]
        trace.invocations += [Invocation(retried, memory_mb[retried], share_ms)] * (item.attempts - 1)
        trace.invocations.append(Invocation(TRACKER_MEMORY_KEY, memory_mb[TRACKER_MEMORY_KEY], 0))
        for step in steps:
            _step_requests(trace, step, item.succeeded or step != steps[-1])
        # PageRequested, then one event per Lambda step (its result or PageFailed).
        trace.events += 1 + len(lambda_steps)
        # The tracker: one transaction of two updates (2 units each), one consistent read.
        trace.dynamodb_writes += 4
        trace.dynamodb_reads += 1
    trace.dynamodb_writes += 2  # the run's opening and its end
    return trace
