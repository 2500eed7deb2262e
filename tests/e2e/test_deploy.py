"""template.yaml deployed to the embedded local cloud with `baton deploy`, used, changed, destroyed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from baton import deploy
from baton.deploy import DeployResult

EVENTS = Path(__file__).parent.parent / "events"


def baton(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "baton.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())


def allowed_host(site_url: str) -> str:
    return site_url.removeprefix("http://")


@pytest.fixture(scope="module")
def stack(local_cloud, sample_site_url) -> DeployResult:
    """The whole stack, deployed from scratch, the scraper allowed to reach the session's site."""
    return deploy.deploy("local", "baton-e2e",
                         {"ScraperAllowedHosts": allowed_host(sample_site_url)}, say=lambda _: None)


def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
    result = baton("invoke", function, "--stack-name", "baton-e2e", "--event", "-",
                   stdin=json.dumps(event))
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_deploy_from_scratch_outputs_every_name_the_cli_reads(stack):
    assert stack.changed
    for output in ("ScraperFunctionName", "TransformerFunctionName", "ModeratorFunctionName",
                   "StoreFunctionName", "DataBucketName", "RecordsTableName"):
        assert stack.outputs[output].startswith("baton-e2e")


def test_each_function_with_its_sample_event_chains_to_a_stored_record(stack, sample_site_url,
                                                                       aws: Callable[[str], Any]):
    scrape_event = json.loads((EVENTS / "scraper.json").read_text())
    scrape_event["url"] = f"{sample_site_url}/pages/garden"
    scrape_event["run_id"] = "e2e-deploy-run"

    scraped = invoke("scraper", scrape_event)
    transformed = invoke("transformer", scraped)
    moderated = invoke("moderator", transformed)
    stored = invoke("store", moderated)

    bucket = stack.outputs["DataBucketName"]
    s3 = aws("s3")
    assert s3.head_object(Bucket=bucket, Key=scraped["raw_key"])["ContentLength"] > 0
    text = s3.get_object(Bucket=bucket, Key=stored["text_key"])["Body"].read().decode()
    assert "garden" in text.lower()
    assert moderated["verdict"] == "allow"
    assert stored["change"] == "new"
    latest = aws("dynamodb").query(
        TableName=stack.outputs["RecordsTableName"],
        KeyConditionExpression="pk = :pk AND sk = :sk",
        ExpressionAttributeValues={":pk": {"S": f"URL#{_url_id(scrape_event['url'])}"},
                                   ":sk": {"S": "LATEST"}},
    )["Items"]
    assert latest[0]["content_hash"]["S"] == transformed["content_hash"]


def test_logs_show_what_the_function_logged(stack, sample_site_url):
    invoke("scraper", {"run_id": "e2e-logs-run", "url": f"{sample_site_url}/pages/library"})

    result = baton("logs", "scraper", "--stack-name", "baton-e2e", "--since", "5m")

    assert result.returncode == 0, result.stderr
    assert "e2e-logs-run" in result.stdout


def _url_id(url: str) -> str:
    from pipeline.keys import url_id

    return url_id(url)


def test_redeploy_without_changes_says_no_changes(stack):
    result = baton("deploy", "--stack-name", "baton-e2e",
                   "--param", f"ScraperAllowedHosts={_current(stack, 'ScraperAllowedHosts')}")

    assert result.returncode == 0, result.stderr
    assert "no changes" in result.stdout


def _current(stack: DeployResult, parameter: str) -> str:
    from baton.targets import client

    described = client("cloudformation", "local").describe_stacks(StackName=stack.stack)
    return next(p["ParameterValue"] for p in described["Stacks"][0]["Parameters"]
                if p["ParameterKey"] == parameter)


def test_changed_parameter_reaches_the_function(stack, aws):
    result = deploy.deploy("local", "baton-e2e", {"ReviewThreshold": "0.4"}, say=lambda _: None)

    config = aws("lambda").get_function_configuration(
        FunctionName=result.outputs["ModeratorFunctionName"])
    assert result.changed
    assert config["Environment"]["Variables"]["REVIEW_THRESHOLD"] == "0.4"
    # a parameter not given again keeps its deployed value
    assert _current(stack, "ScraperAllowedHosts") != ""


def test_destroy_removes_the_stack_and_its_functions(local_cloud, aws):
    created = deploy.deploy("local", "baton-e2e-destroy", say=lambda _: None)
    scraper = created.outputs["ScraperFunctionName"]

    result = baton("destroy", "--stack-name", "baton-e2e-destroy")

    assert result.returncode == 0, result.stderr
    assert deploy.stack_status(aws("cloudformation"), "baton-e2e-destroy") is None
    names = {f["FunctionName"] for f in aws("lambda").list_functions()["Functions"]}
    assert scraper not in names


def test_failed_deploy_shows_the_failing_resource_and_exits_non_zero(local_cloud, tmp_path):
    broken = tmp_path / "template.yaml"
    # Two buckets with one name (lint told to look away): the second one cannot be created.
    clash = ("    Type: AWS::S3::Bucket\n    Metadata: {cfn-lint: {config: {ignore_checks: [E3019]}}}\n"
             "    Properties:\n      BucketName: baton-e2e-clash\n")
    broken.write_text(deploy.TEMPLATE.read_text().replace(
        "Resources:\n", f"Resources:\n  ClashingBucket:\n{clash}  OtherBucket:\n{clash}", 1))

    result = baton("deploy", "--stack-name", "baton-e2e-broken", "--template", str(broken))

    assert result.returncode == 1
    assert "deploy failed" in result.stderr
    failure = result.stderr.split("deploy failed")[1]
    assert "ClashingBucket" in failure or "OtherBucket" in failure


def test_reserved_concurrency_in_the_template_reaches_the_functions(stack, aws):
    lambdas = aws("lambda")
    reserved = {f["FunctionName"]: lambdas.get_function_concurrency(
                    FunctionName=f["FunctionName"]).get("ReservedConcurrentExecutions")
                for f in lambdas.list_functions()["Functions"]
                if f["FunctionName"].startswith("baton-e2e-")}

    # The run tracker's (ChoreographyConcurrency); the steps share the account's concurrency.
    assert {name for name, limit in reserved.items() if limit is not None} == {
        name for name in reserved if name.startswith("baton-e2e-TrackerFunction")}
    assert {limit for limit in reserved.values() if limit is not None} == {8}


def test_every_choreography_rule_target_has_a_retry_policy_and_dead_letter_queue(stack, aws):
    events, bus = aws("events"), "baton-e2e-pipeline"
    targets = [target for rule in events.list_rules(EventBusName=bus)["Rules"]
               for target in events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)[
                   "Targets"]]

    assert len(targets) == 5  # the four steps and the tracker
    for target in targets:
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert target["DeadLetterConfig"]["Arn"].split(":")[-1].startswith("baton-e2e-DeadLetterQueue")
