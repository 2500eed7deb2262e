"""`baton run --faults` on the deployed pipeline, every engine: ~50 URLs under a seeded mix of
every fault kind at 10-20 %. Nothing is lost, nothing stored or alerted twice; the items that
ran out of retries failed with the fault's own error name; `baton redrive` then stores every
item that is not a permanent failure, and a second redrive has nothing to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baton import faults
from baton.cli import main
from pipeline.models import RunSummary
from pipeline.steps import CHOREOGRAPHY, ENGINES, ORCHESTRATOR
from tests.e2e.test_engines import reset_site

STACK = "baton-engines"
SEED = 7
SPEC = ("lambda.throttle=0.15,lambda.service=0.1,lambda.crash=0.1,lambda.timeout=0.1,"
        "invoke.duplicate=0.2,event.duplicate=0.2,event.delay=0.15,dynamodb.throttle=0.1,"
        "dynamodb.conflict=0.1,s3.slowdown=0.1,sns.throttle=0.2")
STORED_PAGES = ("/pages/garden", "/pages/library", "/pages/recette", "/pages/wanderung",
                "/pages/news", "/pages/rant", "/pages/flame", "/faults/latin1", "/faults/moved")
PERMANENT_PAGES = ("/faults/missing", "/faults/report.pdf")
COPIES = 5
# What an item may fail with once a fault outlasted its retries: the Lambda faults' own names
# (as the engines report them), and the functions' TransientError for a data fault that
# outlasted botocore's retries (its message names the AWS error).
FAULT_ERRORS = {"Runtime.ExitError", "Sandbox.Timedout", "Lambda.ServiceException",
                "Lambda.TooManyRequestsException", "TransientError"}
DATA_ERRORS = tuple(kind.error for kind in faults.CATALOGUE if kind.point in
                    (faults.DYNAMODB, faults.S3, faults.SNS)) + ("TransactionCanceledException",)
# Kinds an engine cannot meet: only the choreography's steps travel as EventBridge events; the
# Step Functions engine makes no asynchronous invoke.
UNREACHABLE = {ORCHESTRATOR: {"event.duplicate", "event.delay"},
               "stepfunctions": {"event.duplicate", "event.delay", "invoke.duplicate"},
               CHOREOGRAPHY: set()}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main([*argv, "--stack-name", STACK])
    out, err = capsys.readouterr()
    assert out, f"exit {code}, nothing printed; stderr:\n{err}"
    return code, json.loads(out)


@pytest.mark.parametrize("engine", ENGINES)
def test_nothing_is_lost_nor_doubled_under_every_fault(pipeline_stack, sample_site_url, engine,
                                                       capsys, tmp_path: Path):
    stored = [f"{sample_site_url}{page}?faults={engine}-{copy}"
              for page in STORED_PAGES for copy in range(COPIES)]
    permanent = [f"{sample_site_url}{page}?faults={engine}" for page in PERMANENT_PAGES]
    watchlist = tmp_path / "urls.txt"
    watchlist.write_text("\n".join(stored + permanent) + "\n")
    reset_site(sample_site_url)

    code, out = run_json(capsys, "run", "--engine", engine, "--watchlist", str(watchlist),
                         "--faults", SPEC, "--seed", str(SEED), "--max-concurrency", "8",
                         "--json", "--allow-failures")
    summary, report = RunSummary.model_validate(out["summary"]), out["check"]
    print(f"{engine}: faults {report['faults']}, "
          f"failed {sorted((i.error_type, i.failed_step) for i in summary.items if not i.succeeded)}")

    assert code == 0, report
    assert (report["submitted"], report["lost"], report["duplicate_records"],
            report["duplicate_history"], report["duplicate_alerts"]) == (len(stored) + 2, 0, 0, 0, 0)
    assert report["records"] == report["stored"]
    assert set(report["faults"]) == {kind.name for kind in faults.CATALOGUE} - UNREACHABLE[engine]
    for item in summary.items:
        if item.url in permanent:
            assert not item.succeeded and item.error_type == "PermanentError", item
        elif not item.succeeded:
            assert item.error_type in FAULT_ERRORS, item
            if item.error_type == "TransientError":
                assert any(name in (item.error or "") for name in DATA_ERRORS), item

    code, redriven = run_json(capsys, "redrive", summary.run_id, "--json", "--allow-failures")
    assert code == 0, redriven
    if redriven.get("redriven") != []:  # nothing failed for a fault: nothing to redrive
        after = RunSummary.model_validate(redriven)
        assert {item.url for item in after.items if not item.succeeded} == set(permanent)

    code, again = run_json(capsys, "redrive", summary.run_id, "--json")
    assert (code, again) == (0, {"run_id": summary.run_id, "redriven": []})
    code, final = run_json(capsys, "check", summary.run_id, "--json")
    assert code == 0, final
    assert (final["lost"], final["duplicate_records"], final["duplicate_alerts"],
            final["stored"], final["faults_injected"]) == (
        0, 0, 0, len(stored), report["faults_injected"])
