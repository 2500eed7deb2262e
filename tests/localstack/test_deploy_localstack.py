"""`baton deploy --target localstack` against a real LocalStack 2026.3 (host mode, no Docker).

LocalStack runs functions only in Docker containers. Here a stand-in `docker` command answers the
checks made when a function is created and refuses to run anything, so every function becomes
Active and the whole stack deploys, but no function can execute. These tests therefore prove the
template and the CLI on LocalStack (resources, wiring, updates, no-change redeploys, destroy, the
messages when functions cannot run); running the pipeline there is test_engines_localstack.py's
(functions as host processes, through the harness's runtime executor plugin).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from baton import deploy, invoke
from baton.errors import BatonError
from tests.localstack.conftest import ROOT, baton, start_localstack

STACK = "baton-ls"
TEMPLATE = deploy.load_template()
RESOURCES = TEMPLATE["Resources"]


@pytest.fixture(scope="module")
def localstack() -> Iterator[str]:
    yield from start_localstack(stand_in_docker=True)


@pytest.fixture(scope="module")
def deployed(localstack: str) -> dict[str, Any]:
    """The project's template deployed once by the CLI; the result and the stack's resources."""
    result = baton("deploy", "--target", "localstack", "--stack-name", STACK)
    assert result.returncode == 0, result.stderr
    return {"result": result, "outputs": deploy.stack_outputs("localstack", STACK)}


def physical_ids(aws: Callable[[str], Any]) -> dict[str, dict[str, str]]:
    """Every stack resource: logical id -> {status, physical id, type}."""
    pages = aws("cloudformation").get_paginator("list_stack_resources").paginate(StackName=STACK)
    return {summary["LogicalResourceId"]: {"status": summary["ResourceStatus"],
                                           "id": summary.get("PhysicalResourceId", ""),
                                           "type": summary["ResourceType"]}
            for page in pages for summary in page["StackResourceSummaries"]}


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in RESOURCES.items() if resource["Type"] == kind}


def test_deploy_creates_every_resource_of_the_template(deployed, aws):
    resources = physical_ids(aws)
    stack = aws("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]

    assert "deployed" in deployed["result"].stdout
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {name: r["status"] for name, r in resources.items() if r["status"] != "CREATE_COMPLETE"} == {}
    # Every resource the template declares is there (SAM adds roles, permissions, rules, and
    # names each layer version after its content: SharedLayer<hash>).
    layers = set(of_type("AWS::Serverless::LayerVersion"))
    assert set(RESOURCES) - layers <= set(resources)
    for layer in layers:
        assert any(name.startswith(layer) and resource["type"] == "AWS::Lambda::LayerVersion"
                   for name, resource in resources.items()), layer
    functions = aws("lambda").list_functions()["Functions"]
    deployed_functions = {f["FunctionName"] for f in functions}
    for name in of_type("AWS::Serverless::Function"):
        assert resources[name]["id"] in deployed_functions, name


def test_the_state_machine_is_the_template_definition_with_its_substitutions(deployed, aws):
    machine = RESOURCES["PipelineStateMachine"]["Properties"]
    arn = deployed["outputs"]["PipelineStateMachineArn"]
    resources = physical_ids(aws)
    values = {"AlertTopicArn": deployed["outputs"]["AlertTopicArn"]}
    for key, value in machine["DefinitionSubstitutions"].items():
        if "Fn::GetAtt" in value:  # a function's ARN
            name = resources[value["Fn::GetAtt"][0]]["id"]
            values[key] = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    expected = (ROOT / machine["DefinitionUri"]).read_text()
    for key, value in values.items():
        expected = expected.replace("${" + key + "}", value)

    described = aws("stepfunctions").describe_state_machine(stateMachineArn=arn)

    assert json.loads(described["definition"]) == json.loads(expected)
    assert described["status"] == "ACTIVE"


def test_every_table_has_the_template_keys_indexes_and_billing(deployed, aws):
    resources = physical_ids(aws)
    for name, table in of_type("AWS::DynamoDB::Table").items():
        declared = table["Properties"]
        described = aws("dynamodb").describe_table(TableName=resources[name]["id"])["Table"]

        assert described["KeySchema"] == declared["KeySchema"], name
        assert sorted(described["AttributeDefinitions"], key=str) == \
            sorted(declared["AttributeDefinitions"], key=str), name
        assert described["BillingModeSummary"]["BillingMode"] == declared["BillingMode"], name
        assert {index["IndexName"]: index["KeySchema"]
                for index in described.get("GlobalSecondaryIndexes", [])} == \
            {index["IndexName"]: index["KeySchema"]
             for index in declared.get("GlobalSecondaryIndexes", [])}, name


def test_the_bus_rules_and_their_targets_are_those_of_the_template(deployed, aws):
    bus = deployed["outputs"]["EventBusName"]
    events = aws("events")
    resources = physical_ids(aws)
    rules = {rule["Name"]: rule for rule in events.list_rules(EventBusName=bus)["Rules"]}

    assert events.describe_event_bus(Name=bus)["Name"] == f"{STACK}-pipeline"
    declared = {(name, event_name): event["Properties"]
                for name, function in of_type("AWS::Serverless::Function").items()
                for event_name, event in function["Properties"].get("Events", {}).items()
                if event["Type"] == "EventBridgeRule"}
    assert len(rules) == len(declared) == 5
    for (function, event_name), properties in declared.items():
        rule = rules[resources[f"{function}{event_name}"]["id"].split("|")[-1]]
        assert json.loads(rule["EventPattern"]) == properties["Pattern"], event_name
        (target,) = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
        assert target["Arn"].endswith(f":function:{resources[function]['id']}"), event_name
        assert target["RetryPolicy"] == properties["RetryPolicy"], event_name
        assert target["DeadLetterConfig"]["Arn"].endswith(
            deployed["outputs"]["DeadLetterQueueUrl"].rsplit("/", 1)[-1]), event_name
    schedule = rules_on_default_bus(events, resources["MonitorFunctionSchedule"]["id"])
    assert schedule["ScheduleExpression"] == TEMPLATE["Parameters"]["MonitorSchedule"]["Default"]


def rules_on_default_bus(events: Any, physical_id: str) -> dict[str, Any]:
    return dict(events.describe_rule(Name=physical_id.split("|")[-1]))


def test_a_function_that_cannot_run_is_named_with_the_cause(deployed):
    with pytest.raises(BatonError) as failure:
        invoke.invoke("localstack", STACK, "scraper", b'{"run_id": "r", "url": "http://127.0.0.1:1/"}')

    message = str(failure.value)
    assert message.startswith(f"could not invoke scraper ({deployed['outputs']['ScraperFunctionName']})"
                              " on localstack:")
    assert "docker" in message.lower()


def test_a_parameter_change_is_an_update_that_reaches_the_function(deployed, aws):
    result = baton("deploy", "--target", "localstack", "--stack-name", STACK,
                   "--param", "ReviewThreshold=0.4")

    assert result.returncode == 0, result.stderr
    assert "deployed" in result.stdout
    stack = aws("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    config = aws("lambda").get_function_configuration(
        FunctionName=deployed["outputs"]["ModeratorFunctionName"])
    assert config["Environment"]["Variables"]["REVIEW_THRESHOLD"] == "0.4"


def test_an_unchanged_redeploy_reports_no_changes(deployed, aws):
    before = aws("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]

    result = baton("deploy", "--target", "localstack", "--stack-name", STACK)

    assert result.returncode == 0, result.stderr
    assert "no changes" in result.stdout
    after = aws("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    assert after.get("LastUpdatedTime") == before.get("LastUpdatedTime")


def test_destroy_removes_the_stack_its_functions_and_tables(deployed, aws):
    resources = physical_ids(aws)
    stack_id = aws("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["StackId"]

    result = baton("destroy", "--target", "localstack", "--stack-name", STACK)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"Deleted stack {STACK}" in result.stdout
    gone = deploy.stack_status(aws("cloudformation"), stack_id)  # by id: AWS still answers
    assert gone is None or gone["StackStatus"] == "DELETE_COMPLETE"
    assert deploy.stack_status(aws("cloudformation"), STACK) is None
    names = {f["FunctionName"] for f in aws("lambda").list_functions()["Functions"]}
    assert not names & {resources[name]["id"] for name in of_type("AWS::Serverless::Function")}
    tables = set(aws("dynamodb").list_tables()["TableNames"])
    assert not tables & {resources[name]["id"] for name in of_type("AWS::DynamoDB::Table")}
    again = baton("destroy", "--target", "localstack", "--stack-name", STACK)
    assert again.returncode == 0 and "nothing to delete" in again.stdout

