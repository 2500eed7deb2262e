"""`baton check` over a runs table, a records table and an alerts queue in moto, written by the
same code the engines, the store and the tracker use (the stack's outputs and the CLI's clients
are replaced by moto's)."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from baton import monitoring
from baton.cli import main
from engines.alerts import FlaggedPageAlerts, alert_once
from engines.runs import RunsTable
from pipeline.alerts import SnsAlerts
from pipeline.dynamodb import to_item
from pipeline.models import ItemOutcome, RunStatus, RunSummary, StoredRecord
from store.dal import AlreadyStored, PageTable, check_sort_key, partition_key
from tests.integration.conftest import table_properties

A, B, C = "http://a.test/", "http://b.test/", "http://c.test/"
AT = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


@pytest.fixture
def stack(aws: None, records_table: str, alert_queue: dict[str, str],
          monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The runs table, the records table, the alert topic and its queue, a state machine."""
    suffix = uuid.uuid4().hex[:8]
    runs = f"baton-runs-{suffix}"
    boto3.client("dynamodb").create_table(TableName=runs, **table_properties("RunsTable"))
    machine = boto3.client("stepfunctions").create_state_machine(
        name=f"pipeline-{suffix}", roleArn="arn:aws:iam::123456789012:role/pipeline",
        definition=json.dumps({"StartAt": "Wait", "States": {
            "Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}),
    )["stateMachineArn"]
    outputs = {"RunsTableName": runs, "RecordsTableName": records_table,
               "AlertTopicArn": alert_queue["topic"], "AlertsQueueUrl": alert_queue["queue"],
               "PipelineStateMachineArn": machine}
    monkeypatch.setattr("baton.deploy.stack_outputs", lambda target, stack: outputs)
    monkeypatch.setattr("baton.targets.require_reachable", lambda target: None)
    for module in ("baton.check.client", "baton.monitoring.client"):
        monkeypatch.setattr(module, lambda service, target="local": boto3.client(service))
    return outputs


class Pipeline:
    """Writes what an engine, the store and the alerts write for one run's items."""

    def __init__(self, stack: dict[str, str], run_id: str) -> None:
        self.run_id = run_id
        self.runs = RunsTable(stack["RunsTableName"])
        self.records = PageTable(stack["RecordsTableName"])
        self.alerts = FlaggedPageAlerts(SnsAlerts(stack["AlertTopicArn"]))

    def open(self, engine: str, total: int) -> None:
        self.runs.open_run(self.run_id, engine=engine, total=total, started_at=AT,
                           continuation=0)

    def store(self, url: str, verdict: str = "allow") -> ItemOutcome:
        """The store's save (idempotent per run and URL) and the flagged page's one alert."""
        record = StoredRecord.model_validate({
            "run_id": self.run_id, "url": url, "content_hash": "h", "text_key": "texts/h.txt",
            "change": "new", "verdict": verdict, "score": 0.9, "checked_at": AT})
        with contextlib.suppress(AlreadyStored):  # a redelivery: stored the first time
            self.records.save(record, expected_version=None)
        alert_once(self.runs, self.alerts, self.run_id, url, record)
        return ItemOutcome(run_id=self.run_id, url=url, succeeded=True, record=record)

    def fail(self, url: str) -> ItemOutcome:
        return ItemOutcome(run_id=self.run_id, url=url, succeeded=False,
                           error_type="PermanentError", error="HTTP 404", failed_step="scraper")

    def orchestrate(self, outcomes: list[ItemOutcome], total: int) -> None:
        """The orchestrator's records: each item started and finished, then the summary."""
        for outcome in outcomes:
            self.runs.item_started(self.run_id, outcome.url, AT)
            self.runs.item_finished(outcome, AT)
        summary = RunSummary.from_outcomes(self.run_id, "orchestrator", outcomes, total=total,
                                           started_at=AT, ended_at=AT)
        # Ended even with items left, as a run that gave up on them would be.
        self.runs.save_summary(summary.model_copy(update={"ended_at": AT}))


def check(run_id: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    code = main(["check", run_id, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out else {}, err


def test_an_orchestrated_run_that_kept_its_promises_holds_every_invariant(stack, capsys):
    run = Pipeline(stack, "run-orch")
    run.open("orchestrator", 3)
    run.orchestrate([run.store(A, "block"), run.fail(B), run.store(C)], total=3)

    code, report, err = check("run-orch", capsys)

    assert code == 0, err
    assert report == {"run_id": "run-orch", "engine": "orchestrator", "status": "failed-items",
                      "submitted": 3, "terminal": 3, "stored": 2, "records": 2, "lost": 0,
                      "duplicate_records": 0, "duplicate_history": 0, "duplicate_alerts": 0,
                      "faults_injected": 0}


def test_redelivered_ends_of_a_choreographed_run_count_store_and_alert_once(stack, capsys):
    run = Pipeline(stack, "run-choreo")
    run.open("choreography", 2)
    for _ in range(2):  # every end delivered twice: stored, alerted and counted once each
        run.runs.record(run.store(A, "review"), AT)
        run.runs.record(run.fail(B), AT)

    code, report, err = check("run-choreo", capsys)

    assert code == 0, err
    assert (report["engine"], report["status"]) == ("choreography", RunStatus.FAILED_ITEMS.value)
    assert [report[key] for key in ("submitted", "terminal", "stored", "records", "lost",
                                    "duplicate_records", "duplicate_alerts")] == [2, 2, 1, 1, 0,
                                                                                  0, 0]
    assert len(monitoring.recent_alerts("local", "baton", 100)) == 1  # the queue is not consumed


def test_a_url_stored_and_alerted_twice_by_one_run_is_reported_and_exits_1(stack, capsys):
    run = Pipeline(stack, "run-twice")
    run.open("choreography", 1)
    run.runs.record(run.store(A, "block"), AT)
    # What a store without its marker's guard, and an alert without its claim, would leave.
    later = AT.replace(second=1)
    boto3.client("dynamodb").put_item(TableName=stack["RecordsTableName"], Item=to_item({
        "pk": partition_key(A), "sk": check_sort_key(later, "run-twice"), "run_id": "run-twice"}))
    record = run.runs.finished_items("run-twice").popitem()[1].record
    assert record is not None
    run.alerts.flagged(record)

    code, report, err = check("run-twice", capsys)

    assert code == 1
    assert (report["duplicate_records"], report["duplicate_history"],
            report["duplicate_alerts"]) == (1, 1, 1)
    assert "broken: duplicate_records: 1" in err
    assert "broken: duplicate_history: 1" in err
    assert "broken: duplicate_alerts: 1" in err


def test_an_ended_run_missing_an_items_outcome_lost_it(stack, capsys):
    run = Pipeline(stack, "run-lost")
    run.open("orchestrator", 3)
    run.orchestrate([run.store(A)], total=3)  # the summary ends it with two items unaccounted

    code, report, err = check("run-lost", capsys)

    assert code == 1
    assert (report["submitted"], report["terminal"], report["lost"]) == (3, 1, 2)
    assert "broken: lost: 2 of 3 item(s) have no outcome" in err


def test_a_run_still_running_counts_its_pending_items(stack, capsys):
    run = Pipeline(stack, "run-busy")
    run.open("choreography", 3)
    run.runs.record(run.store(A), AT)

    assert main(["check", "run-busy"]) == 0
    out, _ = capsys.readouterr()
    assert "run run-busy (choreography): running" in out
    assert "running  2 item(s) pending" in out
    assert "invariants hold so far" in out


def test_a_stopped_execution_ends_its_step_functions_run_and_its_missing_items_are_lost(
        stack, capsys):
    run = Pipeline(stack, "run-sfn")
    run.open("stepfunctions", 2)
    sfn = boto3.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=stack["PipelineStateMachineArn"],
                                    name="run-sfn")["executionArn"]
    run.runs.record(run.store(A), AT)
    sfn.stop_execution(executionArn=execution)

    code, report, err = check("run-sfn", capsys)

    assert code == 1
    assert (report["status"], report["terminal"], report["lost"]) == ("execution aborted", 1, 1)
    assert "broken: lost: 1 of 2" in err


def test_an_unknown_run_is_a_clear_error(stack, capsys):
    code, report, err = check("never-ran", capsys)

    assert (code, report) == (1, {})
    assert "baton check: error: no run 'never-ran' in the runs table" in err
