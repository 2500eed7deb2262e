"""The UI's pages as rendered HTML: the runs list, a run's Gantt and graph, a comparison."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from baton.cost import Trace, cost
from baton.ui import pages
from baton.ui.charts import gantt_svg, percentile, step_stats
from baton.ui.model import Bar, RunView
from baton.ui.pages import compare_page, runs_page
from baton.ui.reader import RunRow
from pipeline.monitor_models import Check, CheckState, MonitorRun, MonitorRunStatus

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def view() -> RunView:
    bars = [Bar("http://a.test/", "scraper", 1, 1, at(0), at(100), "retried", "TransientError", "500"),
            Bar("http://a.test/", "scraper", 2, 1, at(1100), at(1200), "succeeded"),
            Bar("http://a.test/", "transformer", 1, 1, at(1200), at(1300), "succeeded"),
            Bar("http://b.test/", "scraper", 1, 1, at(0), at(50), "failed", "PermanentError", "404")]
    return RunView("run-1", "stepfunctions", "failed-items", at(0), at(1300), total=2, bars=bars)


def test_the_gantt_has_one_row_per_url_and_one_rect_per_bar():
    svg = gantt_svg(view())

    assert re.findall(r'<g class="row ?(\w*)" data-url="([^"]+)"', svg) == [
        ("critical", "http://a.test/"), ("", "http://b.test/")]  # a ended last
    assert re.findall(r'data-outcome="(\w+)"', svg) == ["retried", "succeeded", "succeeded", "failed"]
    assert sorted(map(int, re.findall(r'data-bar="(\d+)"', svg))) == [0, 1, 2, 3]


def test_step_stats_count_outcomes_and_latencies():
    stats = step_stats(view())

    assert {k: stats["scraper"][k] for k in ("bars", "succeeded", "failed", "retried")} == {
        "bars": 3, "succeeded": 1, "failed": 1, "retried": 1}
    assert stats["scraper"]["p50"] == 100


def test_percentile_of_known_values():
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5) == 5.5
    assert percentile([], 0.95) == 0.0


def row(run_id: str, engine: str, status: str) -> RunRow:
    return RunRow(run_id, engine, status, "2026-11-30T12:00:00", "", 2, 1, 1, 0, 1.5, 0.001)


def test_the_runs_page_filters_by_engine_and_status():
    rows = [row("r1", "orchestrator", "succeeded"), row("r2", "choreography", "failed-items"),
            row("r3", "orchestrator", "failed-items")]

    html = runs_page(rows, "orchestrator", "failed-items")

    assert re.findall(r'data-run="([^"]+)"', html) == ["r3"]
    assert 'data-refresh=""' in html  # nothing running: no reload


def test_the_runs_page_reloads_while_a_run_is_running():
    assert 'data-refresh="1"' in runs_page([row("r1", "orchestrator", "running")], None, None)


def test_the_compare_page_puts_both_runs_side_by_side():
    first, second = view(), view()
    second.run_id, second.engine = "run-2", "choreography"
    priced = cost(Trace(state_transitions=4), {k: 1.0 for k in (
        "lambda_request", "lambda_gb_second", "stepfunctions_state_transition", "eventbridge_event",
        "sns_publish", "sqs_request", "dynamodb_write_unit", "dynamodb_read_unit", "s3_put_request",
        "s3_get_request")})

    html = compare_page([(first, priced), (second, priced)], [], ["run-1", "run-2"])

    assert 'href="/runs/run-1"' in html and 'href="/runs/run-2"' in html
    assert html.count('<svg class="dist"') == 2
    assert "<td>wall time</td><td>1.3 s</td><td>1.3 s</td>" in html


def test_the_monitor_page_styles_each_check_and_marks_a_skipped_firing():
    watched = "http://a.test/"
    firings = [MonitorRun(run_id=f"mon-{n}", engine="orchestrator", trigger="schedule",
                          status=status, started_at=at(n * 60_000))
               for n, status in enumerate([MonitorRunStatus.DONE, MonitorRunStatus.SKIPPED,
                                           MonitorRunStatus.DONE])]
    checks = {"mon-0": [Check(url=watched, state=CheckState.UNCHANGED, transition=False)],
              "mon-2": [Check(url=watched, state=CheckState.FAILING, transition=True)]}

    html = pages.monitor_page([], list(reversed(firings)), checks, [])

    assert re.findall(r'<td class="check (\w*)"', html) == ["unchanged", "skipped", "failing"]
    assert "failing ⚑" in html and html.count("<br>skipped</th>") == 1
    assert "td.check.failing" in (Path(pages.__file__).parent / "assets" / "style.css").read_text()
