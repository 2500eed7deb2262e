"""The store's change classification and idempotency logic, over an in-memory page table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.errors import TransientError
from pipeline.keys import page_text_key
from pipeline.models import Change, ModerationResult, StoredRecord, TransformedPage, Verdict
from store.dal import AlreadyStored, Latest, LatestMoved, timestamp
from store.logic import classify_change, store_result

URL = "http://example.com/page"
START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@dataclass
class MemoryTable:
    """The PageTable's semantics (conditional marker, versioned latest) in a dict."""

    runs: dict[tuple[str, str], StoredRecord] = field(default_factory=dict)
    history: list[StoredRecord] = field(default_factory=list)
    latest_by_url: dict[str, Latest] = field(default_factory=dict)
    moves_to_simulate: int = 0
    saves: int = 0

    def latest(self, url: str) -> Latest | None:
        return self.latest_by_url.get(url)

    def find_run(self, url: str, run_id: str) -> StoredRecord | None:
        return self.runs.get((url, run_id))

    def check_before(self, url: str, checked_at: datetime) -> StoredRecord | None:
        earlier = [r for r in self.history if str(r.url) == url and r.checked_at < checked_at]
        return max(earlier, key=lambda r: r.checked_at, default=None)

    def save(
        self,
        record: StoredRecord,
        *,
        expected_version: int | None,
        details: Mapping[str, Any] | None = None,
        update_latest: bool = True,
    ) -> None:
        self.saves += 1
        url = str(record.url)
        if (url, record.run_id) in self.runs:
            raise AlreadyStored(record.run_id)
        if not update_latest:
            self.runs[(url, record.run_id)] = record
            self.history.append(record)
            return
        if self.moves_to_simulate:
            self.moves_to_simulate -= 1
            raise LatestMoved(url)
        current = self.latest_by_url.get(url)
        if (current.version if current else None) != expected_version:
            raise LatestMoved(url)
        self.runs[(url, record.run_id)] = record
        self.history.append(record)
        self.latest_by_url[url] = Latest(record, (expected_version or 0) + 1)


@dataclass
class MemoryTexts:
    copies: list[tuple[str, str]] = field(default_factory=list)

    def keep(self, source_key: str, permanent_key: str) -> None:
        self.copies.append((source_key, permanent_key))


def moderated(run_id: str, content_hash: str, minutes: int = 0) -> ModerationResult:
    page = TransformedPage(
        run_id=run_id,
        url=URL,  # type: ignore[arg-type]
        final_url=URL,  # type: ignore[arg-type]
        text_key=f"text/{run_id}/page.txt",
        content_hash=content_hash,
        fetched_at=START + timedelta(minutes=minutes),
    )
    return ModerationResult(page=page, score=0.02, verdict=Verdict.ALLOW, backend="fake")


def test_a_url_never_seen_is_new() -> None:
    assert classify_change(None, "abc") is Change.NEW


def test_the_same_hash_as_last_time_is_unchanged() -> None:
    assert classify_change("abc", "abc") is Change.UNCHANGED


def test_a_different_hash_from_last_time_is_changed() -> None:
    assert classify_change("abc", "def") is Change.CHANGED


def test_the_first_check_of_a_url_is_recorded_as_new() -> None:
    table = MemoryTable()

    record = store_result(moderated("run-1", "h1"), table=table, texts=MemoryTexts())

    assert (record.change, record.previous_hash) == (Change.NEW, None)


def test_a_second_check_with_the_same_text_is_unchanged() -> None:
    table = MemoryTable()
    store_result(moderated("run-1", "h1"), table=table, texts=MemoryTexts())

    record = store_result(moderated("run-2", "h1", 5), table=table, texts=MemoryTexts())

    assert (record.change, record.previous_hash) == (Change.UNCHANGED, "h1")


def test_a_second_check_with_new_text_is_changed() -> None:
    table = MemoryTable()
    store_result(moderated("run-1", "h1"), table=table, texts=MemoryTexts())

    record = store_result(moderated("run-2", "h2", 5), table=table, texts=MemoryTexts())

    assert (record.change, record.previous_hash) == (Change.CHANGED, "h1")


