"""The page table's conditional writes, against moto DynamoDB with template.yaml's schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from pipeline.models import Change, StoredRecord, Verdict
from store.dal import AlreadyStored, LatestMoved, PageTable


@pytest.fixture
def table(records_table: str) -> PageTable:
    return PageTable(records_table)


def record(run_id: str, url: str, content_hash: str = "h1") -> StoredRecord:
    return StoredRecord(
        run_id=run_id,
        url=url,  # type: ignore[arg-type]
        content_hash=content_hash,
        text_key=f"pages/x/{content_hash}.txt",
        change=Change.NEW,
        verdict=Verdict.ALLOW,
        score=0.25,
        checked_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
    )


@pytest.fixture
def url() -> str:
    return f"http://example.com/{uuid.uuid4().hex[:8]}"


def test_saving_the_same_run_twice_is_refused_by_the_marker(table: PageTable, url: str) -> None:
    table.save(record("run-1", url), expected_version=None)

    with pytest.raises(AlreadyStored):
        table.save(record("run-1", url), expected_version=1)


def test_a_refused_save_writes_nothing(table: PageTable, url: str) -> None:
    table.save(record("run-1", url), expected_version=None)

    with pytest.raises(AlreadyStored):
        table.save(record("run-1", url), expected_version=1)
    items = boto3.client("dynamodb").scan(TableName=table.table_name)["Items"]
    assert sorted(item["sk"]["S"].split("#")[0] for item in items) == ["CHECK", "LATEST", "RUN"]


def test_saving_against_a_stale_version_is_refused(table: PageTable, url: str) -> None:
    table.save(record("run-1", url), expected_version=None)
    table.save(record("run-2", url), expected_version=1)

    with pytest.raises(LatestMoved):
        table.save(record("run-3", url), expected_version=1)


def test_saving_a_first_check_when_one_exists_is_refused(table: PageTable, url: str) -> None:
    table.save(record("run-1", url), expected_version=None)

    with pytest.raises(LatestMoved):
        table.save(record("run-2", url), expected_version=None)


def test_a_record_reads_back_as_it_was_saved(table: PageTable, url: str) -> None:
    saved = record("run-1", url)
    table.save(saved, expected_version=None)

    assert table.find_run(url, "run-1") == saved


def test_history_can_be_limited_to_the_newest_entries(table: PageTable, url: str) -> None:
    for version, run_id in enumerate(["run-1", "run-2", "run-3"]):
        later = record(run_id, url).model_copy(
            update={"checked_at": datetime(2026, 11, 22, 10, version, tzinfo=UTC)}
        )
        table.save(later, expected_version=version or None)

    assert [entry.run_id for entry in table.history(url, limit=2)] == ["run-3", "run-2"]


def test_a_late_check_is_kept_in_the_history_and_leaves_the_latest_alone(
        table: PageTable, url: str) -> None:
    early, late_at = record("run-1", url, "h1"), datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    newest = record("run-3", url, "h3").model_copy(
        update={"checked_at": early.checked_at + timedelta(hours=1)})
    table.save(early, expected_version=None)
    table.save(newest, expected_version=1)
    late = record("run-2", url, "h2").model_copy(
        update={"checked_at": early.checked_at + timedelta(minutes=30)})

    table.save(late, expected_version=None, update_latest=False)

    latest = table.latest(url)
    assert latest is not None and (latest.record.run_id, latest.version) == ("run-3", 2)
    assert [r.run_id for r in table.history(url)] == ["run-3", "run-2", "run-1"]
    before = table.check_before(url, late.checked_at)
    assert before is not None and before.run_id == "run-1"
    assert table.check_before(url, late_at) is None
    assert table.find_run(url, "run-2") == late
