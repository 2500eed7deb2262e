"""Parity: the three engines give the same outcomes, attempts and stored records."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest

from baton import run
from pipeline.models import ItemOutcome, RunSummary
from pipeline.steps import ENGINES

PAGES = ["/pages/garden", "/pages/rant", "/faults/flaky", "/faults/missing", "/faults/slow?delay=1",
         "/faults/huge", "/faults/report.pdf", "/faults/to-private"]


def reset_site(site_url: str) -> None:
    request = urllib.request.Request(f"{site_url}/_control/reset", method="POST")
    urllib.request.urlopen(request, timeout=5).read()


def run_engine(engine: str, site_url: str) -> RunSummary:
    # Each engine gets its own URLs (a query parameter the site ignores), so both see new pages
    # and their stored records can be compared field by field.
    urls = [f"{site_url}{page}{'&' if '?' in page else '?'}engine={engine}" for page in PAGES]
    reset_site(site_url)
    summary = run.run(engine, "local", "baton-engines", run.run_request(urls, max_concurrency=4),
                      timeout_s=300)
    assert isinstance(summary, RunSummary)
    return summary


def comparable(item: ItemOutcome, engine: str) -> dict[str, Any]:
    record = item.record
    return {
        "page": item.url.replace(f"engine={engine}", "").rstrip("?&"),
        "succeeded": item.succeeded, "error_type": item.error_type,
        "failed_step": item.failed_step, "attempts": item.attempts,
        "record": None if record is None else {
            "content_hash": record.content_hash, "change": record.change,
            "verdict": record.verdict, "score": round(record.score, 6),
            "previous_hash": record.previous_hash},
    }


@pytest.fixture(scope="module")
def summaries(pipeline_stack, sample_site_url) -> dict[str, RunSummary]:
    return {engine: run_engine(engine, sample_site_url) for engine in ENGINES}


def by_page(summary: RunSummary) -> dict[str, dict[str, Any]]:
    rows = [comparable(item, summary.engine) for item in summary.items]
    return {row["page"]: row for row in rows}


@pytest.mark.parametrize("engine", ["stepfunctions", "choreography"])
def test_every_engine_gives_the_orchestrators_outcome_for_every_page(summaries, engine):
    assert by_page(summaries[engine]) == by_page(summaries["orchestrator"])


def test_outcomes_are_the_expected_ones(summaries):
    rows = by_page(summaries["orchestrator"])
    site = next(iter(rows)).split("/pages")[0].split("/faults")[0]

    assert rows[f"{site}/pages/garden"]["record"]["verdict"] == "allow"
    assert rows[f"{site}/pages/rant"]["record"]["verdict"] == "block"
    assert rows[f"{site}/faults/flaky"]["attempts"] == 3  # 500, 500, then 200
    assert rows[f"{site}/faults/flaky"]["succeeded"]
    assert rows[f"{site}/faults/slow?delay=1"]["succeeded"]
    for page in ("/faults/missing", "/faults/huge", "/faults/report.pdf", "/faults/to-private"):
        assert rows[f"{site}{page}"]["error_type"] == "PermanentError", page
        assert rows[f"{site}{page}"]["failed_step"] == "scraper", page


def test_summaries_count_the_same(summaries):
    counts = {engine: (s.total, s.succeeded, s.failed, s.flagged) for engine, s in summaries.items()}

    assert counts == {engine: (8, 4, 4, 1) for engine in ENGINES}


def test_stored_text_is_the_same_for_both_engines(summaries, pipeline_stack, aws):
    s3 = aws("s3")

    def text(summary: RunSummary, page: str) -> str:
        item = next(i for i in summary.items if page in i.url)
        assert item.record is not None
        body = s3.get_object(Bucket=pipeline_stack["DataBucketName"], Key=item.record.text_key)
        return str(body["Body"].read().decode())

    texts = {engine: text(summary, "/pages/rant") for engine, summary in summaries.items()}
    assert len(set(texts.values())) == 1, texts


def test_executions_lists_the_runs_of_both_engines(summaries):
    from baton.executions import Executions

    listed = {(e.run_id, e.engine) for e in Executions("local", "baton-engines").recent()}

    assert (summaries["orchestrator"].run_id, "orchestrator") in listed
    assert (summaries["stepfunctions"].run_id, "stepfunctions") in listed


def test_history_shows_the_retried_step_for_each_engine(summaries):
    from baton.executions import Executions

    executions = Executions("local", "baton-engines")
    engine, orchestrated = executions.history(summaries["orchestrator"].run_id)
    _, stepped = executions.history(summaries["stepfunctions"].run_id)

    assert engine == "orchestrator"
    flaky = [row for row in orchestrated if "/faults/flaky" in row.item and row.step == "scraper"]
    assert [row.detail for row in flaky] == ["attempts 3"]
    assert sum(row.event == "TaskFailed" and row.detail.startswith("TransientError")
               for row in stepped) == 2
