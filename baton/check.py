"""`baton check`: whether a run kept "delivered at least once, done once", on any engine.

Three places are read and compared:

- the runs table: the run's META (engine, total, status, ended_at) and each item's outcome;
- the records table: for each URL of the run, its marker ``RUN#<run_id>`` and its history
  entries ``CHECK#<checked_at>#<run_id>`` (one query of the URL's partition, keys only);
- the alerts queue, read without consuming it (``monitoring.recent_alerts``): every alert whose
  body names the run (a flagged page's stored record, or a monitor transition) counts for its
  (run, URL).

``invariants`` turns what was read into a ``Report``; it is pure, so the reading functions stay
small. The invariants: no item lost once the run has ended, no (run, URL) stored or alerted more
than once, and as many markers as items stored with a record. While a run is still running,
``lost`` is not judged (``None``; ``pending`` says how many items have no outcome yet) and the
markers may run ahead of the outcomes by at most the pending items (an item is stored before its
outcome is recorded).

The URLs looked up in the records table are those of the run's items with an outcome (the stored
record's URL, else the requested URL as the store keys it); a URL whose item never got an
outcome is counted in ``lost`` instead.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import AnyHttpUrl, TypeAdapter, ValidationError

from baton import deploy, monitoring
from baton.errors import BatonError
from baton.targets import client
from engines.client import execution_arn
from engines.runs import RunsTable
from pipeline.keys import url_id
from pipeline.models import ItemOutcome, RunStatus
from pipeline.steps import STEPFUNCTIONS

# The JSON report's counts, in the order the text report lists them.
COUNTS = ("submitted", "terminal", "stored", "records", "lost", "duplicate_records",
          "duplicate_history", "duplicate_alerts", "faults_injected")

# Every alert the queue holds, not the newest few `baton alerts` shows.
EVERY_ALERT = 1_000_000

_STOPPED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


@dataclass(frozen=True)
class RunFacts:
    """A run as the runs table records it."""

    run_id: str
    engine: str
    status: str  # META's status, or the stopped execution's for a Step Functions run
    total: int
    ended: bool
    outcomes: list[ItemOutcome]


@dataclass(frozen=True)
class UrlRecords:
    """What the records table holds of one run for one URL."""

    url: str
    markers: int  # 0 or 1: the marker's key is unique
    entries: int  # history entries of this run


@dataclass(frozen=True)
class Report:
    """The invariant report of one run."""

    run_id: str
    engine: str
    status: str
    ended: bool
    submitted: int
    terminal: int
    stored: int
    records: int
    lost: int | None  # None while the run is running
    pending: int
    duplicate_records: int
    duplicate_history: int
    duplicate_alerts: int
    faults: Mapping[str, int] = field(default_factory=dict)  # by kind, as `baton run --faults` kept them

    @property
    def faults_injected(self) -> int:
        """How many faults the run met (`baton run --faults`), every kind together."""
        return sum(self.faults.values())

    def broken(self) -> list[str]:
        """Each broken invariant, named by its key and said why; empty when all hold."""
        problems = []
        if self.lost:
            problems.append(f"lost: {self.lost} of {self.submitted} item(s) have no outcome")
        if self.ended and self.records != self.stored:
            problems.append(f"records: {self.records} marker(s) in the records table for "
                            f"{self.stored} item(s) stored")
        if not self.ended and not self.stored <= self.records <= self.stored + self.pending:
            problems.append(f"records: {self.records} marker(s) in the records table for "
                            f"{self.stored} item(s) stored and {self.pending} pending")
        for key, what in (("duplicate_records", "(run, URL) stored more than once"),
                          ("duplicate_history", "surplus history entries"),
                          ("duplicate_alerts", "(run, URL) alerted more than once")):
            if count := getattr(self, key):
                problems.append(f"{key}: {count} {what}")
        return problems

    def as_json(self) -> dict[str, Any]:
        """The run's id, engine and status and every count, by its JSON key; for a run that met
        injected faults, also ``faults``: how many of each kind."""
        by_kind = {"faults": dict(self.faults)} if self.faults else {}
        return {"run_id": self.run_id, "engine": self.engine, "status": self.status,
                **{key: getattr(self, key) for key in COUNTS}, **by_kind}

    def text(self) -> str:
        """The report as aligned lines, one per count."""
        lost = ((str(self.lost), "items submitted with no outcome") if self.lost is not None
                else ("running", f"{self.pending} item(s) pending: lost is judged once the run "
                                 "has ended"))
        rows = [
            ("submitted", str(self.submitted), "items the run was given"),
            ("terminal", str(self.terminal), "items with exactly one terminal outcome"),
            ("stored", str(self.stored), "items that succeeded with a stored record"),
            ("records", str(self.records), "the run's markers in the records table"),
            ("lost", *lost),
            ("duplicate_records", str(self.duplicate_records), "(run, URL) stored more than once"),
            ("duplicate_history", str(self.duplicate_history),
             "history entries beyond one per (run, URL)"),
            ("duplicate_alerts", str(self.duplicate_alerts), "(run, URL) alerted more than once"),
            ("faults_injected", str(self.faults_injected),
             "faults met (baton run --faults): " + (", ".join(
                 f"{kind} {count}" for kind, count in self.faults.items()) or "none")),
        ]
        width = max(len(row[1]) for row in rows)
        lines = [f"run {self.run_id} ({self.engine}): {self.status}"]
        lines += [f"  {key:<18} {value:>{width}}  {what}" for key, value, what in rows]
        return "\n".join(lines)


# ---- pure logic ------------------------------------------------------------------------------

def invariants(run: RunFacts, records: Iterable[UrlRecords],
               alerts: Iterable[Mapping[str, Any]], faults: Mapping[str, int] | None = None
               ) -> Report:
    """Compare what the runs table, the records table and the alerts queue hold of ``run``
    (``faults``: what it met, by kind, when `baton run --faults` injected some)."""
    records = list(records)
    terminal = len(run.outcomes)
    pending = max(run.total - terminal, 0)
    alerted = Counter((body.get("run_id"), body.get("url")) for body in alerts
                      if body.get("run_id") == run.run_id and body.get("url"))
    return Report(
        run_id=run.run_id,
        engine=run.engine,
        status=run.status if run.ended else RunStatus.RUNNING.value,
        ended=run.ended,
        submitted=run.total,
        terminal=terminal,
        stored=sum(outcome.succeeded and outcome.record is not None for outcome in run.outcomes),
        records=sum(found.markers for found in records),
        lost=pending if run.ended else None,
        pending=pending,
        duplicate_records=sum(found.entries > 1 for found in records),
        duplicate_history=sum(max(found.entries - 1, 0) for found in records),
        duplicate_alerts=sum(count > 1 for count in alerted.values()),
        faults=dict(faults or {}),
    )


def run_keys(sort_keys: Iterable[str], run_id: str) -> tuple[int, int]:
    """(markers, history entries) of ``run_id`` among the sort keys of one URL's partition."""
    markers = entries = 0
    for key in sort_keys:
        if key == f"RUN#{run_id}":
            markers += 1
        # CHECK#<checked_at>#<run_id>: the timestamp holds no '#', a run id may not either.
        elif key.startswith("CHECK#") and key.split("#", 2)[2:] == [run_id]:
            entries += 1
    return markers, entries


