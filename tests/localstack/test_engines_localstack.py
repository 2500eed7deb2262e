"""Each engine runs the pipeline on a real LocalStack 2026.3 (host mode, no Docker).

The functions run as host processes through the harness's runtime executor plugin
(``--host-functions``), so LocalStack's own Lambda, Step Functions, EventBridge, DynamoDB and S3
carry the run: the orchestrator's invokes, the state machine's Distributed Map reading its items
from S3 and its Lambda tasks, the choreography's rules and asynchronous targets. A small
watchlist of the sample site (served by this module on 127.0.0.1) goes through each engine with
`baton run --target localstack`; then `baton check`, `baton executions` and `baton history`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from baton import deploy
from baton.site import serve
from pipeline.steps import ENGINES
from tests.localstack.conftest import baton, start_localstack

STACK = "baton-ls-engines"
# One stored, one 404, one flagged (blocked by the moderator, alerted).
PAGES = {"stored": "/pages/garden", "missing": "/faults/missing", "flagged": "/pages/rant"}


@pytest.fixture(scope="module")
def localstack() -> Iterator[str]:
    yield from start_localstack(stand_in_docker=False, host_functions=True)


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    with serve(port=0) as site:
        yield site.base_url


@pytest.fixture(scope="module")
def deployed(localstack: str, site_url: str) -> dict[str, str]:
    # Every page is on one host: lift the per-host limit so no item waits on a slot.
    result = baton("deploy", "--target", "localstack", "--stack-name", STACK,
                   "--param", f"ScraperAllowedHosts={site_url.removeprefix('http://')}",
                   "--param", "ScraperHostConcurrency=40")
    assert result.returncode == 0, result.stdout + result.stderr
    return deploy.stack_outputs("localstack", STACK)


def urls(site_url: str, engine: str) -> dict[str, str]:
    """The watchlist of ``engine``: its own URLs (a query the site ignores), so each run sees
    new pages."""
    return {name: f"{site_url}{page}?engine={engine}" for name, page in PAGES.items()}


@pytest.fixture(scope="module")
def runs(deployed: dict[str, str], site_url: str) -> dict[str, dict[str, Any]]:
    """Each engine's run of the watchlist: its `baton run --json` summary."""
    found = {}
    for engine in ENGINES:
        args = [arg for url in urls(site_url, engine).values() for arg in ("--url", url)]
        result = baton("run", "--engine", engine, "--target", "localstack", "--stack-name", STACK,
                       "--max-concurrency", "3", "--json", *args)
        # Exit 1: one page (the 404) failed, as it should; anything else is the engine's failure.
        assert result.returncode == 1, f"{engine}: {result.stdout}{result.stderr}"
        found[engine] = json.loads(result.stdout)
    return found


def by_name(summary: dict[str, Any], site_url: str) -> dict[str, dict[str, Any]]:
    names = {url: name for name, url in urls(site_url, summary["engine"]).items()}
    return {names[item["url"]]: item for item in summary["items"]}


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_stores_one_page_fails_the_404_and_flags_one(runs, site_url, engine):
    summary = runs[engine]
    items = by_name(summary, site_url)

    assert summary["engine"] == engine
    assert (summary["total"], summary["succeeded"], summary["failed"], summary["flagged"]) == \
        (3, 2, 1, 1)
    assert items["stored"]["succeeded"] and items["stored"]["record"]["verdict"] == "allow"
    assert items["stored"]["record"]["change"] == "new"
    assert items["flagged"]["record"]["verdict"] == "block"
    assert not items["missing"]["succeeded"]
    assert (items["missing"]["failed_step"], items["missing"]["error_type"]) == \
        ("scraper", "PermanentError")
    assert "404" in items["missing"]["error"]
    assert {item["attempts"] for item in items.values()} == {1}


@pytest.mark.parametrize("engine", ENGINES)
def test_check_finds_nothing_lost_or_doubled(runs, engine):
    result = baton("check", runs[engine]["run_id"], "--target", "localstack", "--stack-name", STACK,
                   "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["engine"] == engine
    assert (report["submitted"], report["terminal"], report["stored"], report["records"]) == \
        (3, 3, 2, 2)
    assert report["lost"] == 0
    assert (report["duplicate_records"], report["duplicate_history"],
            report["duplicate_alerts"]) == (0, 0, 0)


def test_executions_lists_each_engines_run(runs):
    result = baton("executions", "--target", "localstack", "--stack-name", STACK, "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    listed = {(execution["run_id"], execution["engine"]) for execution in json.loads(result.stdout)}
    assert {(summary["run_id"], engine) for engine, summary in runs.items()} <= listed


@pytest.mark.parametrize("engine", ENGINES)
def test_history_shows_each_items_steps(runs, site_url, engine):
    result = baton("history", runs[engine]["run_id"], "--target", "localstack", "--stack-name",
                   STACK, "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    history = json.loads(result.stdout)
    assert history["engine"] == engine
    text = json.dumps(history["events"])
    for url in urls(site_url, engine).values():
        assert url in text, url
    assert "PermanentError" in text
