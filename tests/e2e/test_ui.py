"""`baton ui` in a real browser (Debian's chromium, headless) after a run of each engine."""

from __future__ import annotations

import http.client
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from baton import monitoring, run
from baton.ui.history import cost_usd, timeline
from baton.ui.server import UiServer, serve
from baton.watch import Watch, watchlist_table
from pipeline.models import RunSummary
from pipeline.steps import ENGINES
from tests.e2e.test_engines import reset_site

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build"
STACK = "baton-engines"
PAGES = ["/pages/garden", "/pages/rant", "/faults/flaky", "/faults/missing"]
# Bars per page: the runs table records one span per step (flaky's 3 scraper attempts in one),
# the Step Functions history one bar per attempt, the choreography one per step (its adapters' logs).
# The orchestrator records its alert as a step of the item; Step Functions hands the item's end to
# the tracker, which alerts (no task of the execution), as the choreography's tracker does.
BARS = {"orchestrator": {"garden": 4, "rant": 5, "flaky": 4, "missing": 1},
        "stepfunctions": {"garden": 4, "rant": 4, "flaky": 6, "missing": 1},
        "choreography": {"garden": 4, "rant": 4, "flaky": 4, "missing": 1}}
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1140,900"]


@pytest.fixture(scope="module")
def runs(pipeline_stack, sample_site_url) -> dict[str, RunSummary]:
    """One run of each engine over the same pages (each engine its own URLs)."""
    summaries = {}
    for engine in ENGINES:
        reset_site(sample_site_url)
        urls = [f"{sample_site_url}{page}?ui={engine}" for page in PAGES]
        summary = run.run(engine, "local", STACK, run.run_request(urls, max_concurrency=4),
                          timeout_s=300)
        assert isinstance(summary, RunSummary)
        summaries[engine] = summary
    return summaries


@pytest.fixture(scope="module")
def ui(pipeline_stack) -> Iterator[UiServer]:
    server = serve("local", STACK, port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        installed = subprocess.run([str(ROOT / "scripts" / "install-browser.sh")], capture_output=True,
                                   text=True, timeout=600)
        assert installed.returncode == 0, f"could not install chromium:\n{installed.stderr[-2000:]}"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="baton-ui-browser-")
    for flag in [*BROWSER_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.implicitly_wait(5)
    SCREENSHOTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def page_of(url: str) -> str:
    return url.split("?")[0].rsplit("/", 1)[-1]


def test_the_runs_page_lists_a_run_of_every_engine(runs, ui, browser):
    browser.get(ui.url)
    browser.save_screenshot(str(SCREENSHOTS / "ui-runs.png"))

    listed = {row.get_attribute("data-run"): row.get_attribute("data-engine")
              for row in browser.find_elements("css selector", "tr.run")}
    for engine, summary in runs.items():
        assert listed.get(summary.run_id) == engine


@pytest.mark.parametrize("engine", ENGINES)
def test_a_run_page_draws_one_row_per_url_and_its_bars(runs, ui, browser, engine):
    browser.get(f"{ui.url}runs/{runs[engine].run_id}")
    browser.save_screenshot(str(SCREENSHOTS / f"ui-run-{engine}.png"))

    rows = browser.find_elements("css selector", "svg.gantt g.row")
    bars = {page_of(row.get_attribute("data-url")):
            len(row.find_elements("css selector", "rect.bar")) for row in rows}
    assert bars == BARS[engine]


@pytest.mark.parametrize("engine", ENGINES)
def test_clicking_a_failed_bar_shows_its_error_and_log_lines(runs, ui, browser, engine):
    browser.get(f"{ui.url}runs/{runs[engine].run_id}")
    failed = browser.find_element("css selector", 'g.row[data-url*="/faults/missing"] rect.bar.failed')

    failed.click()

    detail = browser.find_element("css selector", "#detail-body dl")
    assert "PermanentError" in detail.text
    assert "answered 404" in detail.text
    logs = browser.find_element("css selector", "#detail-body pre.logs").text
    assert "/faults/missing" in logs and "PermanentError" in logs
    browser.save_screenshot(str(SCREENSHOTS / f"ui-failed-bar-{engine}.png"))


def test_the_compare_page_shows_both_runs(runs, ui, browser):
    first, second = runs["orchestrator"].run_id, runs["choreography"].run_id
    browser.get(f"{ui.url}compare?a={first}&b={second}")
    browser.save_screenshot(str(SCREENSHOTS / "ui-compare.png"))

    heads = browser.find_element("css selector", "table.compare thead").text
    assert first in heads and second in heads
    cells = [cell.text for cell in browser.find_elements("css selector", "table.compare tbody tr td")]
    assert cells[cells.index("URLs") + 1: cells.index("URLs") + 3] == ["4", "4"]
    assert len(browser.find_elements("css selector", "svg.dist")) == 2


def test_the_text_timeline_and_the_cost_of_a_run(runs):
    summary = runs["stepfunctions"]

    text = timeline("local", STACK, summary.run_id)
    priced = cost_usd("local", STACK, summary.run_id)

    assert sum(1 for line in text.splitlines() if "?ui=stepfunctions" in line) == len(PAGES)
    # every bar is a step attempt (the alert is sent by the tracker, not by a task)
    assert priced["counts"]["step_attempts"] == sum(BARS["stepfunctions"].values())
    assert priced["total"] == pytest.approx(sum(priced["by_service"].values()))
    assert priced["by_service"]["stepfunctions"] > 0


def get(ui: UiServer, headers: dict[str, str]) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", ui.server_port, timeout=10)
    connection.putrequest("GET", "/", skip_host="Host" in headers)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    answer = connection.getresponse()
    body = answer.read().decode()
    connection.close()
    return answer.status, body


def test_the_ui_refuses_other_origins_and_hosts(ui):
    assert get(ui, {})[0] == 200
    status, reason = get(ui, {"Origin": "http://evil.example"})
    assert (status, "evil.example" in reason) == (403, True)
    status, reason = get(ui, {"Host": "evil.example"})
    assert (status, "evil.example" in reason) == (403, True)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(ui.url, headers={"Origin": "http://evil.example"}))
    assert refused.value.code == 403
    assert refused.value.headers.get("Access-Control-Allow-Origin") is None


