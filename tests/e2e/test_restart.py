"""The local cloud restarted in the middle of a run (issue #13), every engine: after a `kill -9`
of the whole cloud (or a graceful down/up), `baton up --persist` on the same state and
`baton redrive`, the run is complete, with nothing lost and nothing twice.

This module starts its own persistent local cloud (it kills it), not the session's.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from baton import deploy, run, targets
from baton.cli import main
from baton.localcloud import LocalCloud
from engines.runs import RunsTable
from pipeline.models import RunStatus, RunSummary
from pipeline.steps import ENGINES
from tests.e2e.conftest import UNLIMITED_HOST, free_port
from tests.e2e.test_engines import reset_site

STACK = "baton-restart"
SLOW_S = 8  # a slow page (under the scraper's 10 s read timeout) holds its item in flight


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, sample_site_url: str) -> Iterator[LocalCloud]:
    """A persistent local cloud of this module's own, with the pipeline deployed on it."""
    state = LocalCloud(state_dir=tmp_path_factory.mktemp("restart-cloud"))
    port = free_port()
    previous = {name: os.environ.get(name) for name in ("BATON_PORT", "BATON_STATE_DIR")}
    state.up(port=port, persist=True)
    # `baton` reaches this cloud, and knows when it started, as a user's `baton up` would say.
    os.environ |= {"BATON_PORT": str(port), "BATON_STATE_DIR": str(state.state_dir)}
    targets.client.cache_clear()
    try:
        # Every page is on the one sample site: without lifting the per-host limit the two slow
        # pages would hold both its slots, and the quick ones would all run after them at once.
        deploy.deploy("local", STACK, {"ScraperAllowedHosts": sample_site_url.removeprefix("http://"),
                                       "ScraperHostConcurrency": UNLIMITED_HOST},
                      say=lambda _: None)
        yield state
    finally:
        state.down()
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        targets.client.cache_clear()


def urls_for(site_url: str, case: str) -> list[str]:
    """About 20 pages, one abusive (an alert), two slow ones so the run is surely in flight."""
    pages = ([f"/faults/slow?delay={SLOW_S}&n={n}" for n in range(2)] + ["/pages/rant", "/pages/news"]
             + [f"/pages/garden?n={n}" for n in range(16)])
    return [f"{site_url}{page}{'&' if '?' in page else '?'}restart={case}" for page in pages]


def runs_table() -> RunsTable:
    outputs = deploy.stack_outputs("local", STACK)
    return RunsTable(outputs["RunsTableName"], targets.client("dynamodb"))


def wait_until_in_flight(run_id: str, done_at_least: int, timeout_s: float = 120) -> None:
    """Wait until some items have ended, and fail if the run ended before it could be cut."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        progress = runs_table().progress(run_id)
        if progress is not None and progress[1] >= done_at_least:
            assert "ended_at" not in progress[0], "the run ended before the restart: no test"
            # One persistence interval (2 s), so the run's start is on disk, as it would be for
            # any run that has been going for a while.
            time.sleep(2.5)
            return
        time.sleep(0.2)
    pytest.fail(f"run {run_id} did not get {done_at_least} items done in {timeout_s:.0f} s")


def wait_until_ended(run_id: str, timeout_s: float = 60) -> RunSummary:
    """The run's summary once it has ended; fails if it does not."""
    deadline = time.monotonic() + timeout_s
    while (summary := runs_table().summary(run_id)) is None or summary.ended_at is None:
        assert time.monotonic() < deadline, f"run {run_id} did not end: {summary}"
        time.sleep(0.5)
    return summary


def crash(cloud: LocalCloud) -> None:
    """Kill the whole local cloud, workers included, as a crash would: nothing is saved."""
    running = cloud.running()
    assert running is not None
    os.killpg(running.pid, signal.SIGKILL)
    os.waitpid(running.pid, 0)


def graceful(cloud: LocalCloud) -> None:
    """`baton down`: the state is saved on the way out."""
    assert cloud.down() is not None


def restart_mid_run(cloud: LocalCloud, site_url: str, engine: str, stop: Callable[[LocalCloud], None],
                    case: str, capsys: pytest.CaptureFixture[str]) -> tuple[RunSummary, dict]:
    urls = urls_for(site_url, case)
    reset_site(site_url)
    request = run.run_request(urls, max_concurrency=4)
    run.run(engine, "local", STACK, request, wait=False)
    wait_until_in_flight(request.run_id, done_at_least=3)
    port = cloud.running().port  # type: ignore[union-attr]

    stop(cloud)
    _, started = cloud.up(port=port, persist=True)
    assert started
    assert "failed to load" not in cloud.log_file.read_text().lower()

    capsys.readouterr()
    redriven = main(["redrive", request.run_id, "--stack-name", STACK, "--json"])
    printed = capsys.readouterr()
    assert printed.out.startswith("{"), printed.err
    if json.loads(printed.out) == {"run_id": request.run_id, "redriven": []}:
        # Nothing was left to redo: what the cloud kept in flight finished after the restart
        # (its last item's end may be counted a moment after its outcome is written).
        summary = wait_until_ended(request.run_id)
    else:
        summary = RunSummary.model_validate_json(printed.out)
    assert redriven == 0, [(item.url, item.failed_step, item.error_type, item.error)
                           for item in summary.items if not item.succeeded]
    checked = main(["check", request.run_id, "--stack-name", STACK, "--json"])
    printed = capsys.readouterr()
    assert checked == 0, printed
    return summary, json.loads(printed.out)


def assert_complete(summary: RunSummary, report: dict, engine: str, total: int) -> None:
    assert (summary.engine, summary.status, summary.total, summary.pending) == (
        engine, RunStatus.SUCCEEDED, total, 0)
    assert summary.succeeded == total and summary.flagged == 1
    assert (report["submitted"], report["terminal"], report["stored"], report["records"]) == (
        total, total, total, total)
    assert (report["lost"], report["duplicate_records"], report["duplicate_history"],
            report["duplicate_alerts"]) == (0, 0, 0, 0)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_run_survives_a_kill_9_of_the_local_cloud(cloud, sample_site_url, engine, capsys):
    summary, report = restart_mid_run(cloud, sample_site_url, engine, crash, f"crash-{engine}", capsys)

    assert_complete(summary, report, engine, len(urls_for(sample_site_url, "")))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_run_survives_a_graceful_restart(cloud, sample_site_url, engine, capsys):
    summary, report = restart_mid_run(cloud, sample_site_url, engine, graceful, f"down-{engine}",
                                      capsys)

    assert_complete(summary, report, engine, len(urls_for(sample_site_url, "")))

