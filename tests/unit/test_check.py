"""The invariant report of `baton check`, over hand-built runs, records and alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from baton.check import COUNTS, RunFacts, UrlRecords, invariants, run_keys, stored_url
from pipeline.models import ItemOutcome, StoredRecord

RUN = "run-1"
A, B, C = "http://a.test/", "http://b.test/page", "http://c.test/"
AT = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def record(url: str, verdict: str = "allow", run_id: str = RUN) -> StoredRecord:
    return StoredRecord.model_validate({
        "run_id": run_id, "url": url, "content_hash": "h", "text_key": "texts/h.txt",
        "change": "new", "verdict": verdict, "score": 0.1, "checked_at": AT})


def stored(url: str, verdict: str = "allow") -> ItemOutcome:
    return ItemOutcome(run_id=RUN, url=url, succeeded=True, record=record(url, verdict))


def failed(url: str) -> ItemOutcome:
    return ItemOutcome(run_id=RUN, url=url, succeeded=False, error_type="PermanentError",
                       error="HTTP 404", failed_step="scraper")


def not_modified(url: str) -> ItemOutcome:
    return ItemOutcome(run_id=RUN, url=url, succeeded=True)


def run_facts(outcomes: list[ItemOutcome], total: int | None = None, ended: bool = True,
              status: str = "succeeded") -> RunFacts:
    return RunFacts(RUN, "orchestrator", status, len(outcomes) if total is None else total,
                    ended, outcomes)


def alert(url: str, run_id: str = RUN) -> dict[str, Any]:
    return record(url, "block", run_id).model_dump(mode="json")


def test_a_clean_run_holds_every_invariant():
    run = run_facts([stored(A, "block"), failed(B), not_modified(C)], status="failed-items")

    report = invariants(run, [UrlRecords(A, 1, 1), UrlRecords(B, 0, 0), UrlRecords(C, 0, 0)],
                        [alert(A)])

    assert report.as_json() == {
        "run_id": RUN, "engine": "orchestrator", "status": "failed-items", "submitted": 3,
        "terminal": 3, "stored": 1, "records": 1, "lost": 0, "duplicate_records": 0,
        "duplicate_history": 0, "duplicate_alerts": 0, "faults_injected": 0}
    assert report.broken() == []


def test_the_json_keys_are_exactly_the_issues_plus_the_runs_identity():
    report = invariants(run_facts([stored(A)]), [UrlRecords(A, 1, 1)], [])

    assert list(report.as_json()) == ["run_id", "engine", "status", *COUNTS]
    assert set(COUNTS) == {"submitted", "terminal", "stored", "records", "lost",
                           "duplicate_records", "duplicate_history", "duplicate_alerts",
                           "faults_injected"}


def test_an_ended_run_with_items_without_outcome_lost_them():
    report = invariants(run_facts([stored(A)], total=3), [UrlRecords(A, 1, 1)], [])

    assert (report.submitted, report.terminal, report.lost) == (3, 1, 2)
    assert report.broken() == ["lost: 2 of 3 item(s) have no outcome"]


def test_a_running_run_counts_pending_and_does_not_judge_lost():
    report = invariants(run_facts([stored(A)], total=3, ended=False),
                        [UrlRecords(A, 1, 1)], [])

    assert (report.status, report.lost, report.pending) == ("running", None, 2)
    assert report.as_json()["lost"] is None
    assert "running  2 item(s) pending" in report.text()
    assert report.broken() == []


def test_a_running_run_may_have_stored_an_item_whose_outcome_is_not_recorded_yet():
    # B is stored (its marker exists) but its outcome is still on its way.
    run = run_facts([stored(A)], total=2, ended=False)

    assert invariants(run, [UrlRecords(A, 1, 1), UrlRecords(B, 1, 1)], []).broken() == []


def test_a_running_run_with_more_markers_than_its_items_could_explain_is_broken():
    run = run_facts([stored(A)], total=2, ended=False)
    records = [UrlRecords(A, 1, 1), UrlRecords(B, 1, 1), UrlRecords(C, 1, 1)]

    assert invariants(run, records, []).broken() == [
        "records: 3 marker(s) in the records table for 1 item(s) stored and 1 pending"]


def test_a_stored_item_without_its_marker_breaks_records():
    report = invariants(run_facts([stored(A), stored(B)]),
                        [UrlRecords(A, 1, 1), UrlRecords(B, 0, 0)], [])

    assert (report.stored, report.records) == (2, 1)
    assert report.broken() == ["records: 1 marker(s) in the records table for 2 item(s) stored"]


def test_a_failed_item_that_was_stored_anyway_breaks_records():
    report = invariants(run_facts([failed(A)]), [UrlRecords(A, 1, 1)], [])

    assert (report.stored, report.records) == (0, 1)
    assert report.broken()[0].startswith("records:")


def test_a_url_stored_twice_by_one_run_is_a_duplicate_record_and_surplus_history():
    report = invariants(run_facts([stored(A), stored(B)]),
                        [UrlRecords(A, 1, 3), UrlRecords(B, 1, 2)], [])

    assert (report.duplicate_records, report.duplicate_history) == (2, 3)
    assert report.broken() == ["duplicate_records: 2 (run, URL) stored more than once",
                               "duplicate_history: 3 surplus history entries"]


def test_two_alerts_for_one_run_and_url_are_a_duplicate_but_other_runs_alerts_are_not():
    run = run_facts([stored(A, "block"), stored(B, "review")])
    alerts = [alert(A), alert(A), alert(B), alert(B, run_id="run-2"), alert(C, run_id="run-2"),
              alert(C, run_id="run-2"), {"message": "not a record"}]

    report = invariants(run, [UrlRecords(A, 1, 1), UrlRecords(B, 1, 1)], alerts)

    assert report.duplicate_alerts == 1
    assert report.broken() == ["duplicate_alerts: 1 (run, URL) alerted more than once"]


def test_the_text_report_names_the_engine_and_every_count():
    text = invariants(run_facts([stored(A)]), [UrlRecords(A, 1, 1)], []).text()

    assert text.splitlines()[0] == "run run-1 (orchestrator): succeeded"
    for key in COUNTS:
        assert f"  {key} " in text, key


def test_faults_injected_is_zero_for_a_run_without_faults():
    assert invariants(run_facts([stored(A)]), [UrlRecords(A, 1, 1)], []).faults_injected == 0


def test_a_run_that_met_faults_reports_them_in_total_and_by_kind():
    report = invariants(run_facts([stored(A)]), [UrlRecords(A, 1, 1)], [],
                        {"lambda.crash": 2, "s3.slowdown": 1})

    assert report.faults_injected == 3
    assert report.as_json()["faults_injected"] == 3
    assert report.as_json()["faults"] == {"lambda.crash": 2, "s3.slowdown": 1}
    assert "faults_injected    3  faults met (baton run --faults): lambda.crash 2, s3.slowdown 1" \
        in report.text()
    assert report.broken() == []  # faults met are not a broken invariant


@pytest.mark.parametrize(("keys", "expected"), [
    (["LATEST", f"RUN#{RUN}", f"CHECK#2026-11-30T05:00:00.000000Z#{RUN}"], (1, 1)),
    ([f"CHECK#2026-11-30T05:00:00.000000Z#{RUN}", f"CHECK#2026-11-30T05:00:01.000000Z#{RUN}"],
     (0, 2)),
    # another run whose id ends like this one's, and another run's marker, are not this run's
    ([f"CHECK#2026-11-30T05:00:00.000000Z#x-{RUN}", f"RUN#x-{RUN}", "RUN#run-10"], (0, 0)),
    ([], (0, 0)),
])
def test_a_partitions_sort_keys_give_the_runs_markers_and_history_entries(keys, expected):
    assert run_keys(keys, RUN) == expected


def test_the_url_looked_up_is_the_stored_records_else_the_requested_one_as_the_store_writes_it():
    assert stored_url(stored("http://a.test")) == "http://a.test/"
    assert stored_url(failed("http://b.test")) == "http://b.test/"
    assert stored_url(failed("not a url")) is None
