"""`baton redrive` on the deployed pipeline, every engine: a page that was down during the run is
stored once it is back, under the same run id; a page that failed for good is not redone; a
second redrive finds nothing to do, and the run checks out (nothing lost, nothing twice)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from baton import run
from baton.cli import main
from pipeline.models import RunStatus, RunSummary
from pipeline.steps import ENGINES
from tests.e2e.test_engines import reset_site

STACK = "baton-engines"


def control(site_url: str, action: str) -> None:
    request = urllib.request.Request(f"{site_url}/_control/{action}", method="POST")
    urllib.request.urlopen(request, timeout=5).read()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_redrive_stores_what_was_down_and_leaves_what_failed_for_good(
        pipeline_stack, sample_site_url, engine, capsys):
    urls = [f"{sample_site_url}{page}?redrive={engine}"
            for page in ("/pages/garden", "/pages/news", "/faults/missing")]
    down, missing = urls[1], urls[2]
    reset_site(sample_site_url)
    control(sample_site_url, "down?page=news&status=503")
    first = run.run(engine, "local", STACK, run.run_request(urls, max_concurrency=3), timeout_s=300)
    assert isinstance(first, RunSummary)
    assert {item.url: item.error_type for item in first.items if not item.succeeded} == {
        down: "TransientError", missing: "PermanentError"}

    control(sample_site_url, "up?page=news")
    capsys.readouterr()
    assert main(["redrive", first.run_id, "--stack-name", STACK, "--json",
                 "--allow-failures"]) == 0
    redriven = RunSummary.model_validate_json(capsys.readouterr().out)

    assert (redriven.run_id, redriven.engine, redriven.total) == (first.run_id, engine, 3)
    assert redriven.status is RunStatus.FAILED_ITEMS and redriven.pending == 0
    outcomes = {item.url: item for item in redriven.items}
    assert outcomes[down].succeeded and outcomes[down].record is not None
    assert not outcomes[missing].succeeded and outcomes[missing].error_type == "PermanentError"
    assert outcomes[urls[0]].succeeded

    assert main(["redrive", first.run_id, "--stack-name", STACK, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"run_id": first.run_id, "redriven": []}
    assert main(["check", first.run_id, "--stack-name", STACK, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["lost"], report["duplicate_records"], report["stored"], report["records"]) == (
        0, 0, 2, 2)
