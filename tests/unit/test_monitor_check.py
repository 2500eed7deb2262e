"""The check step: every previous → current pair classified, alerts only on transitions, subjects."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from monitor.check import (
    ALERTING,
    SUBJECT_MAX,
    alert_for,
    alert_subject,
    check,
    classify,
    effective_verdict,
)
from pipeline.models import ItemOutcome, StoredRecord, Verdict
from pipeline.monitor_models import Availability, Check, CheckState, Thresholds, UrlState, WatchEntry

URL = "http://site.test/pages/garden"
RUN = "monitor-1"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
DEFAULTS = Thresholds(review=0.5, block=0.8)
ENTRY = WatchEntry(url=URL, label="Garden", added_at=NOW)


def state(status: str, content: str | None = "h1", verdict: Verdict | None = Verdict.ALLOW,
          score: float | None = 0.1) -> UrlState:
    return UrlState(url=URL, status=Availability(status), content_hash=content, score=score,
                    moderator_verdict=verdict, verdict=verdict, etag='"e"', checked_at=NOW,
                    run_id="monitor-0")


UP_ALLOW = state("up")
UP_FLAGGED = state("up", verdict=Verdict.BLOCK, score=0.9)
DOWN = state("down")
FAILING = state("failing")
PREVIOUS = {"none": None, "up-allow": UP_ALLOW, "up-flagged": UP_FLAGGED, "down": DOWN,
            "failing": FAILING}
CURRENT = {
    "error": None,
    "down": state("down"),
    "failing": state("failing"),
    "same-allow": state("up"),
    "other-allow": state("up", content="h2"),
    "same-flagged": state("up", verdict=Verdict.REVIEW, score=0.6),
    "other-flagged": state("up", content="h2", verdict=Verdict.BLOCK, score=0.9),
}
N, U, C, F, D, R, E, X = (CheckState.NEW, CheckState.UNCHANGED, CheckState.CHANGED,
                          CheckState.FLAGGED, CheckState.DOWN, CheckState.RECOVERED,
                          CheckState.ERROR, CheckState.FAILING)
# previous -> current -> (classification, alert?)
EXPECTED = {
    "none": {"error": (E, False), "down": (N, False), "failing": (N, False),
             "same-allow": (N, False), "other-allow": (N, False), "same-flagged": (N, False),
             "other-flagged": (N, False)},
    "up-allow": {"error": (E, False), "down": (D, True), "failing": (X, True),
                 "same-allow": (U, False), "other-allow": (C, True), "same-flagged": (F, True),
                 "other-flagged": (F, True)},
    "up-flagged": {"error": (E, False), "down": (D, True), "failing": (X, True),
                   "same-allow": (U, False), "other-allow": (C, True), "same-flagged": (F, False),
                   "other-flagged": (C, True)},
    # Back up: recovered, or flagged when it comes back flagged (one alert, the one to act on).
    "down": {"error": (E, False), "down": (D, False), "failing": (X, True),
             "same-allow": (R, True), "other-allow": (R, True), "same-flagged": (F, True),
             "other-flagged": (F, True)},
    # A page whose parse or moderation keeps failing is alerted once, when it starts failing.
    "failing": {"error": (E, False), "down": (D, True), "failing": (X, False),
                "same-allow": (R, True), "other-allow": (R, True), "same-flagged": (F, True),
                "other-flagged": (F, True)},
}


@pytest.mark.parametrize(("before", "after"),
                         [(b, a) for b in PREVIOUS for a in CURRENT])
def test_every_previous_current_pair_is_classified(before: str, after: str) -> None:
    assert classify(PREVIOUS[before], CURRENT[after]) == EXPECTED[before][after]


def test_only_the_alerting_states_are_ever_transitions() -> None:
    for row in EXPECTED.values():
        for state_, alert in row.values():
            assert not alert or state_ in ALERTING


def outcome(**fields: object) -> ItemOutcome:
    return ItemOutcome.model_validate({"run_id": RUN, "url": URL, "succeeded": True, **fields})


def record(content: str = "h1", verdict: Verdict = Verdict.ALLOW, score: float = 0.1) -> StoredRecord:
    return StoredRecord.model_validate({
        "run_id": RUN, "url": URL, "content_hash": content, "text_key": "t", "change": "new",
        "verdict": verdict, "score": score, "checked_at": NOW})


def test_a_not_modified_page_is_unchanged_and_keeps_its_content() -> None:
    result = check(ENTRY, outcome(record=None, etag='"e"'), UP_ALLOW, defaults=DEFAULTS,
                   run_id=RUN, now=NOW)

    assert (result.state, result.transition, result.not_modified) == (U, False, True)
    assert result.current is not None
    assert (result.current.content_hash, result.current.score, result.current.etag) == (
        "h1", 0.1, '"e"')


def test_a_not_modified_page_is_flagged_when_its_entry_lowered_the_threshold() -> None:
    strict = ENTRY.model_copy(update={"review_threshold": 0.05})
    result = check(strict, outcome(record=None), UP_ALLOW, defaults=DEFAULTS, run_id=RUN, now=NOW)

    assert (result.state, result.transition) == (F, True)
    assert result.current is not None and result.current.verdict is Verdict.REVIEW


def test_a_fetch_failure_is_down_and_keeps_the_last_content() -> None:
    failed = outcome(succeeded=False, error_type="TransientError", error="HTTP 503",
                     failed_step="scraper", attempts=4)
    result = check(ENTRY, failed, UP_ALLOW, defaults=DEFAULTS, run_id=RUN, now=NOW)

    assert (result.state, result.transition) == (D, True)
    assert result.current is not None
    assert result.current.status is Availability.DOWN
    assert result.current.content_hash == "h1" and result.current.etag == '"e"'
    assert result.error == "TransientError: HTTP 503"


def test_a_failure_after_the_fetch_is_failing_and_keeps_the_last_content_and_validators() -> None:
    failed = outcome(succeeded=False, error_type="PermanentError", error="raw body missing",
                     failed_step="transformer", etag='"broken-version"')
    result = check(ENTRY, failed, UP_ALLOW, defaults=DEFAULTS, run_id=RUN, now=NOW)

    assert (result.state, result.transition) == (X, True)
    assert result.current is not None and result.current.status is Availability.FAILING
    # The next fetch is not answered 304 for the version that failed, and the last good content
    # is what the page is compared with when it parses again.
    assert (result.current.content_hash, result.current.etag) == ("h1", '"e"')
    assert result.error == "transformer failed: PermanentError: raw body missing"

    again = check(ENTRY, failed, result.current, defaults=DEFAULTS, run_id=RUN, now=NOW)
    assert (again.state, again.transition) == (X, False)


def test_a_url_missing_from_the_run_is_an_error() -> None:
    result = check(ENTRY, None, UP_ALLOW, defaults=DEFAULTS, run_id=RUN, now=NOW)

    assert (result.state, result.current) == (E, None)


def test_a_stored_page_records_its_validators_and_verdict() -> None:
    result = check(ENTRY, outcome(record=record("h2"), etag='"v2"', last_modified="Sun"),
                   UP_ALLOW, defaults=DEFAULTS, run_id=RUN, now=NOW)

    assert (result.state, result.transition) == (C, True)
    assert result.current is not None
    assert (result.current.etag, result.current.last_modified) == ('"v2"', "Sun")


@pytest.mark.parametrize(("review", "block", "score", "moderator", "expected"), [
    (None, None, 0.95, Verdict.ALLOW, Verdict.ALLOW),  # no override: the moderator decides
    (0.2, None, 0.3, Verdict.ALLOW, Verdict.REVIEW),
    (None, 0.6, 0.7, Verdict.REVIEW, Verdict.BLOCK),
    (None, 0.95, 0.9, Verdict.BLOCK, Verdict.REVIEW),  # a laxer block: review (default 0.5)
    (0.7, 0.9, 0.6, Verdict.REVIEW, Verdict.ALLOW),
])
def test_entry_thresholds_override_the_moderator_on_the_stored_score(
    review: float | None, block: float | None, score: float, moderator: Verdict, expected: Verdict
) -> None:
    entry = ENTRY.model_copy(update={"review_threshold": review, "block_threshold": block})

    assert effective_verdict(score, moderator, entry, DEFAULTS) is expected


def transition(state_: CheckState, label: str | None = "Garden", url: str = URL) -> Check:
    return Check(url=url, label=label, state=state_, transition=True, previous=UP_ALLOW,
                 current=CURRENT["other-flagged"])


def test_the_subject_names_the_transition_and_the_label() -> None:
    assert alert_subject(transition(C)) == "baton: changed — Garden"


def test_without_a_label_the_subject_names_host_and_path() -> None:
    assert alert_subject(transition(F, label=None)) == "baton: flagged — site.test/pages/garden"


@pytest.mark.parametrize("state_", sorted(ALERTING))
def test_subjects_fit_in_sns_limit_whatever_the_label(state_: CheckState) -> None:
    long_url = "http://site.test/" + "a" * 3000
    for subject in (alert_subject(transition(state_, label="L" * 200)),
                    alert_subject(transition(state_, label=None, url=long_url)),
                    alert_subject(transition(state_, label="two\nlines\tand\x00control"))):
        assert len(subject) <= SUBJECT_MAX < 100
        assert subject.isprintable()
        assert subject.startswith(f"baton: {state_.value} — ")


def test_the_body_is_structured_json() -> None:
    body = json.loads(alert_for(transition(F), RUN).model_dump_json())

    assert set(body) == {"url", "label", "transition", "previous", "current", "run_id", "checked_at"}
    assert (body["url"], body["label"], body["transition"], body["run_id"]) == (
        URL, "Garden", "flagged", RUN)
    assert body["previous"]["verdict"] == "allow" and body["current"]["verdict"] == "block"


def test_no_alert_body_for_a_check_that_is_not_a_transition() -> None:
    quiet = Check(url=URL, state=U, transition=False, previous=UP_ALLOW, current=UP_ALLOW)

    with pytest.raises(ValueError, match="not a transition"):
        alert_for(quiet, RUN)
