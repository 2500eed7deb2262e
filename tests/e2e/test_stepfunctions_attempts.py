"""Step Functions counts an item's retried attempts as the orchestrator does, under faults whose
errors do not name the item (a killed invoke: "Runtime exited with error: signal: killed").

Each Lambda request's first attempt is killed (`baton run --faults lambda.crash=@1`), so every
step of every page runs twice: both engines must report 2 attempts for each item. The summary
reads them from each item's own child execution of the Distributed Map; before, only failures
whose message named the URL were counted, and these pages showed 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baton.cli import main
from pipeline.models import RunSummary
from pipeline.steps import ORCHESTRATOR, STEPFUNCTIONS
from tests.e2e.test_engines import reset_site

STACK = "baton-engines"
PAGES = ("/pages/garden", "/pages/library")


@pytest.mark.parametrize("engine", [ORCHESTRATOR, STEPFUNCTIONS])
def test_a_step_killed_once_is_two_attempts_in_either_engine(pipeline_stack, sample_site_url,
                                                              engine, capsys, tmp_path: Path):
    urls = [f"{sample_site_url}{page}?attempts={engine}" for page in PAGES]
    watchlist = tmp_path / "urls.txt"
    watchlist.write_text("\n".join(urls) + "\n")
    reset_site(sample_site_url)
    capsys.readouterr()

    code = main(["run", "--engine", engine, "--watchlist", str(watchlist), "--faults",
                 "lambda.crash=@1", "--json", "--stack-name", STACK])

    out, err = capsys.readouterr()
    assert code == 0, out + err
    summary = RunSummary.model_validate(json.loads(out)["summary"])
    assert summary.succeeded == len(urls)
    assert {item.url: item.attempts for item in summary.items} == dict.fromkeys(urls, 2)
