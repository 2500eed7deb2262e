"""The scheduled monitor on the local cloud: the rule fires on its own; alerts only on transitions.

Slow by nature (a one-minute schedule, three firings): about four minutes.
"""

from __future__ import annotations

import itertools
import time
import urllib.request
from collections.abc import Callable, Iterator
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


# ---- a run longer than the monitor's budget -----------------------------------------------------

TINY_BUDGET_S = "0.001"  # MONITOR_FOLLOW_SECONDS: every firing stops following at once


@pytest.fixture
def tiny_budget(monitored: dict[str, str]) -> Iterator[None]:
    """The monitor follows a run for a millisecond only, and only the test fires it."""
    deploy.deploy("local", STACK, {"MonitorSchedule": "rate(1 hour)"}, say=lambda _: None)
    before = monitoring.set_variables("local", STACK, {"MONITOR_FOLLOW_SECONDS": TINY_BUDGET_S})
    yield
    monitoring.set_variables("local", STACK, {"MONITOR_FOLLOW_SECONDS": before.get(
        "MONITOR_FOLLOW_SECONDS")})


def fire_until(done: Callable[[MonitorRun], bool], what: str,
               timeout_s: float = 180) -> list[MonitorRun]:
    """Fire the monitor by hand (`baton monitor --once`) until ``done``; every firing's record."""
    fired: list[MonitorRun] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fired.append(monitoring.run_once("local", STACK, None))
        if done(fired[-1]):
            return fired
        time.sleep(1)
    raise AssertionError(f"no {what} in {timeout_s} s: "
                         f"{[(run.status.value, run.adopted, run.error) for run in fired]}")


def recorded(run_id: str) -> MonitorRun:
    (run,) = [run for run in monitoring.monitor_table("local", STACK).recent_runs(50)
              if run.run_id == run_id]
    return run


def alerted(label: str, transition: str) -> MonitorRun | None:
    """The monitor run that raised this alert, once it has."""
    for run in monitoring.monitor_table("local", STACK).recent_runs(50):
        if any((sent.label, sent.transition.value) == (label, transition) for sent in run.alerts):
            return run
    return None


def test_a_run_that_outlives_the_monitors_budget_is_settled_later_and_alerts_once(
    monitored, sample_site_url, tiny_budget
):
    # Every page known first: a run started by one firing, settled by a later one.
    fired = fire_until(lambda run: run.status == "running", "run started")
    primer = fired[-1]
    assert primer.ended_at is None and primer.total == len(PAGES)  # left running
    fired += fire_until(lambda _: recorded(primer.run_id).status == "done",
                        f"settling of {primer.run_id}")
    # That firing started the next run: from now on one is always going, so every firing
    # adopts it, and the page's change is seen by whichever run fetches it next.
    control(sample_site_url, "change?page=recette")
    after_change = fire_until(lambda _: alerted("Recette", "changed") is not None,
                              "alert for the changed page")

    run = alerted("Recette", "changed")
    assert run is not None and run.status == "done", run
    assert [(sent.label, sent.transition.value, sent.published) for sent in run.alerts] == [
        ("Recette", "changed", True)]
    # It outlived the firing that started it, and a later firing that adopted it settled it.
    assert [one.status.value for one in fired + after_change if one.run_id == run.run_id] == [
        "running"]
    assert any(one.adopted == run.run_id for one in after_change)
    published = [alert.body for alert in monitoring.recent_alerts("local", STACK, limit=200)
                 if alert.body.get("label") == "Recette"]
    assert [(body["transition"], body["run_id"]) for body in published] == [
        ("changed", run.run_id)]  # once
    # No firing started a run over a run going: each adopted it (and settled it if it ended).
    assert all(one.adopted is not None for one in after_change), [
        (one.status.value, one.adopted) for one in after_change]
    runs = sorted((run for run in monitoring.monitor_table("local", STACK).recent_runs(50)
                   if run.status != "skipped" and run.total), key=lambda run: run.started_at)
    for before, after in itertools.pairwise(runs):
        assert before.ended_at is not None and before.ended_at <= after.started_at, (
            f"monitor runs {before.run_id} and {after.run_id} overlap")
