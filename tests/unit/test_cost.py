"""Cost per run: a hand-built trace priced, and traces built from each engine's record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from baton.cost import STEP_REQUESTS, Invocation, Trace, cost, load_prices, trace_of
from baton.ui.model import Bar, RunView
from pipeline.models import ItemOutcome
from pipeline.steps import STEPS

# Distinct round prices so each service's share is visible in the hand computation.
PRICES = {"lambda_request": 1, "lambda_gb_second": 10, "stepfunctions_state_transition": 2,
          "eventbridge_event": 3, "sns_publish": 5, "sqs_request": 7, "dynamodb_write_unit": 11,
          "dynamodb_read_unit": 13, "s3_put_request": 17, "s3_get_request": 19}
MEMORY = {"scraper": 512, "transformer": 512, "moderator": 512, "store": 512,
          "orchestrator": 1024, "tracker": 256}
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def test_a_hand_built_trace_costs_the_hand_computed_figure():
    trace = Trace(
        invocations=[Invocation("scraper", 512, 100), Invocation("scraper", 512, 250.4),
                     Invocation("orchestrator", 128, 1000)],
        state_transitions=10, events=5, sns_publishes=1, sqs_requests=2,
        dynamodb_writes=6, dynamodb_reads=2, s3_puts=3, s3_gets=2)

    priced = cost(trace, PRICES)

    # GB-s: 0.5 x 0.100 + 0.5 x 0.251 (billed per started ms) + 0.125 x 1.000 = 0.3005
    assert priced.by_service == pytest.approx({
        "lambda": 3 * 1 + 0.3005 * 10, "stepfunctions": 10 * 2, "eventbridge": 5 * 3,
        "sns": 1 * 5, "sqs": 2 * 7, "dynamodb": 6 * 11 + 2 * 13, "s3": 3 * 17 + 2 * 19})
    assert priced.total_usd == pytest.approx(241.005)


def test_the_price_table_prices_one_lambda_second_at_512_mb():
    priced = cost(Trace(invocations=[Invocation("scraper", 512, 1000)]), load_prices())

    assert priced.total_usd == pytest.approx(0.0000002 + 0.5 * 0.0000166667)


def bar(url: str, step: str, start: float, end: float, outcome: str = "succeeded",
        attempts: int = 1) -> Bar:
    return Bar(url, step, 1, attempts, at(start), at(end), outcome)


def test_an_orchestrated_run_counts_each_attempt_and_the_orchestrators_wall_time():
    items = [ItemOutcome(run_id="r", url="u1", succeeded=True),
             ItemOutcome(run_id="r", url="u2", succeeded=False, failed_step="scraper",
                         error_type="PermanentError", attempts=1)]
    bars = [bar("u1", "scraper", 0, 300, attempts=3), bar("u1", "transformer", 300, 400),
            bar("u1", "moderator", 400, 500), bar("u1", "store", 500, 600),
            bar("u2", "scraper", 0, 50, outcome="failed")]
    view = RunView("r", "orchestrator", "failed-items", at(0), at(2000), total=2, items=items,
                   bars=bars)

    trace = trace_of(view, MEMORY)

    steps = [(i.function, i.billed_ms) for i in trace.invocations]
    assert steps == [("scraper", 100), ("scraper", 100), ("scraper", 100), ("transformer", 100),
                     ("moderator", 100), ("store", 100), ("scraper", 50), ("orchestrator", 2000)]
    # u1's steps succeeded: raw put; text get and put; text get; store's reads, writes, copy
    assert (trace.s3_puts, trace.s3_gets, trace.dynamodb_reads) == (3, 2, 2)
    # store 6 + runs table: 2 per item, 1 per step (5), 2 for the one invocation
    assert trace.dynamodb_writes == 6 + 4 + 5 + 2


def test_a_choreographed_run_counts_events_from_its_items_ends():
    stored = ItemOutcome.model_validate({
        "run_id": "r", "url": "u1", "succeeded": True, "attempts": 2, "duration_ms": 600,
        "record": {"run_id": "r", "url": "http://a.example/", "content_hash": "h",
                   "text_key": "k", "change": "new", "verdict": "allow", "score": 0.1,
                   "checked_at": T0.isoformat()}})
    failed = ItemOutcome(run_id="r", url="u2", succeeded=False, failed_step="transformer",
                         error_type="PermanentError", duration_ms=100)
    view = RunView("r", "choreography", "failed-items", at(0), at(900), total=2,
                   items=[stored, failed])

    trace = trace_of(view, MEMORY)

    functions = sorted(i.function for i in trace.invocations)
    assert functions == sorted(["scraper", "scraper", "transformer", "moderator", "store",
                                "tracker", "scraper", "transformer", "tracker"])
    assert trace.events == (1 + 4) + (1 + 2)
    assert [i.billed_ms for i in trace.invocations if i.function == "store"] == [120]


def test_every_step_of_the_registry_says_what_it_requests():
    missing = [step.name for step in STEPS if step.name not in STEP_REQUESTS]
    assert not missing, (f"add {missing} to baton/cost.py STEP_REQUESTS: what one successful "
                         "run of the step requests besides its invocation ({} if nothing)")