def test_a_redelivered_check_returns_the_original_record_and_adds_no_history() -> None:
    table = MemoryTable()
    store_result(moderated("run-1", "h1"), table=table, texts=MemoryTexts())
    first = store_result(moderated("run-2", "h2", 5), table=table, texts=MemoryTexts())

    again = store_result(moderated("run-2", "h2", 5), table=table, texts=MemoryTexts())

    assert again == first
    assert again.change is Change.CHANGED
    assert len(table.history) == 2


def test_a_redelivery_racing_the_first_delivery_returns_the_stored_record() -> None:
    table = MemoryTable()
    original = store_result(moderated("run-1", "h1"), table=table, texts=MemoryTexts())
    table.find_run = _missing_once(table.find_run)  # type: ignore[method-assign]

    again = store_result(moderated("run-1", "h1"), table=table, texts=MemoryTexts())

    assert again == original
    assert len(table.history) == 1


def test_the_text_is_kept_under_its_permanent_key() -> None:
    texts = MemoryTexts()

    record = store_result(moderated("run-1", "h1"), table=MemoryTable(), texts=texts)

    assert texts.copies == [("text/run-1/page.txt", page_text_key(URL, "h1"))]
    assert record.text_key == page_text_key(URL, "h1")


def test_a_concurrent_update_is_retried_against_the_new_latest_state() -> None:
    table = MemoryTable(moves_to_simulate=2)

    record = store_result(moderated("run-1", "h1"), table=table, texts=MemoryTexts())

    assert (record.change, table.saves) == (Change.NEW, 3)


def test_endless_concurrent_updates_end_in_a_transient_error() -> None:
    table = MemoryTable(moves_to_simulate=100)

    with pytest.raises(TransientError, match="concurrent"):
        store_result(moderated("run-1", "h1"), table=table, texts=MemoryTexts())


def test_the_check_time_is_the_fetch_time() -> None:
    record = store_result(moderated("run-1", "h1", 7), table=MemoryTable(), texts=MemoryTexts())

    assert record.checked_at == START + timedelta(minutes=7)


def test_timestamps_sort_as_strings_in_time_order() -> None:
    earlier = timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    later = timestamp(datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC))

    assert (earlier, earlier < later) == ("2026-01-02T03:04:05.000000Z", True)


def _missing_once(find_run: Any) -> Any:
    calls = {"count": 0}

    def find(url: str, run_id: str) -> StoredRecord | None:
        calls["count"] += 1
        return None if calls["count"] == 1 else find_run(url, run_id)

    return find


def test_a_late_older_check_joins_the_history_but_never_replaces_the_latest() -> None:
    table, texts = MemoryTable(), MemoryTexts()
    store_result(moderated("run-1", "a" * 64, minutes=0), table=table, texts=texts)
    store_result(moderated("run-3", "c" * 64, minutes=20), table=table, texts=texts)

    late = store_result(moderated("run-2", "b" * 64, minutes=10), table=table, texts=texts)

    latest = table.latest(URL)
    assert latest is not None and latest.record.run_id == "run-3"
    # compared with the check before it (run-1), not with the newer latest
    assert (late.change, late.previous_hash) == (Change.CHANGED, "a" * 64)
    assert sorted(r.run_id for r in table.history) == ["run-1", "run-2", "run-3"]


def test_a_late_check_redelivered_returns_its_first_record() -> None:
    table, texts = MemoryTable(), MemoryTexts()
    store_result(moderated("run-3", "c" * 64, minutes=20), table=table, texts=texts)
    first = store_result(moderated("run-2", "c" * 64, minutes=10), table=table, texts=texts)

    again = store_result(moderated("run-2", "c" * 64, minutes=10), table=table, texts=texts)

    assert again == first and first.change is Change.NEW
    assert len(table.history) == 2
