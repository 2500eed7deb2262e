"""Reads a deployed stack's runs, in every engine, into ``RunView``s (see ``baton.ui.model``).

- orchestrator: the runs table's items and their steps (one span per step, its attempts counted);
- stepfunctions: the execution's history, one bar per task attempt (``sfn_bars``);
- choreography: one bar per step, from the lines its steps log for each event they handle
  (``baton.executions.chain_steps``, what `baton history` shows); one bar per item, from the
  runs table's item ends, where those logs are gone.

Log lines come from CloudWatch Logs: the lines of the invocation(s) that mention the bar's URL
within the bar's time.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from baton import cost as costs
from baton import deploy
from baton.errors import BatonError
from baton.executions import chain_steps, cloud_started_at, function_names, run_status
from baton.targets import client
from baton.ui.model import STEPS, Bar, RunView
from engines.client import execution_arn, execution_history
from engines.events import DEAD_LETTER, ChainStep
from engines.runs import RunsTable
from pipeline.models import FLAGGED, ItemOutcome, StepRecord
from pipeline.steps import STEPFUNCTIONS
from pipeline.steps import STEPS as REGISTRY

LOG_MARGIN = timedelta(milliseconds=500)
# The logical ids of the stack's functions, by the step (or role) they play.
FUNCTION_IDS = {step.name: step.resource for step in REGISTRY} | {
    "orchestrator": "OrchestratorFunction", "tracker": "TrackerFunction"}


@dataclass(frozen=True)
class RunRow:
    """One line of the Runs page."""

    run_id: str
    engine: str
    status: str
    started_at: str
    ended_at: str
    total: int
    succeeded: int
    failed: int
    flagged: int
    duration_s: float | None
    cost_usd: float | None


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value) if value else None


class Reader:
    """Everything the UI shows about one deployed stack."""

    def __init__(self, target: str, stack: str) -> None:
        self.target = target
        self.stack = stack
        self.outputs = deploy.stack_outputs(target, stack)
        self.runs = RunsTable(self.outputs["RunsTableName"], client("dynamodb", target))
        self.sfn = client("stepfunctions", target)
        self.machine = self.outputs["PipelineStateMachineArn"]
        self._finished: dict[str, RunView] = {}  # an ended run does not change: read it once
        self._lock = threading.Lock()

    # ---- runs ---------------------------------------------------------------------------------

    def recent(self, limit: int = 50) -> list[RunRow]:
        """Every engine's runs, newest first."""
        rows = [self._row(meta) for meta in self.runs.recent_runs(limit)]
        recorded = {row.run_id for row in rows}  # every engine's runs, Step Functions' included
        listed = self.sfn.list_executions(stateMachineArn=self.machine, maxResults=limit)
        rows += [self._sfn_row(execution) for execution in listed["executions"]
                 if execution["name"] not in recorded]
        rows.sort(key=lambda row: row.started_at, reverse=True)
        return rows[:limit]

    def _row(self, meta: dict[str, Any]) -> RunRow:
        view = self.run(meta["run_id"]) if meta.get("ended_at") else None
        started, ended = _time(meta.get("started_at")), _time(meta.get("ended_at"))
        status = run_status(meta, datetime.now(UTC), cloud_started_at(self.target))
        return RunRow(meta["run_id"], str(meta.get("engine", "?")), status,
                      meta.get("started_at", ""), meta.get("ended_at", ""), int(meta.get("total", 0)),
                      int(meta.get("succeeded", 0)), int(meta.get("failed", 0)),
                      int(meta.get("flagged", 0)),
                      (ended - started).total_seconds() if started and ended else None,
                      self.cost(view).total_usd if view else None)

    def _sfn_row(self, execution: dict[str, Any]) -> RunRow:
        name, status = execution["name"], execution["status"].lower()
        view = self.run(name) if status != "running" else None
        started, ended = execution.get("startDate"), execution.get("stopDate")
        return RunRow(name, "stepfunctions", view.status if view else status,
                      started.isoformat() if started else "", ended.isoformat() if ended else "",
                      view.total if view else 0, view.succeeded if view else 0,
                      view.failed if view else 0, view.flagged if view else 0,
                      (ended - started).total_seconds() if started and ended else None,
                      self.cost(view).total_usd if view else None)

    def run(self, run_id: str) -> RunView:
        """One run of any engine."""
        with self._lock:
            if run_id in self._finished:
                return self._finished[run_id]
        meta = self.runs.meta(run_id)
        if meta is None or meta.get("engine") == STEPFUNCTIONS:
            view = self._sfn_run(run_id, meta)
        else:
            view = self._table_run(run_id, meta)
        if view.ended_at is not None:
            with self._lock:
                self._finished[run_id] = view
        return view

    def _table_run(self, run_id: str, meta: dict[str, Any]) -> RunView:
        ends = self.runs.item_ends(run_id)
        view = RunView(run_id, str(meta.get("engine", "?")), str(meta.get("status", "?")),
                       _time(meta.get("started_at")), _time(meta.get("ended_at")),
                       int(meta.get("total", 0)), int(meta.get("succeeded", 0)),
                       int(meta.get("failed", 0)), int(meta.get("flagged", 0)),
                       [outcome for _, outcome in ends],
                       continuations=int(meta.get("continuations", 0)))
        if view.engine == "choreography":
            chain = chain_steps(self.target, self.stack, run_id, self.function_names)
            if chain:
                view.bars = [_event_bar(chain_step) for chain_step in chain]
                view.notes.append("one bar per step, from its event's delivery to the next "
                                  "event's publication (the steps' logs); retries are counted "
                                  "in its bar, not drawn apart")
            else:
                view.bars = [_chain_bar(ended, outcome) for ended, outcome in ends]
                view.notes.append("the steps' logs are gone: one bar per item, from its start "
                                  "to its end event")
        else:
            view.bars = [_step_bar(url, step) for url, step in self.runs.item_steps(run_id)]
            view.notes.append("the runs table records one span per step: retries are counted "
                              "in its bar, not drawn apart")
        return view

    def _sfn_run(self, run_id: str, meta: dict[str, Any] | None) -> RunView:
        """A Step Functions run: its items as the tracker recorded them in the runs table (or,
        for an execution not recorded there, from its output), its bars from its history."""
        arn = execution_arn(self.machine, run_id)
        try:
            described = self.sfn.describe_execution(executionArn=arn)
        except self.sfn.exceptions.ExecutionDoesNotExist:
            raise BatonError(f"no run {run_id!r} in any engine") from None
        history = execution_history(self.sfn, arn)
        items: list[ItemOutcome] = []
        if meta is not None:
            items = [outcome for _, outcome in self.runs.item_ends(run_id)]
        elif described["status"] == "SUCCEEDED":
            items = [ItemOutcome.model_validate(item)
                     for item in json.loads(described["output"]).get("items", [])]
        status = described["status"].lower()
        if status == "succeeded" and any(not item.succeeded for item in items):
            status = "failed-items"
        # The input points to the items (a Distributed Map reads them from S3) and says how many.
        state_input = json.loads(described.get("input") or "{}")
        total = int(state_input.get("total", len(state_input.get("urls", []))))
        bars = sfn_bars(history, [item.url for item in items])
        return RunView(
            run_id, "stepfunctions", status, described.get("startDate"), described.get("stopDate"),
            total, sum(item.succeeded for item in items), sum(not item.succeeded for item in items),
            sum(bool(item.record and item.record.verdict in FLAGGED) for item in items),
            items, bars, state_transitions=state_transitions(history, items),
            notes=["the history does not link a task to its Map iteration: attempts are paired "
                   "with their URL by order"])

    # ---- cost ---------------------------------------------------------------------------------

    @cached_property
    def function_names(self) -> dict[str, str]:
        """The stack's functions' physical names, by logical id."""
        return function_names(self.target, self.stack)

    @cached_property
    def memory_mb(self) -> dict[str, int]:
        """Each step's (and the orchestrator's and tracker's) configured memory."""
        lambdas = client("lambda", self.target)
        return {role: int(lambdas.get_function_configuration(
                    FunctionName=self.function_names[logical])["MemorySize"])
                for role, logical in FUNCTION_IDS.items()}

    def cost(self, view: RunView) -> costs.Cost:
        """The run's estimated AWS cost."""
        return costs.cost(costs.trace_of(view, self.memory_mb))

    # ---- objects -----------------------------------------------------------------------------

    def object_text(self, key: str, limit: int = 65536) -> str:
        """The start of a stored page or text (pages travel by S3 key), as text."""
        s3 = client("s3", self.target)
        try:
            body = s3.get_object(Bucket=self.outputs["DataBucketName"], Key=key,
                                 Range=f"bytes=0-{limit - 1}")["Body"].read()
        except s3.exceptions.NoSuchKey:
            raise BatonError(f"no object {key!r} in the data bucket") from None
        return body.decode("utf-8", errors="replace")

    # ---- logs ---------------------------------------------------------------------------------

    def log_lines(self, bar: Bar) -> list[str]:
        """The CloudWatch log lines of the invocation(s) behind a bar, where they can be found."""
        steps = STEPS if bar.step == "chain" else (bar.step,)
        logs = client("logs", self.target)
        start = int((bar.started_at - LOG_MARGIN).timestamp() * 1000)
        end = int((bar.ended_at + LOG_MARGIN).timestamp() * 1000)
        lines: list[str] = []
        for step in steps:
            if step not in FUNCTION_IDS or FUNCTION_IDS[step] not in self.function_names:
                continue
            group = f"/aws/lambda/{self.function_names[FUNCTION_IDS[step]]}"
            try:
                found = logs.filter_log_events(logGroupName=group, startTime=start, endTime=end,
                                               filterPattern=json.dumps(bar.url))["events"]
                streams = sorted({event["logStreamName"] for event in found})
                if streams:
                    found = logs.filter_log_events(logGroupName=group, logStreamNames=streams,
                                                   startTime=start, endTime=end)["events"]
            except logs.exceptions.ResourceNotFoundException:
                continue
            lines += [f"[{step}] {line}" for line in invocations_naming(found, bar.url)]
        return lines


