"""Least privilege in template.yaml, as it must hold on AWS (the emulators do not enforce IAM).

Each function may touch only the S3 prefixes, tables and event types its code uses; the facts come
from the code itself (pipeline.keys, the transformer's settings, engines.events.CHAIN), so a
change of prefix or event in the code without its policy fails here. Any other policy form, a
wildcard action or a "*" resource (beyond actions AWS offers no resource for) fails too.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from baton import deploy
from engines import events
from pipeline.keys import page_text_key, raw_key, run_request_key
from pipeline.steps import STEPS
from transformer.settings import Settings as TransformerSettings


def prefix_of(key: str) -> str:
    return key.split("/", 1)[0] + "/"


RAW = prefix_of(raw_key("run", "https://example.com/"))
TEXT = str(TransformerSettings.model_fields["text_prefix"].default)
PAGES = prefix_of(page_text_key("https://example.com/", "hash"))
RUNS = prefix_of(run_request_key("run"))

# What each step's code does in the data bucket: (action, key prefix).
S3_USES: dict[str, set[tuple[str, str]]] = {
    "scraper": {("s3:PutObject", RAW)},                        # scraper.dal: put the raw page
    "transformer": {("s3:GetObject", RAW), ("s3:PutObject", TEXT)},
    "moderator": {("s3:GetObject", TEXT)},
    "store": {("s3:GetObject", TEXT), ("s3:PutObject", PAGES)},  # copy_object text -> pages
    # engines.handoff: a run request too large for a payload, written by whoever starts the
    # orchestrator (the monitor) and read by the orchestrator, which also writes its continuation.
    "orchestrator": {("s3:GetObject", RUNS), ("s3:PutObject", RUNS)},
    "monitor": {("s3:PutObject", RUNS)},
}
# Tables each code folder reads or writes.
TABLES: dict[str, set[str]] = {
    "store": {"RecordsTable"},
    "orchestrator": {"RunsTable"},
    "tracker": {"RunsTable"},
    "monitor": {"WatchlistTable", "MonitorStateTable", "RunsTable"},
}
# The events a choreography step may publish: its link's output, the 304 end, a failure.
STEP_EVENTS: dict[str, set[str]] = {
    link.name: {link.emits, events.PAGE_FAILED} for link in events.CHAIN.values()
}
STEP_EVENTS["scraper"].add(events.PAGE_NOT_MODIFIED)
# The tracker admits a choreographed run's next item when one ends (its first event).
STEP_EVENTS["tracker"] = {events.PAGE_REQUESTED}
# SAM policy templates allowed: each grants item-level actions on the one resource it names.
SCOPED_TEMPLATES = {"DynamoDBCrudPolicy": "TableName", "DynamoDBReadPolicy": "TableName",
                    "LambdaInvokePolicy": "FunctionName", "SNSPublishMessagePolicy": "TopicName",
                    "StepFunctionsExecutionPolicy": "StateMachineName"}
NO_RESOURCE_LEVEL = {"comprehend:DetectToxicContent"}  # AWS accepts only "*" for these


def code_folder(resource: dict[str, Any]) -> str:
    """The step a function runs: the last folder of its CodeUri (functions/scraper/ -> scraper)."""
    return str(resource["Properties"]["CodeUri"]).rstrip("/").rsplit("/", 1)[-1]


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def s3_prefix(resource: Any) -> str | None:
    """The key prefix of "${DataBucket.Arn}/<prefix>*", or None for anything else."""
    text = resource.get("Fn::Sub") if isinstance(resource, dict) else None
    if isinstance(text, str) and text.startswith("${DataBucket.Arn}/") and text.endswith("*"):
        return text.removeprefix("${DataBucket.Arn}/").removesuffix("*")
    return None


def statement_problems(name: str, step: str, statement: dict[str, Any]) -> list[str]:
    problems = []
    actions = listed(statement.get("Action"))
    resources = listed(statement.get("Resource"))
    if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotResource" in statement:
        return [f"{name}: only plain Allow statements are expected: {statement}"]
    for action in actions:
        if "*" in action:
            problems.append(f"{name}: wildcard action {action}")
        elif action.startswith("s3:"):
            for resource in resources:
                if (action, s3_prefix(resource)) not in S3_USES.get(step, set()):
                    problems.append(f"{name}: {action} on {resource} is not what {step} uses")
        elif action == "events:PutEvents":
            condition = statement.get("Condition", {}).get("StringEquals", {})
            allowed = STEP_EVENTS.get(step, set())
            types = set(listed(condition.get("events:detail-type", [])))
            if resources != [{"Fn::GetAtt": ["PipelineBus", "Arn"]}]:
                problems.append(f"{name}: events:PutEvents on {resources}, not the pipeline bus")
            if not types or not types <= allowed:
                problems.append(f"{name}: may put {sorted(types) or 'any detail-type'}; "
                                f"{step} publishes only {sorted(allowed)}")
            if condition.get("events:source") != events.SOURCE:
                problems.append(f"{name}: events:PutEvents without the events:source condition")
        elif "*" in resources and action not in NO_RESOURCE_LEVEL:
            problems.append(f"{name}: {action} on every resource")
    return problems


def policy_problems(template: dict[str, Any]) -> list[str]:
    """Every grant wider than what the function's code uses, as readable lines."""
    problems = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        step = code_folder(resource)
        for policy in listed(resource["Properties"].get("Policies", [])):
            if not isinstance(policy, dict):
                problems.append(f"{name}: managed policy {policy} (not scoped to our resources)")
                continue
            for kind, arguments in policy.items():
                if kind == "Statement":
                    for statement in listed(arguments):
                        problems += statement_problems(name, step, statement)
                elif kind in SCOPED_TEMPLATES:
                    scope = arguments.get(SCOPED_TEMPLATES[kind])
                    if kind.startswith("DynamoDB") and \
                            (not isinstance(scope, dict) or scope.get("Ref") not in TABLES.get(step, ())):
                        problems.append(f"{name}: {kind} on {scope}; {step} uses "
                                        f"{sorted(TABLES.get(step, ())) or 'no table'}")
                else:
                    problems.append(f"{name}: policy template {kind} is wider than the code's use")
    return problems


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return deploy.load_template()


