"""Hostile pages through the deployed pipeline: every engine records the same outcome and attempts.

The stack is deployed with a 3 s scraper deadline (the ScraperTimeoutSeconds parameter) so that a
page slower than the deadline costs 4 attempts of about 4 s per engine, not 4 of 26 s.
"""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest

from baton import run
from pipeline.models import ItemOutcome, RunSummary
from pipeline.steps import ENGINES
from tests.e2e.conftest import UNLIMITED_HOST

STACK = "baton-hostile"
DEADLINE_S = 3
ATTEMPTS_WHEN_TRANSIENT = 4  # the first try and pipeline.policy's 3 retries

# page -> (succeeded, error_type, what the error says); every failure is the scraper's.
EXPECTED: dict[str, tuple[bool, str | None, str | None]] = {
    "/pages/garden": (True, None, None),
    "/faults/slow?delay=1": (True, None, None),  # slow, but well within the deadline
    "/faults/slow-headers?interval=1&lines=30": (False, "TransientError", "took longer than"),
    "/faults/drip?interval=1&bytes=200": (False, "TransientError", "took longer than"),
    "/faults/gzip": (True, None, None),
    "/faults/deflate": (True, None, None),
    "/faults/gzip-bomb": (False, "PermanentError", "compression bomb"),
    "/faults/binary.html": (False, "PermanentError", "PNG image"),
    "/faults/truncated": (False, "TransientError", "truncated body"),
    "/faults/link-farm?links=5000&title=20000": (True, None, None),
}


@pytest.fixture(scope="module")
def hostile_stack(local_cloud, sample_site_url: str) -> dict[str, str]:
    from baton import deploy

    parameters = {"ScraperAllowedHosts": sample_site_url.removeprefix("http://"),
                  "ScraperTimeoutSeconds": str(DEADLINE_S),
                  "ScraperHostConcurrency": UNLIMITED_HOST}  # all pages are on one host
    return deploy.deploy("local", STACK, parameters, say=lambda _: None).outputs


def run_engine(engine: str, site_url: str) -> RunSummary:
    # Each engine gets its own URLs (a query parameter the site ignores): all pages are new.
    urls = [f"{site_url}{page}{'&' if '?' in page else '?'}engine={engine}" for page in EXPECTED]
    reset = urllib.request.Request(f"{site_url}/_control/reset", method="POST")
    urllib.request.urlopen(reset, timeout=5).read()
    summary = run.run(engine, "local", STACK,
                      run.run_request(urls, max_concurrency=len(urls)), timeout_s=600)
    assert isinstance(summary, RunSummary)
    return summary


@pytest.fixture(scope="module")
def summaries(hostile_stack, sample_site_url: str) -> dict[str, RunSummary]:
    return {engine: run_engine(engine, sample_site_url) for engine in ENGINES}


def page_of(item: ItemOutcome, engine: str) -> str:
    path = "/" + item.url.split("://", 1)[1].split("/", 1)[1]
    return path.replace(f"engine={engine}", "").rstrip("?&")


def outcomes(summary: RunSummary) -> dict[str, dict[str, Any]]:
    return {
        page_of(item, summary.engine): {
            "succeeded": item.succeeded, "error_type": item.error_type,
            "failed_step": item.failed_step, "attempts": item.attempts,
            "content_hash": None if item.record is None else item.record.content_hash,
        }
        for item in summary.items
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_each_hostile_page_ends_in_its_expected_outcome(summaries, engine):
    items = {page_of(item, engine): item for item in summaries[engine].items}

    assert set(items) == set(EXPECTED)
    for page, (succeeded, error_type, says) in EXPECTED.items():
        item = items[page]
        assert (item.succeeded, item.error_type) == (succeeded, error_type), (page, item.error)
        if succeeded:
            assert item.record is not None, page
        else:
            assert item.failed_step == "scraper", (page, item.failed_step)
            assert says is not None and says in (item.error or ""), (page, item.error)
            expected_attempts = ATTEMPTS_WHEN_TRANSIENT if error_type == "TransientError" else 1
            assert item.attempts == expected_attempts, (page, item.attempts)


@pytest.mark.parametrize("engine", ["stepfunctions", "choreography"])
def test_every_engine_records_the_orchestrators_outcomes_and_attempts(summaries, engine):
    assert outcomes(summaries[engine]) == outcomes(summaries["orchestrator"])


def test_a_compressed_page_is_stored_as_the_page_itself(summaries):
    rows = outcomes(summaries["orchestrator"])

    # Same text as the uncompressed page, so the same content hash: not compressed bytes.
    assert rows["/faults/gzip"]["content_hash"] == rows["/pages/garden"]["content_hash"]
    assert rows["/faults/deflate"]["content_hash"] == rows["/pages/garden"]["content_hash"]
