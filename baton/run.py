"""`baton run`: start a pipeline run on a deployed stack with either engine, follow it, summarise it.

Every engine's result is turned into the same ``RunSummary`` (the pipeline's own contract), so
the table, the JSON and the tests do not care which engine ran.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baton import deploy
from baton.errors import BatonError
from baton.targets import client
from pipeline.choreography import start_choreography
from pipeline.models import MAX_CONCURRENCY, ItemOutcome, RunRequest, RunSummary, url_problem
from pipeline.policy import POLICY
from pipeline.runs import RunsTable

ENGINES = ("orchestrator", "stepfunctions", "choreography")
POLL_S = 0.5


def read_watchlist(path: Path) -> list[str]:
    """URLs of a watchlist file: one per line, '#' comments and blank lines ignored.

    Any bad line fails the whole file, naming every bad line, so nothing half-read is run.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise BatonError(f"cannot read the watchlist: {error}") from error
    urls, problems = [], []
    for number, line in enumerate(lines, start=1):
        url = line.split("#", 1)[0].strip()
        if not url:
            continue
        if (why := url_problem(url)) is not None:
            problems.append(f"  line {number}: {url!r}: {why}")
        urls.append(url)
    if problems:
        raise BatonError(f"{path} has bad lines (nothing was run):\n" + "\n".join(problems))
    return urls


def run_request(urls: list[str], max_concurrency: int) -> RunRequest:
    """A validated run request: at least one URL, all well formed, duplicates dropped."""
    if not urls:
        raise BatonError("no URLs to run: give --url URL (repeatable) or --watchlist FILE")
    bad = [f"  {url!r}: {why}" for url in urls if (why := url_problem(url)) is not None]
    if bad:
        raise BatonError("malformed URL(s), nothing was run:\n" + "\n".join(bad))
    if not 1 <= max_concurrency <= MAX_CONCURRENCY:
        raise BatonError(f"--max-concurrency must be between 1 and {MAX_CONCURRENCY}")
    run_id = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    return RunRequest(run_id=run_id, urls=list(dict.fromkeys(urls)), max_concurrency=max_concurrency)


@dataclass
class Progress:
    total: int
    done: int = 0
    failed: int = 0
    current: str = ""


class Engine:
    """One way to run the pipeline on a deployed stack."""

    name = ""

    def __init__(self, target: str, stack: str) -> None:
        self.target = target
        self.outputs = deploy.stack_outputs(target, stack)

    def start(self, request: RunRequest) -> str:
        raise NotImplementedError

    def poll(self, handle: str, request: RunRequest) -> tuple[Progress, RunSummary | None]:
        """Progress so far, and the summary once the run has finished."""
        raise NotImplementedError


class RunsTableEngine(Engine):
    """An engine that records its runs in the runs table, where they are followed (the handle
    is the run's id)."""

    def runs(self) -> RunsTable:
        return RunsTable(self.outputs["RunsTableName"], client("dynamodb", self.target))

    def poll(self, handle: str, request: RunRequest) -> tuple[Progress, RunSummary | None]:
        summary = self.runs().summary(handle)
        if summary is None:
            return Progress(len(request.urls), current="starting"), None
        progress = Progress(summary.total, summary.succeeded + summary.failed, summary.failed)
        return progress, (summary if summary.pending == 0 and summary.ended_at else None)


class OrchestratorEngine(RunsTableEngine):
    name = "orchestrator"

    def start(self, request: RunRequest) -> str:
        # Asynchronous, so a run longer than one invocation (it continues itself) is followed
        # the same way as a short one: through the runs table.
        client("lambda", self.target).invoke(
            FunctionName=self.outputs["OrchestratorFunctionName"], InvocationType="Event",
            Payload=request.model_dump_json().encode())
        return request.run_id


class ChoreographyEngine(RunsTableEngine):
    name = "choreography"

    def start(self, request: RunRequest) -> str:
        # Opens the run (so the tracker knows its total), then one PageRequested per URL.
        start_choreography(request, self.outputs["EventBusName"], self.runs(),
                           client("events", self.target))
        return request.run_id