def test_every_function_is_granted_only_what_its_code_uses(template):
    assert policy_problems(template) == []


def test_the_internet_facing_scraper_may_only_add_raw_pages(template):
    s3_actions = {(action, s3_prefix(statement["Resource"]))
                  for policy in template["Resources"]["ScraperFunction"]["Properties"]["Policies"]
                  for statement in listed(policy.get("Statement", []))
                  for action in listed(statement["Action"]) if action.startswith("s3:")}
    assert s3_actions == {("s3:PutObject", "raw/")}


def test_each_choreography_step_may_put_exactly_its_own_events(template):
    for registered in STEPS:
        name, step = registered.resource, registered.name
        granted = {detail_type
                   for policy in template["Resources"][name]["Properties"]["Policies"]
                   for statement in listed(policy.get("Statement", []))
                   if "events:PutEvents" in listed(statement["Action"])
                   for detail_type in listed(statement["Condition"]["StringEquals"]
                                             ["events:detail-type"])}
        assert granted == STEP_EVENTS[step], name


def with_policies(template: dict[str, Any], function: str, *policies: Any) -> dict[str, Any]:
    changed = copy.deepcopy(template)
    changed["Resources"][function]["Properties"]["Policies"] = list(policies)
    return changed


@pytest.mark.parametrize(("function", "policy", "complaint"), [
    ("ScraperFunction", {"S3CrudPolicy": {"BucketName": {"Ref": "DataBucket"}}},
     "policy template S3CrudPolicy"),
    ("ScraperFunction", {"Statement": [{"Effect": "Allow", "Action": "s3:PutObject",
                                        "Resource": {"Fn::Sub": "${DataBucket.Arn}/*"}}]},
     "s3:PutObject on"),
    ("ScraperFunction", {"Statement": [{"Effect": "Allow", "Action": "s3:PutObjectAcl",
                                        "Resource": {"Fn::Sub": "${DataBucket.Arn}/raw/*"}}]},
     "s3:PutObjectAcl"),
    ("ModeratorFunction", {"Statement": [{"Effect": "Allow", "Action": "s3:*",
                                          "Resource": {"Fn::Sub": "${DataBucket.Arn}/text/*"}}]},
     "wildcard action"),
    ("StoreFunction", {"EventBridgePutEventsPolicy": {"EventBusName": {"Ref": "PipelineBus"}}},
     "policy template EventBridgePutEventsPolicy"),
    ("StoreFunction", {"Statement": [{
        "Effect": "Allow", "Action": "events:PutEvents",
        "Resource": {"Fn::GetAtt": ["PipelineBus", "Arn"]},
        "Condition": {"StringEquals": {"events:source": "baton.pipeline",
                                       "events:detail-type": ["baton.PageScraped.v1"]}}}]},
     "store publishes only"),
    ("TransformerFunction", {"DynamoDBCrudPolicy": {"TableName": {"Ref": "RecordsTable"}}},
     "transformer uses no table"),
    ("OrchestratorFunction", {"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage",
                                             "Resource": "*"}]},
     "sqs:SendMessage on every resource"),
])
def test_the_check_fails_on_a_wider_grant(template, function, policy, complaint):
    problems = policy_problems(with_policies(template, function, policy))

    assert any(complaint in problem for problem in problems), problems


