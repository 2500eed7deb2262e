"""The state machine's item whose end the tracker cannot fully handle, on the local cloud.

The tracker records each item's outcome, then alerts on a flagged page. Here its alert topic does
not exist, so a flagged page's alert fails (PermanentError, not retried) after its outcome was
recorded: the iteration must not end as a silent success (its alert lost), but fail naming the
error, and with it the execution; `baton run` says so. The clean page of the same run is
recorded as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from baton.cli import main
from pipeline.steps import STEPFUNCTIONS
from tests.e2e.test_engines import reset_site

STACK = "baton-engines"


@pytest.fixture
def tracker_without_topic(pipeline_stack: dict[str, str],
                          aws: Callable[[str], Any]) -> Iterator[str]:
    """The tracker's alert topic pointed at one that does not exist; restored afterwards."""
    lambdas = aws("lambda")
    (name,) = [function["FunctionName"] for function in lambdas.list_functions()["Functions"]
               if function["FunctionName"].startswith(f"{STACK}-TrackerFunction")]
    variables = lambdas.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    missing = variables["ALERT_TOPIC_ARN"] + "-missing"
    lambdas.update_function_configuration(
        FunctionName=name, Environment={"Variables": {**variables, "ALERT_TOPIC_ARN": missing}})
    try:
        yield missing
    finally:
        lambdas.update_function_configuration(FunctionName=name,
                                              Environment={"Variables": variables})


def test_a_flagged_page_whose_alert_cannot_be_sent_fails_the_run_naming_the_error(
        tracker_without_topic, sample_site_url, capsys):
    urls = [f"{sample_site_url}/pages/{page}?record=failure" for page in ("rant", "garden")]
    reset_site(sample_site_url)
    capsys.readouterr()

    code = main(["run", "--engine", STEPFUNCTIONS, "--url", urls[0], "--url", urls[1],
                 "--stack-name", STACK])

    _, err = capsys.readouterr()
    assert code == 1, err
    # The execution failed (its Map: States.ExceedToleratedFailureThreshold), and `baton run`
    # names the item that made it fail, with the error and its cause.
    assert "ended FAILED" in err, err
    (named,) = [line.strip() for line in err.splitlines() if line.strip().startswith(urls[0])]
    assert named.startswith(f"{urls[0]}: PermanentError: "), named
    assert tracker_without_topic in named and "NotFound" in named
    assert urls[1] not in err  # the clean page's iteration succeeded