def invocations_naming(events: list[dict[str, Any]], text: str) -> list[str]:
    """The log lines of the invocations (START … REPORT of one stream) in which ``text`` appears."""
    by_stream: dict[str, list[list[str]]] = {}
    for event in sorted(events, key=lambda event: event["timestamp"]):
        message = event["message"].rstrip()
        invocations = by_stream.setdefault(event.get("logStreamName", ""), [[]])
        if message.startswith("START RequestId:") and invocations[-1]:
            invocations.append([])
        invocations[-1].append(message)
    return [line for invocations in by_stream.values() for lines in invocations
            if any(text in line for line in lines) for line in lines]


def _step_bar(url: str, step: StepRecord) -> Bar:
    return Bar(url, step.step, 1, step.attempts, step.started_at, step.ended_at,
               "failed" if step.error_type else "succeeded", step.error_type, step.error)


def _event_bar(chain_step: ChainStep) -> Bar:
    failed = chain_step.emitted == DEAD_LETTER or chain_step.error_type is not None
    return Bar(chain_step.url, chain_step.step, 1, chain_step.attempts, chain_step.delivered_at,
               chain_step.ended_at, "failed" if failed else "succeeded", chain_step.error_type,
               chain_step.error,
               input={"event": chain_step.consumed,
                      "published_at": chain_step.published_at.isoformat(),
                      "delivered_at": chain_step.delivered_at.isoformat()},
               output={"event": chain_step.emitted, "published_at": chain_step.ended_at.isoformat()})


