"""Watchlist files: URL, label, thresholds; any bad line → every bad line named, nothing imported."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from baton.errors import BatonError
from baton.run import read_watchlist
from baton.watch import Watch, WatchLine, parse_watchlist, read_watchlist_file
from pipeline.monitor_models import WatchEntry
from pipeline.watchlist import UnknownUrls

SAMPLE = Path(__file__).parents[2] / "examples" / "sample-watchlist.txt"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class MemoryWatchlist:
    """WatchlistTable's behaviour in a dict."""

    def __init__(self) -> None:
        self.stored: dict[str, WatchEntry] = {}
        self.writes = 0

    def entries(self) -> list[WatchEntry]:
        return sorted(self.stored.values(), key=lambda entry: (entry.added_at, entry.url))

    def get_many(self, urls: Iterable[str]) -> dict[str, WatchEntry]:
        return {url: self.stored[url] for url in urls if url in self.stored}

    def put_many(self, entries: Sequence[WatchEntry]) -> None:
        self.writes += 1
        self.stored.update((entry.url, entry) for entry in entries)

    def remove(self, urls: Sequence[str]) -> list[str]:
        unknown = [url for url in urls if url not in self.stored]
        if unknown:
            raise UnknownUrls(unknown)
        for url in urls:
            del self.stored[url]
        return list(urls)


@pytest.fixture
def table() -> MemoryWatchlist:
    return MemoryWatchlist()


@pytest.fixture
def watch(table: MemoryWatchlist) -> Watch:
    return Watch(table, now=lambda: NOW)  # type: ignore[arg-type]


def test_the_sample_watchlist_parses_with_comments_ignored() -> None:
    lines = read_watchlist_file(SAMPLE)

    assert lines == read_watchlist(SAMPLE)  # what `baton run` reads
    assert lines[0] == WatchLine(7, "http://127.0.0.1:8765/pages/garden")
    moved = next(line for line in lines if line.url.endswith("/faults/moved"))
    assert moved.label is None  # the trailing "# 301 to ..." is a comment, not a label


def test_label_and_thresholds_columns() -> None:
    (line,) = parse_watchlist("http://a.test/x   Rant page  review=0.3 block=0.6  # strict\n")

    assert line == WatchLine(1, "http://a.test/x", "Rant page", 0.3, 0.6)


def test_every_bad_line_is_reported_with_its_number() -> None:
    text = "\n".join([
        "# header",
        "http://a.test/ok",
        "ftp://a.test/file",              # 3: scheme
        "http://a.test/t review=high",    # 4: not a number
        "http://a.test/u block=1.5",      # 5: out of range
        "",
        "http://a.test/ok   again",       # 7: duplicate of line 2
        "http://a.test/v review=0.9 block=0.2",  # 8: review above block
        "not-a-url",                      # 9
    ])

    with pytest.raises(BatonError) as raised:
        parse_watchlist(text, "list.txt")

    message = str(raised.value)
    assert message.startswith("list.txt has 6 bad line(s); nothing was imported:")
    for number in (3, 4, 5, 7, 8, 9):
        assert f"line {number}:" in message
    assert "line 2:" not in message
    assert "already on line 2" in message


def test_a_file_with_a_bad_line_imports_nothing(
    watch: Watch, table: MemoryWatchlist, tmp_path: Path
) -> None:
    path = tmp_path / "watch.txt"
    path.write_text("http://a.test/one\nhttp://a.test/two\nhttps:///no-host\n")

    with pytest.raises(BatonError, match="line 3"):
        watch.import_file(path)

    assert table.stored == {} and table.writes == 0


def test_a_file_without_urls_is_refused(watch: Watch, tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("# nothing here\n\n")

    with pytest.raises(BatonError, match="no URL"):
        watch.import_file(path)


def test_an_unreadable_file_says_so(watch: Watch, tmp_path: Path) -> None:
    with pytest.raises(BatonError, match="cannot read the watchlist"):
        watch.import_file(tmp_path / "missing.txt")


def test_import_adds_new_urls_and_updates_known_ones_keeping_when_they_were_added(
    watch: Watch, table: MemoryWatchlist, tmp_path: Path
) -> None:
    earlier = datetime(2026, 1, 1, tzinfo=UTC)
    table.stored["http://a.test/one"] = WatchEntry(url="http://a.test/one", label="old",
                                                   added_at=earlier)
    path = tmp_path / "watch.txt"
    path.write_text("http://a.test/one  One\nhttp://a.test/two\n")

    imported = watch.import_file(path)

    assert (imported.added, imported.updated) == (["http://a.test/two"], ["http://a.test/one"])
    assert table.stored["http://a.test/one"].label == "One"
    assert table.stored["http://a.test/one"].added_at == earlier
    assert table.stored["http://a.test/two"].added_at == NOW


def test_add_rejects_a_malformed_url_or_thresholds(watch: Watch, table: MemoryWatchlist) -> None:
    with pytest.raises(BatonError, match="only http and https"):
        watch.add("file:///etc/passwd")
    with pytest.raises(BatonError, match="must not exceed"):
        watch.add("http://a.test/x", review_threshold=0.9, block_threshold=0.1)
    assert table.stored == {}


def test_remove_of_an_unknown_url_removes_nothing(watch: Watch, table: MemoryWatchlist) -> None:
    watch.add("http://a.test/one")

    with pytest.raises(BatonError) as raised:
        watch.remove(["http://a.test/one", "http://a.test/nope"])

    assert "nothing was removed: http://a.test/nope" in str(raised.value)
    assert list(table.stored) == ["http://a.test/one"]
