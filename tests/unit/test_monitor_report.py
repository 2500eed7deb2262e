"""`baton monitor --once`'s report of a firing that left its run going, or followed an earlier one."""

from __future__ import annotations

from datetime import UTC, datetime

from baton.monitoring import run_report
from pipeline.monitor_models import Check, MonitorRun, MonitorRunStatus

STARTED = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class NoChecks:
    def run_checks(self, run_id: str) -> list[Check]:
        return []


def firing(status: MonitorRunStatus, **fields: object) -> MonitorRun:
    return MonitorRun.model_validate({"run_id": "monitor-2", "engine": "orchestrator",
                                      "trigger": "direct", "status": status,
                                      "started_at": STARTED, **fields})


def test_a_run_left_going_says_a_later_firing_settles_it() -> None:
    report = run_report(NoChecks(), firing(MonitorRunStatus.RUNNING, total=2000))  # type: ignore[arg-type]

    assert report.splitlines()[1] == (
        "  still running when this firing's time was up: a later firing settles its 2000 "
        "check(s) and alerts (`baton monitor --follow`)")


def test_a_firing_that_followed_an_earlier_run_names_it() -> None:
    report = run_report(NoChecks(), firing(  # type: ignore[arg-type]
        MonitorRunStatus.SKIPPED, adopted="monitor-1",
        error="monitor run monitor-1 was still in progress"))

    assert report.splitlines() == [
        "monitor run monitor-2 (orchestrator, direct) 2026-11-22 10:00:00: skipped — monitor run "
        "monitor-1 was still in progress",
        "  followed the earlier run monitor-1 (settled it if it had ended)"]