def scraper_grants(template: dict[str, Any], name: str) -> set[tuple[str, str]]:
    """(action, resource) of a scraper's grants other than S3, resources as written."""
    return {(action, str(statement["Resource"]))
            for policy in template["Resources"][name]["Properties"]["Policies"]
            for statement in listed(policy.get("Statement", []))
            for action in listed(statement["Action"]) if not action.startswith(("s3:", "events:"))}


def test_the_scraper_may_only_lease_host_slots_and_read_references_under_its_prefixes(
        template):
    from scraper.settings import ScraperSettings

    fields = ScraperSettings.model_fields
    parameters = template["Parameters"]
    # The settings' defaults are the template's: a reference the code accepts is one IAM allows.
    assert parameters["ScraperParameterPrefix"]["Default"] == fields["parameter_prefix"].default
    assert parameters["ScraperSecretPrefix"]["Default"] == fields["secret_prefix"].default
    assert parameters["ScraperHostConcurrency"]["Default"] == fields["host_concurrency"].default
    expected = {
        ("dynamodb:PutItem", "{'Fn::GetAtt': ['HostSlotsTable', 'Arn']}"),
        ("dynamodb:DeleteItem", "{'Fn::GetAtt': ['HostSlotsTable', 'Arn']}"),
        ("ssm:GetParameter", "{'Fn::Sub': 'arn:${AWS::Partition}:ssm:${AWS::Region}:"
                             "${AWS::AccountId}:parameter${ScraperParameterPrefix}*'}"),
        ("secretsmanager:GetSecretValue",
         "{'Fn::Sub': 'arn:${AWS::Partition}:secretsmanager:${AWS::Region}:"
         "${AWS::AccountId}:secret:${ScraperSecretPrefix}*'}"),
    }
    assert scraper_grants(template, "ScraperFunction") == expected
    variables = template["Resources"]["ScraperFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["SCRAPER_SLOTS_TABLE"] == {"Ref": "HostSlotsTable"}
    assert variables["SCRAPER_PARAMETER_PREFIX"] == {"Ref": "ScraperParameterPrefix"}
    assert variables["SCRAPER_SECRET_PREFIX"] == {"Ref": "ScraperSecretPrefix"}
