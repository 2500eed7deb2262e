"""The check step, pure: what a run's outcome says about each URL, compared with its last check.

A URL's classification (models.CheckState), by precedence:

| previous          | this check                          | state      | alert |
|-------------------|-------------------------------------|------------|-------|
| any               | the run told nothing about the URL  | error      | no (state kept) |
| none              | anything                            | new        | no    |
| not down          | fetch failed                        | down       | yes   |
| down              | fetch failed                        | down       | no    |
| not failing       | fetched, a later step failed        | failing    | yes   |
| failing           | fetched, a later step failed        | failing    | no    |
| down or failing   | fetched (or 304), flagged           | flagged    | yes   |
| down or failing   | fetched (or 304), not flagged       | recovered  | yes   |
| up, not flagged   | flagged                             | flagged    | yes   |
| up                | content hash differs                | changed    | yes   |
| up, flagged       | flagged, same content               | flagged    | no    |
| up                | same content (or 304), not flagged  | unchanged  | no    |

One alert per URL per check at most: a page that turns toxic has changed too, and is reported
once, as flagged; a page that comes back flagged is reported as flagged (its alert's previous
state says it was down or failing), since that is what needs a look. A page whose parse or
moderation keeps failing is alerted once, when it starts failing, like a page that stays down.
"flagged" uses the entry's own thresholds (on the stored score) when it has any, else the
moderator's verdict.
"""

from __future__ import annotations

from datetime import datetime

from pipeline.models import FLAGGED, ItemOutcome, Verdict
from pipeline.monitor_models import (
    Alert,
    Availability,
    Check,
    CheckState,
    Thresholds,
    UrlState,
    WatchEntry,
    display_name,
)

SUBJECT_MAX = 99  # SNS: "less than 100 characters"
ALERTING = frozenset({CheckState.CHANGED, CheckState.FLAGGED, CheckState.DOWN, CheckState.RECOVERED,
                      CheckState.FAILING})
FETCH_STEP = "scraper"


def effective_verdict(
    score: float, moderator_verdict: Verdict, entry: WatchEntry, defaults: Thresholds
) -> Verdict:
    """The moderator's verdict, unless the entry sets a threshold: then the score decides."""
    if entry.review_threshold is None and entry.block_threshold is None:
        return moderator_verdict
    review = defaults.review if entry.review_threshold is None else entry.review_threshold
    block = defaults.block if entry.block_threshold is None else entry.block_threshold
    if score >= block:
        return Verdict.BLOCK
    if score >= review:
        return Verdict.REVIEW
    return Verdict.ALLOW


def observe(
    entry: WatchEntry,
    outcome: ItemOutcome | None,
    previous: UrlState | None,
    *,
    defaults: Thresholds,
    run_id: str,
    now: datetime,
) -> tuple[UrlState | None, str | None]:
    """The URL's state after this run's outcome, or (None, why) when the outcome tells nothing."""
    if outcome is None:
        return None, "the run reported nothing for this URL"
    if not outcome.succeeded and outcome.record is None:
        error = f"{outcome.error_type}: {outcome.error}"
        status = Availability.DOWN
        if outcome.failed_step != FETCH_STEP:
            status, error = Availability.FAILING, f"{outcome.failed_step} failed: {error}"
        # The last good content and its validators stay: compared with when the page is back,
        # and the next fetch is not answered 304 for the version that failed.
        kept = previous.model_dump(include={"content_hash", "score", "moderator_verdict", "verdict",
                                            "etag", "last_modified"}) if previous else {}
        return UrlState(url=entry.url, status=status, error=error, checked_at=now,
                        run_id=run_id, **kept), None
    record = outcome.record
    if record is None:  # 304 Not Modified: the content is the previous check's
        if previous is None or previous.content_hash is None or previous.score is None \
                or previous.moderator_verdict is None:
            return None, "not modified, but there is no previous content to compare with"
        content_hash, score, moderator_verdict = (previous.content_hash, previous.score,
                                                  previous.moderator_verdict)
        etag = outcome.etag or previous.etag
        last_modified = outcome.last_modified or previous.last_modified
    else:
        content_hash, score, moderator_verdict = record.content_hash, record.score, record.verdict
        etag, last_modified = outcome.etag, outcome.last_modified
    return UrlState(
        url=entry.url,
        status=Availability.UP,
        content_hash=content_hash,
        score=score,
        moderator_verdict=moderator_verdict,
        verdict=effective_verdict(score, moderator_verdict, entry, defaults),
        etag=etag,
        last_modified=last_modified,
        checked_at=now,
        run_id=run_id,
    ), None


def classify(previous: UrlState | None, current: UrlState | None) -> tuple[CheckState, bool]:
    """The URL's classification and whether it is a transition worth an alert (table above)."""
    if current is None:
        return CheckState.ERROR, False
    if previous is None:
        return CheckState.NEW, False
    if current.status is Availability.DOWN:
        return CheckState.DOWN, previous.status is not Availability.DOWN
    if current.status is Availability.FAILING:
        return CheckState.FAILING, previous.status is not Availability.FAILING
    flagged_now = current.verdict in FLAGGED
    if previous.status is not Availability.UP:
        return (CheckState.FLAGGED if flagged_now else CheckState.RECOVERED), True
    if flagged_now and previous.verdict not in FLAGGED:
        return CheckState.FLAGGED, True
    if current.content_hash != previous.content_hash:
        return CheckState.CHANGED, True
    if flagged_now:
        return CheckState.FLAGGED, False
    return CheckState.UNCHANGED, False


def check(
    entry: WatchEntry,
    outcome: ItemOutcome | None,
    previous: UrlState | None,
    *,
    defaults: Thresholds,
    run_id: str,
    now: datetime,
) -> Check:
    """One URL's check: its new state, classification and whether to alert."""
    current, why = observe(entry, outcome, previous, defaults=defaults, run_id=run_id, now=now)
    state, transition = classify(previous, current)
    return Check(
        url=entry.url,
        label=entry.label,
        state=state,
        transition=transition,
        previous=previous,
        current=current,
        not_modified=bool(outcome and outcome.succeeded and outcome.record is None),
        error=why or (current.error if current else None),
    )


def alert_subject(check: Check) -> str:
    """e.g. "baton: changed — Garden page"; cut to SNS's limit with an ellipsis."""
    subject = f"baton: {check.state.value} — {display_name(check.url, check.label)}"
    # SNS refuses line breaks and control characters in subjects; labels come from users.
    subject = "".join(char if char.isprintable() else " " for char in subject)
    return subject if len(subject) <= SUBJECT_MAX else subject[:SUBJECT_MAX - 1] + "…"


def alert_for(check: Check, run_id: str) -> Alert:
    """The structured body of a transition's alert."""
    if check.current is None or not check.transition:
        raise ValueError(f"{check.url}: {check.state} is not a transition")
    return Alert(
        url=check.url,
        label=check.label,
        transition=check.state,
        previous=check.previous,
        current=check.current,
        run_id=run_id,
        checked_at=check.current.checked_at,
    )
