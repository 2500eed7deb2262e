"""`baton run --faults` on the deployed pipeline, every engine: ~50 URLs under a seeded mix of
every fault kind at 10-20 %. Nothing is lost, nothing stored or alerted twice; the items that
ran out of retries failed with the fault's own error name; `baton redrive` then stores every
item that is not a permanent failure, and a second redrive has nothing to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baton import faults, targets
from baton.cli import main
from engines.runs import RunsTable
from pipeline.models import RunSummary
from pipeline.steps import CHOREOGRAPHY, ENGINES, ORCHESTRATOR
from tests.e2e.test_engines import reset_site

STACK = "baton-engines"
SEED = 7
SPEC = ("lambda.throttle=0.15,lambda.service=0.1,lambda.crash=0.1,lambda.timeout=0.1,"
        "invoke.duplicate=0.2,event.duplicate=0.2,event.delay=0.15,dynamodb.throttle=0.1,"
        "dynamodb.conflict=0.1,s3.slowdown=0.1,sns.throttle=0.2")
STORED_PAGES = ("/pages/garden", "/pages/library", "/pages/recette", "/pages/wanderung",
                "/pages/rant", "/pages/flame")
PERMANENT_PAGES = ("/faults/missing", "/faults/report.pdf")
# 20 URLs a run: measured on the shared 2-core machine, 22 URLs took 1-5 min per engine under
# these rates (every crash and timeout costs a cold start), so 50 would not fit a test suite.
COPIES = 3
# The fault each error name of a failed item comes from: the Lambda faults' own names (as the
# engines report them), or the functions' TransientError for a data fault that outlasted
# botocore's retries and the step's (its message names AWS's error).
FAILED_BY = {"Runtime.ExitError": "lambda.crash", "Sandbox.Timedout": "lambda.timeout",
             "Lambda.ServiceException": "lambda.service",
             "Lambda.TooManyRequestsException": "lambda.throttle"}
DATA_ERRORS = {kind.error: kind.name for kind in faults.CATALOGUE
               if kind.point in (faults.DYNAMODB, faults.S3, faults.SNS)}
DATA_ERRORS["TransactionCanceledException"] = "dynamodb.conflict"
# Kinds an engine cannot meet: only the choreography's steps travel as EventBridge events, and
# the Step Functions engine makes no asynchronous invoke (nor does a run of the orchestrator
# that needs no continuation: the CLI's own invoke that starts it is never touched).
UNREACHABLE = {ORCHESTRATOR: {"event.duplicate", "event.delay"},
               "stepfunctions": {"event.duplicate", "event.delay", "invoke.duplicate"},
               CHOREOGRAPHY: set()}
TABLE = Path(__file__).resolve().parents[2] / "build" / "faults-table.jsonl"


def fault_of(error_type: str | None, error: str | None) -> str:
    """The fault kind a failed item's error names."""
    if error_type in FAILED_BY:
        return FAILED_BY[str(error_type)]
    assert error_type == "TransientError", (error_type, error)
    named = [kind for code, kind in DATA_ERRORS.items() if code in (error or "")]
    assert named, f"a TransientError that names no injected data fault: {error}"
    return named[0]


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

    _, out = run_json(capsys, "run", "--engine", engine, "--watchlist", str(watchlist),
                      "--faults", SPEC, "--seed", str(SEED), "--max-concurrency", "8",
                      "--json", "--allow-failures")
    summary, report = RunSummary.model_validate(out["summary"]), out["check"]

    assert (report["submitted"], report["terminal"], report["lost"], report["duplicate_records"],
            report["duplicate_history"], report["duplicate_alerts"]) == (
        len(stored) + 2, len(stored) + 2, 0, 0, 0, 0), report
    # A step killed after the store wrote its record fails the item though the record exists;
    # the redrive below reconciles them (records == stored), never the other way round.
    assert report["records"] >= report["stored"]
    assert report["faults_injected"] >= 10
    assert set(report["faults"]) <= {kind.name for kind in faults.CATALOGUE} - UNREACHABLE[engine]
    failed_by: dict[str, int] = {}
    for item in summary.items:
        if item.url in permanent:
            assert not item.succeeded, item
            # Choreography's adapters have no Lambda retries (MaximumRetryAttempts 0: the
            # adapter retries per the policy itself), so a crash or a timeout can end a page
            # before its verdict; the redrive below gives it.
            assert item.error_type == "PermanentError" or (
                engine == CHOREOGRAPHY and fault_of(item.error_type, item.error)), item
        elif not item.succeeded:
            kind = fault_of(item.error_type, item.error)
            failed_by[kind] = failed_by.get(kind, 0) + 1

    code, redriven = run_json(capsys, "redrive", summary.run_id, "--json", "--allow-failures")
    assert code == 0, redriven
    if redriven != {"run_id": summary.run_id, "redriven": []}:
        assert RunSummary.model_validate(redriven).run_id == summary.run_id, redriven
    # The run as it stands, whether the redrive ran items or found none to run: in choreography
    # a duplicated event's twin may store an item after `baton run` saw it fail (its success
    # replaces the failure), leaving nothing to redrive.
    after = RunsTable(pipeline_stack["RunsTableName"], targets.client("dynamodb")).summary(
        summary.run_id)
    assert after is not None
    assert {item.url for item in after.items if not item.succeeded} == set(permanent), [
        item for item in after.items if not item.succeeded and item.url not in permanent]
    assert {item.error_type for item in after.items if not item.succeeded} == {"PermanentError"}
    code, again = run_json(capsys, "redrive", summary.run_id, "--json")
    assert (code, again) == (0, {"run_id": summary.run_id, "redriven": []})
    code, final = run_json(capsys, "check", summary.run_id, "--json")
    assert code == 0, final
    assert (final["lost"], final["duplicate_records"], final["duplicate_alerts"],
            final["stored"], final["records"], final["faults"]) == (
        0, 0, 0, len(stored), len(stored), report["faults"])

    # The closing note's table: what this engine met, retried, failed (by the fault that ended
    # the item), lost and doubled.
    TABLE.parent.mkdir(exist_ok=True)
    with TABLE.open("a") as table:
        table.write(json.dumps({
            "engine": engine, "urls": len(stored) + 2, "injected": report["faults"],
            "retried": sum(item.attempts - 1 for item in summary.items),
            "failed": failed_by, "lost": report["lost"],
            "duplicated": report["duplicate_records"] + report["duplicate_alerts"],
            "redriven_stored": sum(item.succeeded for item in after.items)}) + "\n")