class StepFunctionsEngine(Engine):
    name = "stepfunctions"

    def start(self, request: RunRequest) -> str:
        response = client("stepfunctions", self.target).start_execution(
            stateMachineArn=self.outputs["PipelineStateMachineArn"], name=request.run_id,
            input=json.dumps(request.state_machine_input()))
        return str(response["executionArn"])

    def poll(self, handle: str, request: RunRequest) -> tuple[Progress, RunSummary | None]:
        sfn = client("stepfunctions", self.target)
        described = sfn.describe_execution(executionArn=handle)
        history = execution_history(sfn, handle)
        progress = Progress(len(request.urls), current=last_task_state(history))
        if described["status"] == "RUNNING":
            return progress, None
        if described["status"] != "SUCCEEDED":
            raise BatonError(f"execution {handle} ended {described['status']}: "
                             f"{described.get('error', '')} {described.get('cause', '')}")
        output = json.loads(described["output"])
        items = [with_attempts(ItemOutcome.model_validate(item), history)
                 for item in output["items"]]
        summary = RunSummary.from_outcomes(request.run_id, self.name, items,
                                           started_at=described.get("startDate"),
                                           ended_at=described.get("stopDate"))
        progress.done, progress.failed = summary.total, summary.failed
        return progress, summary


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events += page["events"]
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def last_task_state(history: list[dict[str, Any]]) -> str:
    for event in reversed(history):
        details = event.get("stateEnteredEventDetails")
        if details:
            return str(details["name"])
    return ""


def with_attempts(item: ItemOutcome, history: list[dict[str, Any]]) -> ItemOutcome:
    """Set an item's attempts from the history: 1 + its retried failures.

    The history does not say which Map iteration an event belongs to, so a failure is the
    item's when the error's message names its URL (the steps' errors do).
    """
    retried = sum(
        1 for event in history
        if (failed := event.get("taskFailedEventDetails"))
        and failed.get("error") in POLICY.retry_on and item.url in failed.get("cause", ""))
    final_failure = 0 if item.succeeded or item.error_type not in POLICY.retry_on else 1
    return item.model_copy(update={"attempts": max(item.attempts, 1 + retried - final_failure)})


ENGINE_CLASSES: dict[str, type[Engine]] = {"orchestrator": OrchestratorEngine,
                                           "stepfunctions": StepFunctionsEngine,
                                           "choreography": ChoreographyEngine}


def run(engine_name: str, target: str, stack: str, request: RunRequest, wait: bool = True,
        show: Callable[[Progress], None] | None = None, timeout_s: float = 3600) -> RunSummary | str:
    """Start the run; with ``wait``, follow it to its summary, else return its handle."""
    if engine_name not in ENGINE_CLASSES:
        raise BatonError(f"unknown engine {engine_name!r}; choose one of: {', '.join(ENGINES)}")
    engine = ENGINE_CLASSES[engine_name](target, stack)
    handle = engine.start(request)
    if not wait:
        return handle
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        progress, summary = engine.poll(handle, request)
        if show:
            show(progress)
        if summary is not None:
            return summary
        time.sleep(POLL_S)
    raise BatonError(f"run {request.run_id} did not finish in {timeout_s:.0f} s; it may still run")


def progress_line(progress: Progress, width: int = 30) -> str:
    filled = int(width * progress.done / max(progress.total, 1))
    current = f" · {progress.current}" if progress.current else ""
    return (f"[{'#' * filled}{'.' * (width - filled)}] {progress.done}/{progress.total} done, "
            f"{progress.failed} failed{current}")


def show_progress(progress: Progress) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r" + progress_line(progress).ljust(100))
        sys.stderr.flush()


def summary_table(summary: RunSummary) -> str:
    rows = [("URL", "outcome", "verdict", "score", "changed", "attempts", "ms")]
    for item in summary.items:
        record = item.record
        outcome = "stored" if item.succeeded and record else (
            "not modified" if item.succeeded else f"{item.error_type} in {item.failed_step}")
        rows.append((item.url, outcome, record.verdict.value if record else "",
                     f"{record.score:.2f}" if record else "", record.change.value if record else "",
                     str(item.attempts), f"{item.duration_ms:.0f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.append(f"run {summary.run_id} ({summary.engine}): {summary.succeeded} stored, "
                 f"{summary.failed} failed, {summary.flagged} flagged of {summary.total}")
    return "\n".join(lines)
