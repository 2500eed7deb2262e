"""The store's use case: keep the text, record the check, tell what changed since the last one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from pipeline.errors import TransientError
from pipeline.keys import page_text_key
from pipeline.models import Change, ModerationResult, StoredRecord
from pipeline.observability import logger
from store.dal import AlreadyStored, Latest, LatestMoved, TextStore

MAX_ATTEMPTS = 5  # optimistic-lock retries when concurrent runs store the same URL


class CheckTable(Protocol):
    """What the logic needs from the page table (store.dal.PageTable in production)."""

    def latest(self, url: str) -> Latest | None: ...

    def find_run(self, url: str, run_id: str) -> StoredRecord | None: ...

    def check_before(self, url: str, checked_at: datetime) -> StoredRecord | None: ...

    def save(
        self,
        record: StoredRecord,
        *,
        expected_version: int | None,
        details: Mapping[str, Any] | None = None,
        update_latest: bool = True,
    ) -> None: ...


def classify_change(previous_hash: str | None, content_hash: str) -> Change:
    """New when never seen, unchanged when the hash matches the previous check, else changed."""
    if previous_hash is None:
        return Change.NEW
    return Change.UNCHANGED if previous_hash == content_hash else Change.CHANGED


def build_record(result: ModerationResult, previous: StoredRecord | None) -> StoredRecord:
    """The record of this check, compared with the check before it (None: the first)."""
    page = result.page
    previous_hash = previous.content_hash if previous else None
    return StoredRecord(
        run_id=page.run_id,
        url=page.url,
        content_hash=page.content_hash,
        text_key=page_text_key(str(page.url), page.content_hash),
        change=classify_change(previous_hash, page.content_hash),
        previous_hash=previous_hash,
        verdict=result.verdict,
        score=result.score,
        checked_at=page.fetched_at,
    )


def store_result(result: ModerationResult, *, table: CheckTable, texts: TextStore) -> StoredRecord:
    """Record one check idempotently: a redelivered (run_id, url) returns the original record."""
    page = result.page
    url = str(page.url)
    stored = table.find_run(url, page.run_id)
    if stored is not None:
        logger.info("already stored; returning the original record", url=url)
        return stored
    # The text first: a record must never point at a key that does not exist.
    texts.keep(page.text_key, page_text_key(url, page.content_hash))
    details = {
        "final_url": str(page.final_url),
        "title": page.title,
        "language": page.language,
        "word_count": page.word_count,
        "labels": dict(result.labels),
        "backend": result.backend,
    }
    details = {name: value for name, value in details.items() if value is not None}
    for _ in range(MAX_ATTEMPTS):
        latest = table.latest(url)
        if latest is not None and latest.record.checked_at > page.fetched_at:
            # A late check, older than the latest (a redelivered event, a slow run): it joins
            # the history, compared with the check before it, and never replaces the latest.
            record = build_record(result, table.check_before(url, page.fetched_at))
            try:
                table.save(record, expected_version=None, details=details, update_latest=False)
                return record
            except AlreadyStored:
                return table.find_run(url, page.run_id) or record
        record = build_record(result, latest.record if latest else None)
        try:
            table.save(
                record, expected_version=latest.version if latest else None, details=details
            )
            return record
        except AlreadyStored:
            original = table.find_run(url, page.run_id)
            if original is not None:
                return original
        except LatestMoved:
            continue
    raise TransientError(f"{url} kept changing under concurrent checks; try again")