def test_a_bar_links_the_pages_and_texts_it_stored(runs, ui, browser):
    browser.get(f"{ui.url}runs/{runs['stepfunctions'].run_id}")
    transformer = browser.find_element(
        "css selector", 'g.row[data-url*="/pages/garden"] rect.bar[data-step="transformer"]')

    transformer.click()

    links = browser.find_elements("css selector", "#detail-body a[href^='/objects?key=']")
    assert len(links) == 2  # its input's raw page, its output's text
    texts = [urllib.request.urlopen(link.get_attribute("href"), timeout=10).read().decode()
             for link in links]
    assert any("<html" in text.lower() for text in texts)


def test_the_monitor_page_shows_each_urls_checks_and_the_alerts_sent(runs, ui, browser,
                                                                      sample_site_url):
    watched = [f"{sample_site_url}/pages/garden?ui=monitor", f"{sample_site_url}/faults/missing?ui=monitor"]
    watch = Watch(watchlist_table("local", STACK))
    for url in watched:
        watch.add(url)
    monitor_run = monitoring.run_once("local", STACK, "stepfunctions")
    checks = monitoring.monitor_table("local", STACK).run_checks(monitor_run.run_id)

    browser.get(f"{ui.url}monitor")
    browser.save_screenshot(str(SCREENSHOTS / "ui-monitor.png"))

    headings = [h.text for h in browser.find_elements("css selector", "h2")]
    assert headings[0] == "Watchlist" and headings[-1] == "Alerts sent"
    grid = {row.find_element("css selector", "td").text:
            [cell.text for cell in row.find_elements("css selector", "td.check")]
            for row in browser.find_elements("css selector", "table.checks tbody tr")}
    assert {url: grid[url][-1].rstrip(" ⚑") for url in watched} == {
        check.url: check.state.value for check in checks}
    assert "page flagged" in browser.find_elements("css selector", "table.runs")[-1].text
