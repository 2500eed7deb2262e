"""The runs table's timestamps sort as the moments they name: its conditions (a lease that
lapsed, an end older than the item's redrive) compare them as strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from engines.runs import timestamp


def test_a_whole_second_sorts_before_the_moment_just_after_it():
    whole = datetime(2026, 11, 30, 9, 44, 37, tzinfo=UTC)
    later = whole + timedelta(microseconds=1)
    assert timestamp(whole) < timestamp(later)
    assert timestamp(whole) == "2026-11-30T09:44:37.000000+00:00"


def test_moments_in_any_zone_are_written_in_utc():
    paris = timezone(timedelta(hours=1))
    assert timestamp(datetime(2026, 11, 30, 10, 0, tzinfo=paris)) == "2026-11-30T09:00:00.000000+00:00"
