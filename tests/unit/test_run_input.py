"""`baton run` refuses bad input before anything starts."""

from pathlib import Path

import pytest

from baton import run
from baton.errors import BatonError
from pipeline.models import SsmRef


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

    assert "line 4: 'not'" in str(refused.value)  # a line's first word is its URL
    assert "line 6: 'mailto:x@y'" in str(refused.value)
    assert "line 2" not in str(refused.value)


def test_watchlist_comments_and_blank_lines_are_skipped(tmp_path: Path):
    watchlist = tmp_path / "watch.txt"
    watchlist.write_text("# pages\nhttp://a.example/\n\nhttp://b.example/  # second\n")

    assert [line.url for line in run.read_watchlist(watchlist)] == ["http://a.example/",
                                                                    "http://b.example/"]


def test_a_watchlist_line_gives_the_run_its_fetch_options(tmp_path: Path):
    """The file `baton watch import` reads runs as it is: labels and thresholds are the
    monitor's, headers, cookies and the robots.txt opt-out reach the scraper."""
    watchlist = tmp_path / "watch.txt"
    watchlist.write_text("http://a.example/ Shop review=0.2 header:Accept-Language=fr "
                         "cookie:session=ssm:/baton/shop robots=ignore\n"
                         "http://b.example/ Plain\n"
                         "http://a.example/ a second line for the same URL: one item\n")

    lines = run.read_watchlist(watchlist)
    request = run.run_request([], 4, lines)

    assert request.urls == ["http://a.example/", "http://b.example/"]
    options = request.options["http://a.example/"]
    assert options.headers == {"Accept-Language": "fr"} and not options.robots
    assert options.cookies["session"] == SsmRef(ssm="/baton/shop")
    assert "http://b.example/" not in request.options


def test_a_bad_option_names_its_line_and_nothing_runs(tmp_path: Path):
    watchlist = tmp_path / "watch.txt"
    watchlist.write_text("http://a.example/\nhttp://b.example/ header:Host=evil.example\n")

    with pytest.raises(BatonError, match="line 2: header") as refused:
        run.read_watchlist(watchlist)
    assert "line 1" not in str(refused.value)
