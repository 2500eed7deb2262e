"""The scheduled monitor on the local cloud: the rule fires on its own; alerts only on transitions.

Slow by nature (a one-minute schedule, three firings): about four minutes.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from baton import deploy, monitoring
from baton.watch import Watch, watchlist_table
from pipeline.monitor_models import CheckState, MonitorRun

STACK = "baton-monitor"
PAGES = {"garden": "Garden", "recette": "Recette", "news": "News", "library": "Library",
         "wanderung": "Hike"}


def control(site_url: str, action: str) -> None:
    request = urllib.request.Request(f"{site_url}/_control/{action}", method="POST")
    urllib.request.urlopen(request, timeout=5).read()


@pytest.fixture(scope="module")
def monitored(local_cloud, sample_site_url, tmp_path_factory) -> Iterator[dict[str, str]]:
    control(sample_site_url, "reset")
    outputs = deploy.deploy("local", STACK, {
        "ScraperAllowedHosts": sample_site_url.removeprefix("http://"),
        "MonitorSchedule": "rate(1 minute)", "MonitorEngine": "orchestrator"},
        say=lambda _: None).outputs
    watchlist = Path(tmp_path_factory.mktemp("monitor")) / "watchlist.txt"
    watchlist.write_text("".join(f"{sample_site_url}/pages/{page}  {label}\n"
                                 for page, label in PAGES.items()))
    Watch(watchlist_table("local", STACK)).import_file(watchlist)
    yield outputs
    deploy.deploy("local", STACK, {"MonitorSchedule": "rate(1 hour)"}, say=lambda _: None)


def next_scheduled_run(after: set[str], timeout_s: float = 150) -> MonitorRun:
    """The next monitor run the schedule starts (not one started by hand), once it has ended."""
    table = monitoring.monitor_table("local", STACK)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for run in table.recent_runs(20):
            if run.run_id not in after and run.trigger == "schedule" and run.status != "running":
                after.add(run.run_id)
                return run
        time.sleep(2)
    raise AssertionError(f"the schedule started no monitor run in {timeout_s} s")


def alerts_of(run: MonitorRun) -> dict[str, str]:
    """{label: transition} of the alerts a run published through SNS (read back from SQS)."""
    published = monitoring.recent_alerts("local", STACK, limit=200)
    return {alert.body["label"]: alert.body["transition"] for alert in published
            if alert.body.get("run_id") == run.run_id}


def test_scheduled_runs_alert_once_per_transition(monitored, sample_site_url):
    seen: set[str] = set()
    first = next_scheduled_run(seen)
    assert first.status == "done", first.error
    assert first.counts.get(CheckState.NEW) == len(PAGES)
    assert alerts_of(first) == {}  # new pages are not alerted

    control(sample_site_url, "change?page=news")
    control(sample_site_url, "down?page=library&status=503")
    control(sample_site_url, "toxic?page=wanderung")
    second = next_scheduled_run(seen)
    assert second.status == "done", second.error
    assert alerts_of(second) == {"News": "changed", "Library": "down", "Hike": "flagged"}

    control(sample_site_url, "up?page=library")
    third = next_scheduled_run(seen)
    assert third.status == "done", third.error
    # Still toxic, still up: no new alert for the hike page; the library page is back.
    assert alerts_of(third) == {"Library": "recovered"}