def _chain_bar(ended: datetime, outcome: ItemOutcome) -> Bar:
    return Bar(outcome.url, "chain", 1, outcome.attempts,
               ended - timedelta(milliseconds=outcome.duration_ms), ended,
               "succeeded" if outcome.succeeded else "failed", outcome.error_type, outcome.error,
               output=outcome.model_dump(mode="json", exclude_none=True))


# ---- Step Functions history ----------------------------------------------------------------------

TERMINAL = {"TaskSucceeded", "TaskFailed", "TaskTimedOut"}


def state_transitions(history: list[dict[str, Any]], items: list[ItemOutcome]) -> int:
    """State transitions as billed: every state entered, plus every retried task attempt."""
    entered = sum(1 for event in history if event["type"].endswith("StateEntered"))
    attempts = sum(1 for event in history if event["type"] == "TaskScheduled")
    tasks_entered = sum(1 for event in history if event["type"] == "TaskStateEntered")
    if tasks_entered:
        return entered + attempts - tasks_entered
    # An emulator may leave the iterations' states out of the history: count their tasks'
    # attempts, plus the choice and pass states each item's path through the ASL enters.
    return entered + attempts + sum(_untasked_states(item) for item in items)


def _untasked_states(item: ItemOutcome) -> int:
    # The choice and pass states of an item's path (its Tasks, Record outcome's included, are
    # counted from the history).
    if item.succeeded:
        # Is it unchanged? then Keep validators and Record success (or Skip unchanged page)
        return 3 if item.record else 2
    if item.failed_step in (None, STEPS[0]):
        return 1  # Record fetch failure
    return 3  # Is it unchanged?, Keep validators, Record … failure


def _payload(event: dict[str, Any]) -> dict[str, Any]:
    details = event.get("taskSucceededEventDetails", {})
    try:
        payload = json.loads(details.get("output") or "{}").get("Payload", {})
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _url_of(event: dict[str, Any], urls: list[str]) -> str | None:
    payload = _payload(event)
    if "url" in payload or "page" in payload:
        return str(payload.get("url") or payload["page"]["url"])
    cause = next((v.get("cause", "") for k, v in event.items() if k.endswith("EventDetails")
                  and isinstance(v, dict)), "")
    # The longest URL the error names, so ".../a?x" is not taken for ".../a?x&y".
    named = [url for url in urls if url in cause]
    return max(named, key=len) if named else None