def stored_url(outcome: ItemOutcome) -> str | None:
    """The URL the store keys the item under: its record's, else the requested URL as the
    store's model writes it (None for a URL the store could never have been given)."""
    if outcome.record is not None:
        return str(outcome.record.url)
    try:
        return str(_HTTP_URL.validate_python(outcome.url))
    except ValidationError:
        return None


# ---- reading ---------------------------------------------------------------------------------

def faults_key(run_id: str) -> str:
    """Where `baton run --faults` keeps the faults a run met, beside its request."""
    return f"runs/{run_id}/faults.json"


def read_faults(s3: Any, bucket: str, run_id: str) -> dict[str, int]:
    """The faults the run met, by kind; empty for a run without injected faults."""
    try:
        body = s3.get_object(Bucket=bucket, Key=faults_key(run_id))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return {}
    try:
        kept = json.loads(body)
    except ValueError as error:
        raise BatonError(f"the faults kept for run {run_id} are not JSON ({error}); "
                         f"remove s3://{bucket}/{faults_key(run_id)}") from error
    return {str(kind): int(count) for kind, count in kept.items()} if isinstance(kept, dict) else {}


def read_run(runs: RunsTable, run_id: str) -> RunFacts:
    """The run's META and its items' outcomes; BatonError when the runs table has no such run."""
    meta = runs.meta(run_id)
    if meta is None:
        raise BatonError(f"no run {run_id!r} in the runs table; `baton executions` lists the runs")
    return RunFacts(run_id=run_id, engine=str(meta.get("engine", "?")),
                    status=str(meta.get("status", RunStatus.RUNNING.value)),
                    total=int(meta.get("total", 0)), ended="ended_at" in meta,
                    outcomes=list(runs.finished_items(run_id).values()))


def execution_stopped(sfn: Any, machine_arn: str, run_id: str) -> str | None:
    """The status of the run's Step Functions execution once it has stopped, else None (also
    when there is no such execution: nothing says the run will not start)."""
    arn = execution_arn(machine_arn, run_id)
    try:
        status = str(sfn.describe_execution(executionArn=arn)["status"])
    except sfn.exceptions.ExecutionDoesNotExist:
        return None
    return status if status in _STOPPED else None


def url_records(dynamodb: Any, table_name: str, url: str, run_id: str) -> UrlRecords:
    """Count the run's marker and history entries in the URL's partition (keys only)."""
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"URL#{url_id(url)}"}},
        "ProjectionExpression": "sk",
        "ConsistentRead": True,
    }
    sort_keys: list[str] = []
    while True:
        page = dynamodb.query(**request)
        sort_keys += [item["sk"]["S"] for item in page.get("Items", [])]
        if not page.get("LastEvaluatedKey"):
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    markers, entries = run_keys(sort_keys, run_id)
    return UrlRecords(url, markers, entries)


def check(target: str, stack: str, run_id: str) -> Report:
    """Read the run from the deployed stack and report its invariants."""
    outputs = deploy.stack_outputs(target, stack)
    dynamodb = client("dynamodb", target)
    run = read_run(RunsTable(outputs["RunsTableName"], dynamodb), run_id)
    if run.engine == STEPFUNCTIONS and not run.ended:
        # A failed or aborted execution never ends its run in the runs table: its missing items
        # are lost, not pending.
        stopped = execution_stopped(client("stepfunctions", target),
                                    outputs["PipelineStateMachineArn"], run_id)
        if stopped is not None:
            run = RunFacts(run.run_id, run.engine, f"execution {stopped.lower()}", run.total,
                           True, run.outcomes)
    urls = dict.fromkeys(url for url in map(stored_url, run.outcomes) if url is not None)
    records = [url_records(dynamodb, outputs["RecordsTableName"], url, run_id) for url in urls]
    alerts = [alert.body for alert in monitoring.recent_alerts(target, stack, EVERY_ALERT)]
    bucket = outputs.get("DataBucketName")
    faults = read_faults(client("s3", target), bucket, run_id) if bucket else {}
    return invariants(run, records, alerts, faults)

