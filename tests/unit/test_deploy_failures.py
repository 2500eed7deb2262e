"""Stacks found broken, change sets refused or empty, deletes followed by id: each has its answer.

A small in-memory CloudFormation stands in for the target, so that each state can be set up
directly (the real services are exercised by tests/integration/test_aws_target.py against moto
and by tests/localstack/ against a real LocalStack).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from baton import deploy
from baton.errors import BatonError

TEMPLATE = """AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Colour: {Type: String, Default: blue}
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties: {DisplayName: !Ref Colour}
"""


def client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Operation")


class FakeCloudFormation:
    """Just enough CloudFormation: stacks by name and id, change sets, events.

    Like AWS, it answers for a deleted stack by id (DELETE_COMPLETE) and not by name.
    """

    def __init__(self) -> None:
        self.stacks: dict[str, dict[str, Any]] = {}  # by id
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.change_sets: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, str] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.next_change_set: dict[str, Any] = {}
        self.refuse_create_once = False
        self.delete_ends = "DELETE_COMPLETE"

    def add_stack(self, name: str, status: str, parameters: dict[str, str] | None = None,
                  failures: tuple[str, ...] = ()) -> str:
        stack_id = f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{name}/{len(self.stacks)}"
        self.stacks[stack_id] = {
            "StackName": name, "StackId": stack_id, "StackStatus": status,
            "Parameters": [{"ParameterKey": k, "ParameterValue": v}
                           for k, v in (parameters or {}).items()],
            "Outputs": [{"OutputKey": "TopicName", "OutputValue": f"{name}-topic"}],
        }
        self.events[stack_id] = [self._event(stack_id, "Topic", "DELETE_FAILED", reason)
                                 for reason in failures]
        return stack_id

    @staticmethod
    def _event(stack_id: str, logical: str, status: str, reason: str = "") -> dict[str, Any]:
        return {"EventId": f"{logical}-{status}-{datetime.now(UTC).timestamp()}",
                "StackId": stack_id, "LogicalResourceId": logical, "ResourceStatus": status,
                "ResourceStatusReason": reason, "Timestamp": datetime.now(UTC)}

    def _find(self, name_or_id: str) -> dict[str, Any]:
        if name_or_id in self.stacks:
            return self.stacks[name_or_id]
        for stack in self.stacks.values():
            if stack["StackName"] == name_or_id and stack["StackStatus"] != "DELETE_COMPLETE":
                return stack
        raise client_error("ValidationError", f"Stack with id {name_or_id} does not exist")

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        return {"Stacks": [dict(self._find(StackName))]}

    def describe_stack_events(self, StackName: str) -> dict[str, Any]:
        stack = self._find(StackName)
        return {"StackEvents": list(reversed(self.events[stack["StackId"]]))}

    def delete_stack(self, StackName: str) -> None:
        self.calls.append(("delete_stack", {"StackName": StackName}))
        stack = self._find(StackName)
        stack["StackStatus"] = self.delete_ends
        if self.delete_ends == "DELETE_FAILED":
            self.events[stack["StackId"]].append(
                self._event(stack["StackId"], "Topic", "DELETE_FAILED", "topic is in use"))

    def create_change_set(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("create_change_set", kwargs))
        if self.refuse_create_once and kwargs["ChangeSetType"] == "CREATE":
            self.refuse_create_once = False
            raise client_error("AlreadyExistsException", f"Stack [{kwargs['StackName']}] already exists")
        try:
            stack_id = self._find(kwargs["StackName"])["StackId"]
        except ClientError:
            stack_id = self.add_stack(kwargs["StackName"], "REVIEW_IN_PROGRESS")
        change_set_id = f"cs-{len(self.change_sets)}"
        self.change_sets[change_set_id] = {"Status": "CREATE_COMPLETE", "Changes": [
            {"ResourceChange": {"Action": "Add", "LogicalResourceId": "Topic"}}],
            "StackId": stack_id, "Body": kwargs["TemplateBody"],
            "Parameters": kwargs["Parameters"]} | self.next_change_set
        return {"Id": change_set_id, "StackId": stack_id}

    def describe_change_set(self, ChangeSetName: str, NextToken: str | None = None) -> dict[str, Any]:
        return dict(self.change_sets[ChangeSetName])

    def delete_change_set(self, ChangeSetName: str) -> None:
        self.calls.append(("delete_change_set", {"ChangeSetName": ChangeSetName}))

    def execute_change_set(self, ChangeSetName: str) -> None:
        self.calls.append(("execute_change_set", {"ChangeSetName": ChangeSetName}))
        change_set = self.change_sets[ChangeSetName]
        stack = self.stacks[change_set["StackId"]]
        stack["StackStatus"] = ("UPDATE_COMPLETE" if stack["StackStatus"] != "REVIEW_IN_PROGRESS"
                                else "CREATE_COMPLETE")
        self.templates[stack["StackId"]] = change_set["Body"]
        values = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
        values |= {p["ParameterKey"]: p["ParameterValue"] for p in change_set["Parameters"]
                   if not p.get("UsePreviousValue")}
        stack["Parameters"] = [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]

    def get_template(self, StackName: str, TemplateStage: str) -> dict[str, Any]:
        return {"TemplateBody": json.loads(self.templates[self._find(StackName)["StackId"]])}


@pytest.fixture
def cfn(monkeypatch: pytest.MonkeyPatch) -> FakeCloudFormation:
    fake = FakeCloudFormation()
    monkeypatch.setattr(deploy, "client", lambda service, target: fake)
    monkeypatch.setattr(deploy, "POLL_S", 0)
    monkeypatch.setattr(deploy, "DELETE_SETTLE_S", 0)
    return fake


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.yaml"
    path.write_text(TEMPLATE)
    return path


def deploy_to(template: Path, tmp_path: Path, parameters: dict[str, str] | None = None,
              ) -> deploy.DeployResult:
    # The build folder beside the template: cfn-lint's clean verdict is remembered there.
    return deploy.deploy("aws", "app", parameters, template, say=lambda _: None,
                         build_dir=template.parent / "build")


def test_a_failed_create_left_in_rollback_complete_is_deleted_by_id_then_created(cfn, template,
                                                                                  tmp_path):
    failed = cfn.add_stack("app", "ROLLBACK_COMPLETE")

    result = deploy_to(template, tmp_path)

    assert ("delete_stack", {"StackName": failed}) in cfn.calls
    assert result.changed
    assert cfn.calls[-2][0] == "create_change_set"
    assert cfn.calls[-2][1]["ChangeSetType"] == "CREATE"


def test_a_failed_create_whose_first_delete_fails_is_deleted_on_the_second_try(cfn, template,
                                                                              tmp_path):
    failed = cfn.add_stack("app", "ROLLBACK_COMPLETE")
    cfn.delete_ends = "DELETE_FAILED"  # LocalStack: the rule its rollback never created
    original = cfn.delete_stack

    def then_succeed(StackName: str) -> None:
        original(StackName)
        cfn.delete_ends = "DELETE_COMPLETE"

    cfn.delete_stack = then_succeed

    assert deploy_to(template, tmp_path).changed
    assert [call for call in cfn.calls if call[0] == "delete_stack"] == \
        [("delete_stack", {"StackName": failed})] * 2


def test_a_failed_create_that_cannot_be_deleted_is_explained_with_the_localstack_hint(
        cfn, template, tmp_path, monkeypatch):
    cfn.add_stack("app", "ROLLBACK_COMPLETE")
    cfn.delete_ends = "DELETE_FAILED"
    monkeypatch.setattr(cfn, "_event", lambda stack_id, logical, status, reason="": {
        **FakeCloudFormation._event(stack_id, "ScraperFunction", status,
                                    "Error while creating lambda: no runtime")})

    with pytest.raises(BatonError) as refused:
        deploy.deploy("localstack", "app", None, template, say=lambda _: None,
                      build_dir=template.parent / "build")

    message = str(refused.value)
    assert "stack app on localstack is DELETE_FAILED:\n  ScraperFunction: Error while creating" in message
    assert "baton destroy --target localstack --stack-name app" in message
    assert "LocalStack creates and runs functions only with Docker" in message


@pytest.mark.parametrize("status", ["DELETE_FAILED", "ROLLBACK_FAILED"])
def test_a_stack_whose_resources_could_not_be_deleted_is_explained_with_the_way_out(
        cfn, template, tmp_path, status):
    cfn.add_stack("app", status, failures=("Topic could not be deleted: in use",))

    with pytest.raises(BatonError) as refused:
        deploy_to(template, tmp_path)

    message = str(refused.value)
    assert f"stack app on aws is {status}" in message
    assert "baton destroy --target aws --stack-name app" in message
    assert "Topic could not be deleted: in use" in message
    assert not [call for call in cfn.calls if call[0] in ("create_change_set", "delete_stack")]


def test_an_update_that_could_not_roll_back_names_continue_update_rollback(cfn, template, tmp_path):
    cfn.add_stack("app", "UPDATE_ROLLBACK_FAILED")

    with pytest.raises(BatonError, match="continue-update-rollback --stack-name app"):
        deploy_to(template, tmp_path)


def test_a_stack_busy_with_another_operation_says_to_wait(cfn, template, tmp_path):
    cfn.add_stack("app", "UPDATE_IN_PROGRESS")

    with pytest.raises(BatonError, match=r"UPDATE_IN_PROGRESS:\n(.|\n)*another operation is still"):
        deploy_to(template, tmp_path)


def test_already_exists_on_create_change_set_looks_again_and_updates(cfn, template, tmp_path):
    cfn.refuse_create_once = True

    def appear(**kwargs: Any) -> dict[str, Any]:  # the stack appears between look and create
        cfn.add_stack("app", "CREATE_COMPLETE", {"Colour": "blue"})
        return original(**kwargs)

    original = cfn.create_change_set
    cfn.create_change_set = lambda **kwargs: (appear(**kwargs) if kwargs["ChangeSetType"] == "CREATE"
                                              else original(**kwargs))

    result = deploy_to(template, tmp_path, {"Colour": "green"})

    types = [call[1]["ChangeSetType"] for call in cfn.calls if call[0] == "create_change_set"]
    assert types == ["CREATE", "UPDATE"]
    assert result.changed


def test_already_exists_for_a_broken_stack_is_explained_not_a_traceback(cfn, template, tmp_path):
    cfn.refuse_create_once = True
    original = cfn.create_change_set

    def appear_broken(**kwargs: Any) -> dict[str, Any]:
        cfn.add_stack("app", "DELETE_FAILED", failures=("Function: still in use",))
        return original(**kwargs)

    cfn.create_change_set = appear_broken

    with pytest.raises(BatonError, match=r"DELETE_FAILED:\n  Topic: Function: still in use\n.*baton destroy"):
        deploy_to(template, tmp_path)


def test_aws_no_changes_failure_is_no_changes(cfn, template, tmp_path):
    cfn.add_stack("app", "CREATE_COMPLETE", {"Colour": "blue"})
    cfn.next_change_set = {"Status": "FAILED", "Changes": [],
                           "StatusReason": "The submitted information didn't contain changes. "
                                           "Submit different information to create a change set."}

    result = deploy_to(template, tmp_path, {"Colour": "blue"})

    assert not result.changed
    assert "execute_change_set" not in [call[0] for call in cfn.calls]


def test_an_empty_change_set_for_the_deployed_template_and_values_is_no_changes(cfn, template,
                                                                                 tmp_path):
    deploy_to(template, tmp_path, {"Colour": "blue"})
    cfn.next_change_set = {"Changes": []}  # what LocalStack answers for an unchanged deploy

    result = deploy_to(template, tmp_path, {"Colour": "blue"})

    assert not result.changed
    assert [call[0] for call in cfn.calls].count("execute_change_set") == 1
    assert cfn.calls[-1][0] == "delete_change_set"


def test_an_empty_change_set_with_a_new_parameter_value_is_executed(cfn, template, tmp_path):
    deploy_to(template, tmp_path, {"Colour": "blue"})
    cfn.next_change_set = {"Changes": []}

    result = deploy_to(template, tmp_path, {"Colour": "green"})

    assert result.changed
    assert [call[0] for call in cfn.calls].count("execute_change_set") == 2


def test_a_rejected_change_set_gives_the_reason(cfn, template, tmp_path):
    cfn.next_change_set = {"Status": "FAILED", "StatusReason": "Template format error: nope"}

    with pytest.raises(BatonError, match="rejected the change set: Template format error: nope"):
        deploy_to(template, tmp_path)


def test_destroy_follows_the_stack_by_id_after_the_name_is_gone(cfn):
    stack_id = cfn.add_stack("app", "CREATE_COMPLETE")

    assert deploy.destroy("aws", "app", say=lambda _: None)

    assert cfn.calls == [("delete_stack", {"StackName": stack_id})]
    assert cfn.stacks[stack_id]["StackStatus"] == "DELETE_COMPLETE"


def test_destroy_that_fails_twice_names_the_resource_and_the_way_out(cfn):
    stack_id = cfn.add_stack("app", "CREATE_COMPLETE")
    cfn.delete_ends = "DELETE_FAILED"

    with pytest.raises(BatonError) as failed:
        deploy.destroy("aws", "app", say=lambda _: None)

    assert str(failed.value).startswith("could not delete it: stack app on aws is DELETE_FAILED:\n"
                                        "  Topic: topic is in use")
    assert "remove it by hand" in str(failed.value)
    assert cfn.calls == [("delete_stack", {"StackName": stack_id})] * 2


def test_destroy_retries_a_failed_delete_once(cfn):
    stack_id = cfn.add_stack("app", "ROLLBACK_COMPLETE")
    cfn.delete_ends = "DELETE_FAILED"
    original = cfn.delete_stack

    def then_succeed(StackName: str) -> None:
        original(StackName)
        cfn.delete_ends = "DELETE_COMPLETE"

    cfn.delete_stack = then_succeed

    assert deploy.destroy("aws", "app", say=lambda _: None)
    assert cfn.stacks[stack_id]["StackStatus"] == "DELETE_COMPLETE"


def test_destroy_of_a_stack_that_is_not_there_says_so(cfn):
    assert deploy.destroy("aws", "app", say=lambda _: None) is False


def test_an_api_error_while_reading_the_stack_is_a_baton_error(cfn, template, tmp_path):
    def denied(StackName: str) -> dict[str, Any]:
        raise client_error("AccessDenied", "not authorized to perform cloudformation:DescribeStacks")

    cfn.describe_stacks = denied

    with pytest.raises(BatonError, match="reading stack app on aws: AccessDenied: not authorized"):
        deploy_to(template, tmp_path)


def test_a_delete_shown_failed_between_passes_is_followed_until_it_ends(cfn, monkeypatch):
    """LocalStack reports DELETE_FAILED between the passes of one delete, then DELETE_COMPLETE."""
    stack_id = cfn.add_stack("app", "CREATE_COMPLETE")
    cfn.delete_ends = "DELETE_FAILED"
    monkeypatch.setattr(deploy, "DELETE_SETTLE_S", 5)
    looks = []
    original = cfn.describe_stacks

    def later_complete(StackName: str) -> dict[str, Any]:
        looks.append(StackName)
        if len(looks) == 3:
            cfn.stacks[stack_id]["StackStatus"] = "DELETE_COMPLETE"
        return original(StackName)

    cfn.describe_stacks = later_complete

    assert deploy.destroy("aws", "app", say=lambda _: None)
    assert [call[0] for call in cfn.calls] == ["delete_stack"]
