"""`baton run` refuses bad input before anything starts."""

from pathlib import Path

import pytest

from baton import run
from baton.errors import BatonError


def test_run_without_urls_is_refused():
    with pytest.raises(BatonError, match="no URLs"):
        run.run_request([], 8)


def test_malformed_urls_are_all_named_and_nothing_starts():
    with pytest.raises(BatonError) as refused:
        run.run_request(["http://ok.example/", "ftp://files.example/", "http://"], 8)

    message = str(refused.value)
    assert "'ftp://files.example/'" in message and "'http://'" in message
    assert "ok.example" not in message


def test_duplicate_urls_run_once_in_their_first_order():
    request = run.run_request(["http://b.example/", "http://a.example/", "http://b.example/"], 2)

    assert request.urls == ["http://b.example/", "http://a.example/"]


def test_concurrency_outside_the_engines_limits_is_refused():
    with pytest.raises(BatonError, match="--max-concurrency"):
        run.run_request(["http://a.example/"], 0)


def test_watchlist_bad_lines_are_reported_with_their_numbers(tmp_path: Path):
    watchlist = tmp_path / "watch.txt"
    watchlist.write_text("# pages\nhttp://a.example/\n\nnot a url\nhttp://b.example/ # ok\nmailto:x@y\n")

    with pytest.raises(BatonError) as refused:
        run.read_watchlist(watchlist)

    assert "line 4: 'not a url'" in str(refused.value)
    assert "line 6: 'mailto:x@y'" in str(refused.value)
    assert "line 2" not in str(refused.value)


def test_watchlist_comments_and_blank_lines_are_skipped(tmp_path: Path):
    watchlist = tmp_path / "watch.txt"
    watchlist.write_text("# pages\nhttp://a.example/\n\nhttp://b.example/  # second\n")

    assert run.read_watchlist(watchlist) == ["http://a.example/", "http://b.example/"]
