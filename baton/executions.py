"""`baton executions` and `baton history`: past runs of every engine, in one format.

Orchestrator and choreography runs come from the runs table (each run's ``engine`` says which);
Step Functions runs from ListExecutions and GetExecutionHistory. All become the same rows, so a
user reads one kind of table. A choreographed run's steps are the lines its steps log for each
event they handle (``chain_steps``: every event delivered and published, with times), and its
items' ends from the runs table.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from baton import deploy, localcloud
from baton.errors import BatonError
from baton.targets import client, local_port
from engines.client import carried_by_an_earlier_cloud, execution_arn, item_histories
from engines.events import CHAIN_STEP_LOG, DEAD_LETTER, ChainStep
from engines.runs import RunsTable
from pipeline.models import ItemOutcome, RunSummary
from pipeline.steps import CHOREOGRAPHY, STEPFUNCTIONS, STEPS


@dataclass(frozen=True)
class Execution:
    run_id: str
    engine: str
    status: str
    started_at: str
    ended_at: str
    detail: str


@dataclass(frozen=True)
class HistoryRow:
    at: str
    item: str  # the URL, where the engine's history says which one
    step: str
    event: str
    detail: str


def _iso(moment: Any) -> str:
    return moment.isoformat(timespec="seconds") if isinstance(moment, datetime) else str(moment or "")


def function_names(target: str, stack: str) -> dict[str, str]:
    """The stack's functions' physical names, by logical id."""
    cfn = client("cloudformation", target)
    names: dict[str, str] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        names |= {r["LogicalResourceId"]: r["PhysicalResourceId"]
                  for r in page["StackResourceSummaries"]
                  if r["ResourceType"] == "AWS::Lambda::Function"}
    return names


def chain_steps(target: str, stack: str, run_id: str,
                names: dict[str, str] | None = None) -> list[ChainStep]:
    """Every step of a choreographed run, from the lines its steps logged for each event (CHAIN_STEP_LOG),
    in the order the events were delivered. Empty when the logs are gone (expired, deleted)."""
    names = function_names(target, stack) if names is None else names
    logs = client("logs", target)
    found: list[ChainStep] = []
    for step in STEPS:
        if step.resource not in names:
            continue
        kwargs: dict[str, Any] = {"logGroupName": f"/aws/lambda/{names[step.resource]}",
                                  "filterPattern": json.dumps(run_id)}
        while True:
            try:
                page = logs.filter_log_events(**kwargs)
            except logs.exceptions.ResourceNotFoundException:
                break
            found += [chain_step for event in page["events"]
                      if (chain_step := _chain_step(event["message"], run_id)) is not None]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    return sorted(found, key=lambda chain_step: chain_step.delivered_at)


def _chain_step(message: str, run_id: str) -> ChainStep | None:
    try:
        line = json.loads(message)
    except ValueError:
        return None  # START/END/REPORT lines, and any plain print
    if not isinstance(line, dict) or line.get("message") != CHAIN_STEP_LOG:
        return None
    chain_step = ChainStep.model_validate(line.get("chain_step"))
    return chain_step if chain_step.run_id == run_id else None


class Executions:
    def __init__(self, target: str, stack: str) -> None:
        self.target, self.stack = target, stack
        outputs = deploy.stack_outputs(target, stack)
        self.runs = RunsTable(outputs["RunsTableName"], client("dynamodb", target))
        self.sfn = client("stepfunctions", target)
        self.machine = outputs["PipelineStateMachineArn"]

    def recent(self, engine: str | None = None, limit: int = 20) -> list[Execution]:
        """The most recent runs, newest first, of one engine or all."""
        # Every engine records its runs in the runs table; an execution started without baton
        # (or before its runs were recorded there) is listed from Step Functions itself.
        now = datetime.now(UTC)
        restarted_at = cloud_started_at(self.target)
        found = [Execution(r["run_id"], str(r.get("engine", "?")), run_status(r, now, restarted_at),
                           r.get("started_at", ""), r.get("ended_at", ""),
                           f"{r.get('succeeded', 0)} stored, {r.get('failed', 0)} failed "
                           f"of {r.get('total', 0)}"
                           + (f"; redriven {r['redrives']}x" if r.get("redrives") else ""))
                 for r in self.runs.recent_runs(limit, engine)]
        if engine in (None, STEPFUNCTIONS):
            recorded = {execution.run_id for execution in found}
            listed = self.sfn.list_executions(stateMachineArn=self.machine, maxResults=limit)
            found += [self._execution(listed_execution) for listed_execution in listed["executions"]
                      if listed_execution["name"] not in recorded]
        found.sort(key=lambda execution: execution.started_at, reverse=True)
        return found[:limit]

    def _execution(self, listed: dict[str, Any]) -> Execution:
        """A Step Functions execution as a run: a finished one says what its items did, with
        the status `baton run` gives it (an execution that succeeded may have failed items)."""
        status, detail = str(listed["status"]).lower(), ""
        if listed["status"] == "SUCCEEDED":
            output = self.sfn.describe_execution(executionArn=listed["executionArn"]).get("output")
            items = [ItemOutcome.model_validate(item)
                     for item in json.loads(output or "{}").get("items", [])]
            summary = RunSummary.from_outcomes(listed["name"], STEPFUNCTIONS, items)
            status = summary.status.value
            detail = f"{summary.succeeded} stored, {summary.failed} failed of {summary.total}"
        return Execution(listed["name"], STEPFUNCTIONS, status, _iso(listed.get("startDate")),
                         _iso(listed.get("stopDate")), detail)

    def history(self, run_id: str) -> tuple[str, list[HistoryRow]]:
        """The engine that ran ``run_id`` and its step-by-step history."""
        steps = self.runs.item_steps(run_id)
        if steps:
            return "orchestrator", [
                HistoryRow(_iso(step.ended_at), url, step.step,
                           "failed" if step.error_type else "succeeded",
                           f"attempts {step.attempts}"
                           + (f"; {step.error_type}: {step.error}" if step.error_type else ""))
                for url, step in steps]
        summary = self.runs.summary(run_id)
        if summary is not None and summary.engine != STEPFUNCTIONS:
            # a run of the runs table without recorded steps: the choreography's
            rows = [_end_row(at, item) for at, item in self.runs.item_ends(run_id)]
            if summary.engine == CHOREOGRAPHY:
                # Steps first: an item ends the moment its last event is put (a tie), and a
                # stable sort keeps the end after it.
                rows = sorted(chain_rows(chain_steps(self.target, self.stack, run_id)) + rows,
                              key=lambda row: row.at)
            return summary.engine, rows
        try:
            histories = item_histories(self.sfn, execution_arn(self.machine, run_id))
        except self.sfn.exceptions.ExecutionDoesNotExist:
            raise BatonError(f"no run {run_id!r} in any engine; `baton executions` lists "
                             "them") from None
        return STEPFUNCTIONS, stepfunctions_rows(histories, self.runs.item_ends(run_id))


def cloud_started_at(target: str) -> datetime | None:
    """When the local cloud serving ``target`` started (None for any other target): what ran in
    an earlier process of it died with that process."""
    return localcloud.serving_since(local_port()) if target == "local" else None


def run_status(meta: dict[str, Any], now: datetime, restarted_at: datetime | None = None) -> str:
    """A run's status as its META says, but "interrupted" for a run still marked running whose
    carrier is gone: an orchestrated run whose lease expired, or any run last started before the
    local cloud restarted (``restarted_at``). `baton redrive` finishes it."""
    status = str(meta.get("status", "?"))
    if status != "running":
        return status
    lease = meta.get("lease_until")
    if (lease and datetime.fromisoformat(str(lease)) < now) or carried_by_an_earlier_cloud(
            meta, restarted_at):
        return "interrupted"
    return status


def chain_rows(chain: list[ChainStep]) -> list[HistoryRow]:
    """Two rows per choreography step: its event delivered (and when it was published), and
    the event it published in turn (or its way to the dead-letter queue)."""
    rows = []
    for step in chain:
        rows.append(HistoryRow(_iso_ms(step.delivered_at), step.url, step.step,
                               f"{step.consumed} delivered",
                               f"published {_iso_ms(step.published_at)}"))
        sent = "sent to the dead-letter queue" if step.emitted == DEAD_LETTER else (
            f"{step.emitted} published")
        rows.append(HistoryRow(_iso_ms(step.ended_at), step.url, step.step, sent,
                               f"attempts {step.attempts}"
                               + (f"; {step.error_type}: {step.error}" if step.error_type else "")))
    return rows


def _iso_ms(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _end_row(at: datetime, item: ItemOutcome) -> HistoryRow:
    if item.succeeded:
        step, detail = ("store", "stored") if item.record else ("scraper", "not modified")
    else:
        step, detail = item.failed_step or "", f"{item.error_type}: {item.error or ''}"
    return HistoryRow(_iso_ms(at), item.url, step, "succeeded" if item.succeeded else "failed",
                      f"attempts {item.attempts}; {detail}")


def stepfunctions_rows(histories: dict[str | None, list[dict[str, Any]]],
                       ends: list[tuple[datetime, ItemOutcome]]) -> list[HistoryRow]:
    """A Step Functions run's rows: the execution's own events, then each item's (its child
    execution's events, named by its URL, then its end as the tracker recorded it), then the
    ends of the items with no child execution to read (LocalStack keeps none)."""
    ended = dict((item.url, (at, item)) for at, item in ends)
    rows = [_sfn_row(event) for event in histories.get(None, [])]
    for url, history in histories.items():
        if url is not None:
            rows += [_sfn_row(event, url) for event in history]
            if url in ended:
                rows.append(_end_row(*ended.pop(url)))
    return rows + [_end_row(at, item) for at, item in ends if item.url in ended]


def _sfn_row(event: dict[str, Any], item: str = "") -> HistoryRow:
    details: dict[str, Any] = next(
        (value for key, value in event.items() if key.endswith("EventDetails")), {})
    detail = details.get("error", "")
    if details.get("cause"):
        detail += f": {details['cause'][:160]}"
    return HistoryRow(_iso(event.get("timestamp")), item, details.get("name", ""), event["type"],
                      detail)


def table(rows: list[Any]) -> str:
    """Rows of one dataclass as an aligned text table."""
    if not rows:
        return "(none)"
    dicts = [asdict(row) for row in rows]
    headers = list(dicts[0])
    widths = {h: max(len(h), *(len(str(d[h])) for d in dicts)) for h in headers}
    lines = ["  ".join(h.ljust(widths[h]) for h in headers).rstrip()]
    lines += ["  ".join(str(d[h]).ljust(widths[h]) for h in headers).rstrip() for d in dicts]
    return "\n".join(lines)