def sfn_bars(history: list[dict[str, Any]], known: list[str] | None = None) -> list[Bar]:
    """One bar per task attempt of an execution's history (``known``: the run's URLs, which a
    failure's error names, when the execution's input does not list them).

    Each Map iteration runs its tasks one after the other, so a task scheduled right after an
    iteration's success belongs to that iteration; other scheduled tasks start an iteration (paired
    in order) or retry a failed one (paired with the latest, since the retry waits its interval).
    """
    started = next((e for e in history if e["type"] == "ExecutionStarted"), None)
    urls: list[str] = []
    if started:
        urls = json.loads(started["executionStartedEventDetails"].get("input") or "{}").get("urls", [])
    urls = urls or list(known or [])
    owner: dict[int, str] = {}  # a TaskScheduled's id → its URL, when known from its predecessor
    step_of: dict[str, int] = {}  # URL → index of its current step
    last: dict[str, dict[str, Any]] = {}  # URL → its last terminal event
    pending: list[dict[str, Any]] = []  # scheduled tasks not yet paired
    inputs: dict[str, dict[str, Any]] = {}  # URL → its last task's result
    previous_terminal: tuple[str, bool] | None = None  # (URL, goes on) of the latest end
    bars: list[Bar] = []
    for event in history:
        kind = event["type"]
        if kind == "TaskScheduled":
            if previous_terminal and previous_terminal[1]:
                owner[event["id"]] = previous_terminal[0]
            previous_terminal = None
            pending.append(event)
            continue
        if kind not in TERMINAL:
            continue
        details = next(v for k, v in event.items() if k.endswith("EventDetails"))
        recorded = _payload(event).get("outcome")
        if isinstance(recorded, dict):  # the tracker recording the item's end: not a step
            _pair(pending, owner, str(recorded.get("url")), last.get(str(recorded.get("url"))))
            previous_terminal = None
            continue
        url = _url_of(event, urls)
        if url is None:
            previous_terminal = None
            continue
        scheduled = _pair(pending, owner, url, last.get(url))
        index = step_of.get(url, 0)
        step = STEPS[min(index, len(STEPS) - 1)]
        payload = _payload(event)
        failed = kind != "TaskSucceeded"
        attempt = 1 + sum(1 for bar in bars if bar.url == url and bar.step == step)
        bars.append(Bar(url, step, attempt, 1,
                        scheduled["timestamp"] if scheduled else event["timestamp"],
                        event["timestamp"], "failed" if failed else "succeeded",
                        details.get("error") if failed else None,
                        _cause(details.get("cause")) if failed else None,
                        # A task's input is its iteration's previous result (the URL, first).
                        input=inputs.get(url, {"url": url}), output=payload or None))
        if payload:
            inputs[url] = payload
        last[url] = event
        if not failed:
            step_of[url] = index + 1
        # A success goes on at once: to the next step, or to recording the item's end.
        previous_terminal = (url, not failed)
    return _mark_retried(bars)


def _pair(pending: list[dict[str, Any]], owner: dict[int, str], url: str,
          last: dict[str, Any] | None) -> dict[str, Any] | None:
    mine = [s for s in pending if owner.get(s["id"]) == url]
    if mine:
        chosen = mine[-1]
    else:
        free = [s for s in pending if s["id"] not in owner
                and (last is None or s["id"] > last["id"])]
        if not free:
            return None
        chosen = free[0] if last is None else free[-1]  # a first attempt, or a retry
    pending.remove(chosen)
    return chosen


def _mark_retried(bars: list[Bar]) -> list[Bar]:
    """A failed attempt followed by another attempt of the same step was retried."""
    latest: dict[tuple[str, str], int] = {}  # (URL, step) → its last attempt: one pass, not n²
    for bar in bars:
        latest[(bar.url, bar.step)] = max(bar.attempt, latest.get((bar.url, bar.step), 0))
    return [replace(bar, attempts=1, outcome="retried")
            if bar.outcome == "failed" and latest[(bar.url, bar.step)] > bar.attempt else bar
            for bar in bars]


def _cause(cause: str | None) -> str | None:
    if not cause:
        return cause
    try:
        return str(json.loads(cause).get("errorMessage", cause))
    except (ValueError, AttributeError):
        return cause