# Each Lambda request's first attempt killed after its handler ran. A stored page is 4 step
# requests; the coordinator adds its own: the orchestrator's one invocation, or one tracker
# invocation per item. Its retry must change nothing: the orchestrator's finds the run ended,
# the tracker's finds the item counted and alerted.
COORDINATOR_PAGES = ("/pages/garden", "/pages/library", "/pages/flame")
COORDINATOR_CRASHES = {ORCHESTRATOR: 4 * len(COORDINATOR_PAGES) + 1,
                       "stepfunctions": 5 * len(COORDINATOR_PAGES)}


@pytest.mark.parametrize("engine", sorted(COORDINATOR_CRASHES))
def test_a_coordinator_killed_after_its_work_does_it_once(pipeline_stack, sample_site_url,
                                                          engine, capsys, tmp_path: Path):
    urls = [f"{sample_site_url}{page}?coordinator={engine}" for page in COORDINATOR_PAGES]
    watchlist = tmp_path / "urls.txt"
    watchlist.write_text("\n".join(urls) + "\n")
    reset_site(sample_site_url)

    code, out = run_json(capsys, "run", "--engine", engine, "--watchlist", str(watchlist),
                         "--faults", "lambda.crash=@1", "--json")

    report = out["check"]
    assert code == 0, out
    assert (report["submitted"], report["terminal"], report["stored"], report["lost"],
            report["duplicate_records"], report["duplicate_history"],
            report["duplicate_alerts"]) == (len(urls), len(urls), len(urls), 0, 0, 0, 0), report
    # The coordinator was struck too: a crash for each of its requests beside the steps'. At
    # least: a retried step whose payload differs from its first attempt's is a new request
    # (measured: 13 for the orchestrator, 16 for Step Functions).
    assert set(report["faults"]) == {"lambda.crash"}, report
    assert report["faults"]["lambda.crash"] >= COORDINATOR_CRASHES[engine], report
    # Every step of every page ran twice, and both engines say so: Step Functions reads it from
    # each item's child execution, though a killed invoke's error does not name the item.
    summary = RunSummary.model_validate(out["summary"])
    assert {item.url: item.attempts for item in summary.items} == dict.fromkeys(urls, 2)
