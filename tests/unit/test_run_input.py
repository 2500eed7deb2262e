"""`baton run` refuses bad input before anything starts, and reads Step Functions attempts."""

from pathlib import Path

import pytest

from baton import run
from baton.errors import BatonError
from pipeline.models import ItemOutcome


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


def failed_event(url: str, error: str = "TransientError") -> dict:
    return {"type": "TaskFailed", "taskFailedEventDetails": {
        "error": error, "cause": f'{{"errorMessage": "{url} answered 500"}}'}}


def test_step_functions_attempts_count_the_items_own_retried_failures():
    item = ItemOutcome(run_id="r", url="http://s/flaky", succeeded=True)
    history = [failed_event("http://s/flaky"), failed_event("http://s/flaky"),
               failed_event("http://s/other"), failed_event("http://s/flaky", "PermanentError")]

    assert run.with_attempts(item, history).attempts == 3


def test_a_final_retryable_failure_is_not_counted_twice():
    item = ItemOutcome(run_id="r", url="http://s/down", succeeded=False, error_type="TransientError",
                       failed_step="scraper")
    history = [failed_event("http://s/down")] * 4  # the first try and three retries

    assert run.with_attempts(item, history).attempts == 4
