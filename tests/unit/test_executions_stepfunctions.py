"""`baton history` of a Step Functions run: the execution's events, each item's named by its URL,
and each item's end as the tracker recorded it (all LocalStack has of a Distributed Map's items)."""

from __future__ import annotations

from datetime import UTC, datetime

from baton.executions import stepfunctions_rows
from pipeline.models import ItemOutcome

A, B = "http://s.test/a", "http://s.test/b"
AT = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
OWN = [{"type": "MapRunStarted", "timestamp": AT}]


def failed(cause: str) -> dict:
    return {"type": "TaskFailed", "timestamp": AT,
            "taskFailedEventDetails": {"error": "Runtime.ExitError", "cause": cause}}


def ends() -> list[tuple[datetime, ItemOutcome]]:
    return [(AT, ItemOutcome(run_id="r", url=B, succeeded=False, failed_step="scraper",
                             error_type="PermanentError", error="answered 404")),
            (AT, ItemOutcome(run_id="r", url=A, succeeded=True))]


def test_each_child_execution_s_events_are_named_by_its_item_then_its_end_follows() -> None:
    rows = stepfunctions_rows({None: OWN, A: [failed("killed")], B: []}, ends())

    assert [(row.item, row.event) for row in rows] == [
        ("", "MapRunStarted"), (A, "TaskFailed"), (A, "succeeded"), (B, "failed")]
    assert rows[1].detail == "Runtime.ExitError: killed"
    assert rows[3].detail == "attempts 1; PermanentError: answered 404"


def test_without_child_executions_each_item_still_has_its_end() -> None:
    rows = stepfunctions_rows({None: OWN}, ends())

    assert [(row.item, row.step, row.event) for row in rows] == [
        ("", "", "MapRunStarted"), (B, "scraper", "failed"), (A, "scraper", "succeeded")]
