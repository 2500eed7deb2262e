"""The UI's reading of a Step Functions history: one bar per task attempt, paired with its URL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from baton.ui.charts import text_timeline
from baton.ui.model import RunView
from baton.ui.reader import invocations_naming, sfn_bars, state_transitions
from pipeline.models import ItemOutcome

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
A, B = "http://site.test/a", "http://site.test/b"
LAMBDA = "arn:aws:states:::lambda:invoke"


class History:
    """A history shaped as the local cloud writes it: no iteration states, no TaskStarted."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, ms: int, kind: str, details: dict[str, Any]) -> None:
        key = {"TaskScheduled": "taskScheduledEventDetails", "TaskSucceeded": "taskSucceededEventDetails",
               "TaskFailed": "taskFailedEventDetails"}.get(kind, "executionStartedEventDetails")
        self.events.append({"type": kind, "id": len(self.events) + 1,
                            "timestamp": T0 + timedelta(milliseconds=ms), key: details})

    def scheduled(self, ms: int, resource: str = LAMBDA) -> None:
        self.add(ms, "TaskScheduled", {"resourceType": "lambda", "resource": resource})

    def succeeded(self, ms: int, payload: dict[str, Any]) -> None:
        self.add(ms, "TaskSucceeded", {"resource": LAMBDA,
                                       "output": json.dumps({"StatusCode": 200, "Payload": payload})})

    def failed(self, ms: int, url: str, error: str) -> None:
        self.add(ms, "TaskFailed", {"resource": LAMBDA, "error": error, "cause": json.dumps(
            {"errorMessage": f"{url} answered 500", "errorType": error})})


def two_urls() -> History:
    """a: four steps; b: the scraper fails, is retried after a's transformer started, then b's
    transformer fails for good."""
    h = History()
    h.add(0, "ExecutionStarted", {"input": json.dumps({"run_id": "r", "urls": [A, B]})})
    h.scheduled(10)  # a's scraper
    h.scheduled(11)  # b's scraper
    h.succeeded(50, {"url": A, "final_url": A, "status_code": 200})
    h.scheduled(50)  # a's transformer
    h.failed(60, B, "TransientError")
    h.succeeded(90, {"url": A, "text_key": "t", "content_hash": "h"})
    h.scheduled(90)  # a's moderator
    h.scheduled(1060)  # b's scraper again, after its retry interval
    h.succeeded(1100, {"url": B, "final_url": B, "status_code": 200})
    h.scheduled(1100)  # b's transformer
    h.succeeded(1120, {"page": {"url": A}, "verdict": "allow", "score": 0.1})
    h.scheduled(1120)  # a's store
    h.failed(1150, B, "PermanentError")
    h.succeeded(1200, {"url": A, "change": "new", "verdict": "allow"})
    return h


def test_each_task_attempt_becomes_a_bar_of_its_url_and_step():
    bars = sfn_bars(two_urls().events)

    drawn = [(bar.url, bar.step, bar.attempt, bar.outcome,
              int((bar.started_at - T0).total_seconds() * 1000),
              int((bar.ended_at - T0).total_seconds() * 1000)) for bar in bars]
    assert sorted(drawn) == sorted([
        (A, "scraper", 1, "succeeded", 10, 50), (A, "transformer", 1, "succeeded", 50, 90),
        (A, "moderator", 1, "succeeded", 90, 1120), (A, "store", 1, "succeeded", 1120, 1200),
        (B, "scraper", 1, "retried", 11, 60), (B, "scraper", 2, "succeeded", 1060, 1100),
        (B, "transformer", 1, "failed", 1100, 1150)])


def test_a_failed_attempt_keeps_its_error():
    failed = [bar for bar in sfn_bars(two_urls().events) if bar.outcome == "failed"]

    assert [(bar.error_type, bar.error) for bar in failed] == [
        ("PermanentError", f"{B} answered 500")]


def test_state_transitions_count_the_map_paths_the_history_leaves_out():
    history = two_urls().events
    stored = ItemOutcome.model_validate({
        "run_id": "r", "url": A, "succeeded": True,
        "record": {"run_id": "r", "url": A, "content_hash": "h", "text_key": "t", "change": "new",
                   "verdict": "allow", "score": 0.1, "checked_at": T0.isoformat()}})
    failed = ItemOutcome(run_id="r", url=B, succeeded=False, failed_step="transformer")

    # 7 task attempts; a: Is it unchanged?, Keep validators, Record success;
    # b: Is it unchanged?, Keep validators, Record extract failure
    assert state_transitions(history, [stored, failed]) == 7 + 3 + 3


def test_the_trackers_recording_of_an_item_end_is_not_a_step():
    h = two_urls()
    h.scheduled(1150)  # b's Record outcome, right after its final failure
    h.scheduled(1200)  # a's Record outcome, right after its store
    h.succeeded(1210, {"recorded": True, "outcome": {"run_id": "r", "url": B, "succeeded": False}})
    h.succeeded(1230, {"recorded": True, "outcome": {"run_id": "r", "url": A, "succeeded": True}})

    assert sfn_bars(h.events) == sfn_bars(two_urls().events)


def test_the_text_timeline_draws_one_line_per_url_with_its_steps():
    bars = sfn_bars(two_urls().events)
    view = RunView("r", "stepfunctions", "failed-items", T0, T0 + timedelta(seconds=1.2), 2,
                   bars=bars)

    lines = text_timeline(view, width=40).splitlines()

    rows = [line for line in lines if line.lstrip().startswith("site.test")]
    assert len(rows) == 2
    assert rows[0].endswith("| scrap trans moder store")
    assert rows[1].endswith("| scrap:retried scrap trans:failed")
    assert "✗" in rows[1] and "▒" in rows[1]
    assert "*|" in rows[0]  # a ended last: the critical path


def test_log_lines_are_those_of_the_invocations_naming_the_url():
    def event(ms: int, message: str, stream: str = "s1") -> dict[str, Any]:
        return {"timestamp": ms, "message": message, "logStreamName": stream}

    events = [event(1, "START RequestId: 1"), event(2, f'{{"url": "{A}"}}'), event(3, "END RequestId: 1"),
              event(4, "START RequestId: 2"), event(5, f'{{"url": "{B}"}}'), event(6, "END RequestId: 2"),
              event(2, "START RequestId: 3", "s2"), event(3, f"PermanentError: {A} answered 404", "s2")]

    assert invocations_naming(events, A) == [
        "START RequestId: 1", f'{{"url": "{A}"}}', "END RequestId: 1",
        "START RequestId: 3", f"PermanentError: {A} answered 404"]
