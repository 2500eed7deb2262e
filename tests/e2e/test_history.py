"""`baton history` of a choreographed run (issue #11): every step of every item, each event
delivered and published with its times, as the other engines show theirs; `--timeline` and the
UI's run page draw the same steps."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from baton import run
from baton.cli import main
from baton.ui.reader import Reader
from engines.events import (
    PAGE_FAILED,
    PAGE_MODERATED,
    PAGE_REQUESTED,
    PAGE_SCRAPED,
    PAGE_STORED,
    PAGE_TRANSFORMED,
)
from pipeline.models import RunSummary
from tests.e2e.test_engines import reset_site

STACK = "baton-engines"
CHAIN = [PAGE_REQUESTED, PAGE_SCRAPED, PAGE_TRANSFORMED, PAGE_MODERATED]
STORED = [event for consumed, published in zip(CHAIN, [*CHAIN[1:], PAGE_STORED], strict=True)
          for event in (f"{consumed} delivered", f"{published} published")] + ["succeeded"]
FAILED_AT_ONCE = [f"{PAGE_REQUESTED} delivered", f"{PAGE_FAILED} published", "failed"]


@pytest.fixture(scope="module")
def choreographed(pipeline_stack, sample_site_url) -> RunSummary:
    reset_site(sample_site_url)
    urls = [f"{sample_site_url}{page}?history=1" for page in
            ("/pages/garden", "/faults/flaky", "/faults/missing")]
    summary = run.run("choreography", "local", STACK, run.run_request(urls, max_concurrency=3),
                      timeout_s=300)
    assert isinstance(summary, RunSummary)
    return summary


def history(run_id: str, capsys: pytest.CaptureFixture[str], rows: int) -> dict[str, Any]:
    """`baton history --json`, once the steps' log lines have all landed (they are written as
    each step ends, and the run can end before the last one is read back)."""
    deadline = time.monotonic() + 30
    while True:
        assert main(["history", run_id, "--stack-name", STACK, "--json"]) == 0
        answer = json.loads(capsys.readouterr().out)
        if len(answer["events"]) >= rows or time.monotonic() > deadline:
            return dict(answer)
        time.sleep(1)


def test_every_event_of_every_item_is_in_the_history(choreographed, capsys):
    garden, flaky, missing = (item.url for item in sorted(
        choreographed.items, key=lambda item: ["garden", "flaky", "missing"].index(
            item.url.split("/")[-1].split("?")[0])))
    answer = history(choreographed.run_id, capsys, rows=2 * len(STORED) + len(FAILED_AT_ONCE))
    rows: dict[str, list[dict[str, str]]] = {}
    for row in answer["events"]:
        rows.setdefault(row["item"], []).append(row)

    assert answer["engine"] == "choreography"
    assert [row["event"] for row in rows[garden]] == STORED
    assert [row["event"] for row in rows[flaky]] == STORED
    assert [row["event"] for row in rows[missing]] == FAILED_AT_ONCE
    assert rows[flaky][1]["detail"] == "attempts 3"  # 500, 500, then 200: the scraper's retries
    assert rows[missing][1]["detail"].startswith("attempts 1; PermanentError")
    for row in rows[garden]:
        if row["event"].endswith("delivered"):  # an event is delivered after it is published
            published = row["detail"].removeprefix("published ")
            assert published[:19] <= row["at"][:19], row  # the bus keeps whole seconds


def test_the_timeline_and_the_run_page_draw_each_step(choreographed, capsys):
    history(choreographed.run_id, capsys, rows=2 * len(STORED) + len(FAILED_AT_ONCE))
    view = Reader("local", STACK).run(choreographed.run_id)
    bars = {item.url: [bar.step for bar in view.bars_of(item.url)] for item in choreographed.items}

    assert sorted(bars.values()) == sorted([["scraper", "transformer", "moderator", "store"]] * 2
                                           + [["scraper"]])
    assert main(["history", choreographed.run_id, "--stack-name", STACK, "--timeline"]) == 0
    drawn = capsys.readouterr().out
    # Per URL its steps, attempts and outcome (flaky's scraper tried 3 times, missing's failed).
    assert "| scrap trans moder store" in drawn
    assert "| scrapx3 trans moder store" in drawn
    assert "| scrap:failed" in drawn
