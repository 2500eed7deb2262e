"""`baton check` after one run of each engine on the deployed stack: nothing lost, nothing twice,
and its counts are the run's summary's."""

from __future__ import annotations

import json
import uuid

import pytest

from baton import monitoring, run
from baton.cli import main
from pipeline.models import RunSummary
from pipeline.steps import ENGINES

STACK = "baton-engines"  # the session's deployed stack (tests/e2e/conftest.py)
# A page stored and flagged (one alert), one stored, one stored after two 500s, one failed.
PAGES = ["/pages/rant", "/pages/garden", "/faults/flaky", "/faults/missing"]


@pytest.fixture(scope="module")
def summaries(pipeline_stack, sample_site_url) -> dict[str, RunSummary]:
    """One run per engine over its own URLs (the flaky page counts per key: each engine its own)."""
    found = {}
    for engine in ENGINES:
        urls = [f"{sample_site_url}{page}?engine={engine}&key={uuid.uuid4().hex[:8]}"
                for page in PAGES]
        summary = run.run(engine, "local", STACK, run.run_request(urls, max_concurrency=4),
                          timeout_s=300)
        assert isinstance(summary, RunSummary)
        found[engine] = summary
    return found


@pytest.mark.parametrize("engine", ENGINES)
def test_check_finds_nothing_lost_nor_doubled_and_agrees_with_the_summary(
        summaries, engine, capsys):
    summary = summaries[engine]

    code = main(["check", summary.run_id, "--json", "--stack-name", STACK])

    out, err = capsys.readouterr()
    report = json.loads(out)
    print(f"{engine}: {report}")  # the numbers, for the record (pytest -s)
    assert code == 0, err
    assert (report["engine"], report["status"]) == (engine, summary.status.value)
    assert report["submitted"] == summary.total == len(PAGES)
    assert report["terminal"] == summary.succeeded + summary.failed == len(summary.items)
    stored = sum(item.record is not None for item in summary.items)
    assert report["stored"] == report["records"] == stored == 3
    assert report["lost"] == 0
    assert (report["duplicate_records"], report["duplicate_history"],
            report["duplicate_alerts"], report["faults_injected"]) == (0, 0, 0, 0)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_flagged_page_of_each_run_was_alerted_once(summaries, engine):
    # What makes duplicate_alerts = 0 above mean something: the queue does hold the run's alert.
    run_id = summaries[engine].run_id
    alerts = [alert for alert in monitoring.recent_alerts("local", STACK, 1_000_000)
              if alert.body.get("run_id") == run_id]

    assert [alert.body["url"].split("?")[0].endswith("/pages/rant") for alert in alerts] == [True]
