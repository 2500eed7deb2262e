"""`baton watch` add / remove / list / import against a moto watchlist table."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from baton.errors import BatonError
from baton.watch import Watch, entries_table
from pipeline.watchlist import WATCHLIST_TABLE_SCHEMA, WatchlistTable

SAMPLE = Path(__file__).parents[2] / "examples" / "sample-watchlist.txt"
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.fixture
def table(aws: None) -> Iterator[WatchlistTable]:
    name = f"baton-watch-{uuid.uuid4().hex[:8]}"
    client = boto3.client("dynamodb")
    client.create_table(TableName=name, **WATCHLIST_TABLE_SCHEMA)
    yield WatchlistTable(name, client)


@pytest.fixture
def watch(table: WatchlistTable) -> Watch:
    ticks = iter(range(10_000))
    return Watch(table, now=lambda: T0 + timedelta(seconds=next(ticks)))


def test_add_then_list(watch: Watch) -> None:
    entry, new = watch.add("http://a.test/one", label="One", review_threshold=0.3)
    watch.add("http://a.test/two")

    assert new
    assert [(e.url, e.label, e.review_threshold, e.block_threshold) for e in watch.entries()] == [
        ("http://a.test/one", "One", 0.3, None), ("http://a.test/two", None, None, None)]
    assert watch.entries()[0] == entry
    listing = entries_table(watch.entries())
    assert "http://a.test/one  One" in listing and listing.endswith("2 URL(s) watched")


def test_adding_a_watched_url_updates_it_and_keeps_when_it_was_added(watch: Watch) -> None:
    first, _ = watch.add("http://a.test/one", label="One")

    again, new = watch.add("http://a.test/one", label="Renamed", block_threshold=0.9)

    assert not new and again.added_at == first.added_at
    (stored,) = watch.entries()
    assert (stored.label, stored.block_threshold) == ("Renamed", 0.9)


def test_remove_unknown_url_is_an_error_that_removes_nothing(watch: Watch) -> None:
    watch.add("http://a.test/one")
    watch.add("http://a.test/two")

    with pytest.raises(BatonError) as raised:
        watch.remove(["http://a.test/two", "http://a.test/unknown"])

    assert "not in the watchlist, so nothing was removed: http://a.test/unknown" in str(raised.value)
    assert [entry.url for entry in watch.entries()] == ["http://a.test/one", "http://a.test/two"]


def test_remove_a_watched_url(watch: Watch) -> None:
    watch.add("http://a.test/one")
    watch.add("http://a.test/two")

    assert watch.remove(["http://a.test/one"]) == ["http://a.test/one"]
    assert [entry.url for entry in watch.entries()] == ["http://a.test/two"]


def test_import_the_sample_watchlist(watch: Watch) -> None:
    imported = watch.import_file(SAMPLE)

    assert len(imported.added) == 17 and imported.updated == []
    assert len(watch.entries()) == 17  # more than one batch write (25) would hold: still all


def test_a_bad_file_imports_nothing(watch: Watch, tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("http://a.test/one  One\nhttp:/broken\nhttp://a.test/two block=2\n")

    with pytest.raises(BatonError) as raised:
        watch.import_file(path)

    assert "line 2:" in str(raised.value) and "line 3:" in str(raised.value)
    assert watch.entries() == []


def test_many_urls_import_in_batches(watch: Watch, tmp_path: Path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("".join(f"http://a.test/page-{n}  Page {n}\n" for n in range(130)))

    imported = watch.import_file(path)
    again = watch.import_file(path)

    assert len(imported.added) == 130 and len(again.updated) == 130
    assert len(watch.entries()) == 130


def test_listing_an_empty_watchlist_says_how_to_add(watch: Watch) -> None:
    assert "baton watch add URL" in entries_table(watch.entries())
