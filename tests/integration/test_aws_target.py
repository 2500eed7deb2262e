"""The aws target's own code paths against moto, in eu-west-1 (not us-east-1, where S3 differs).

Deployment bucket: created with its location constraint, private and TLS-only, every S3 call
naming the expected owner; a bucket under our predictable name owned by another account is refused.
Stacks: created and updated through change sets, "no changes" recognised, deleted and followed by
stack id. Moto ignores ExpectedBucketOwner, so the test adds what S3 does with it (403 when the
bucket belongs to another account), using moto's own record of which account owns each bucket.
And moto applies a conditional Deny whatever its condition, so it is told that requests come over
TLS, as every boto3 call to AWS does: the TLS-only statement then does not apply, as on AWS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.models import FakeBucket, s3_backends

from baton import deploy, targets
from baton.errors import BatonError

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
OTHER_ACCOUNT = "210987654321"
BUCKET = f"baton-artifacts-{ACCOUNT}-{REGION}"
TEMPLATE = """AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Label: {Type: String, Default: first}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      Tags: [{Key: label, Value: !Ref Label}]
Outputs:
  QueueUrl: {Value: !Ref Queue}
"""


def expected_owner_enforced(params: dict[str, Any], model: Any, **_: Any) -> None:
    """Answer as S3 does when ExpectedBucketOwner names an account that does not own the bucket."""
    expected, bucket = params.get("ExpectedBucketOwner"), params.get("Bucket")
    owner = s3_backends.bucket_accounts.get(bucket or "", ("aws", None))[1]
    if expected and owner and owner != expected:
        raise ClientError({"Error": {"Code": "403" if model.name == "HeadBucket" else "AccessDenied",
                                     "Message": "Forbidden"}}, model.name)


def permission_over_tls(bucket: FakeBucket, action: str, resource: str) -> PermissionResult:
    """moto's bucket-policy check, for a request made over TLS (aws:SecureTransport true)."""
    policy = json.loads(bucket.policy or b"{}")
    statements = [statement for statement in policy.get("Statement", [])
                  if statement.get("Condition") != {"Bool": {"aws:SecureTransport": "false"}}]
    if not statements:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps(policy | {"Statement": statements})).is_action_permitted(
        action, resource)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Moto in eu-west-1 behind the aws target; yields every S3 call baton made, with its params."""
    monkeypatch.setattr(targets, "REGION", REGION)
    monkeypatch.delenv("BATON_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(deploy, "POLL_S", 0)
    monkeypatch.setattr(FakeBucket, "get_permission", permission_over_tls)
    calls: list[tuple[str, dict[str, Any]]] = []
    with mock_aws():
        targets.client.cache_clear()
        s3 = targets.client("s3", "aws")
        s3.meta.events.register("provide-client-params.s3.*",
                                lambda params, model, **_: calls.append((model.name, dict(params))))
        s3.meta.events.register("before-parameter-build.s3.*", expected_owner_enforced)
        yield calls
    targets.client.cache_clear()


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "scraper.zip"
    path.write_bytes(b"zip bytes")
    return path


def other_account_s3() -> Any:
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/squatter", RoleSessionName="squatter",
    )["Credentials"]
    return boto3.client("s3", region_name=REGION, aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


def test_the_deployment_bucket_is_created_in_the_region_private_and_tls_only(aws, artifact):
    location = deploy.Uploader("aws", say=lambda _: None).upload(artifact)

    s3 = boto3.client("s3", region_name=REGION)
    assert location["Bucket"] == BUCKET
    assert s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == REGION
    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"] == \
        deploy.PUBLIC_ACCESS_BLOCKED
    statement = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"][0]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert s3.get_object(Bucket=BUCKET, Key=location["Key"])["Body"].read() == b"zip bytes"


def test_every_call_on_the_bucket_names_the_expected_owner(aws, artifact):
    uploader = deploy.Uploader("aws", say=lambda _: None)
    uploader.upload(artifact)
    uploader.upload(artifact)  # the second time only checks that it is there
    deploy.Uploader("aws", say=lambda _: None).upload(artifact)  # a later deploy: bucket exists

    names = [name for name, _ in aws]
    assert names.count("CreateBucket") == 1
    assert {"HeadBucket", "PutPublicAccessBlock", "PutBucketPolicy", "HeadObject",
            "PutObject"} <= set(names)
    # CreateBucket has no such parameter: the bucket is new, the owner is the caller.
    for name, params in aws:
        if name != "CreateBucket":
            assert params.get("ExpectedBucketOwner") == ACCOUNT, name


def test_a_bucket_squatted_under_our_name_by_another_account_is_refused(aws, artifact):
    other_account_s3().create_bucket(Bucket=BUCKET,
                                     CreateBucketConfiguration={"LocationConstraint": REGION})

    with pytest.raises(BatonError) as refused:
        deploy.Uploader("aws", say=lambda _: None).upload(artifact)

    assert f"{BUCKET} exists but is not owned by account {ACCOUNT}" in str(refused.value)
    assert [name for name, _ in aws] == ["HeadBucket"]  # nothing written, nothing created


def test_a_bucket_name_taken_between_the_check_and_the_create_is_refused(aws, artifact,
                                                                          monkeypatch):
    s3 = targets.client("s3", "aws")
    real_head = s3.head_bucket

    def head_then_squat(**kwargs: Any) -> Any:  # someone creates the name right after our look
        try:
            return real_head(**kwargs)
        finally:
            other_account_s3().create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})

    monkeypatch.setattr(s3, "head_bucket", head_then_squat)

    with pytest.raises(BatonError, match="not owned by account"):
        deploy.Uploader("aws", say=lambda _: None).upload(artifact)


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    return path


def deploy_it(template: Path, defaults: dict[str, str] | None = None,
              **parameters: str) -> deploy.DeployResult:
    return deploy.deploy("aws", "baton-moto", parameters, template, say=lambda _: None,
                         build_dir=template.parent / "build", create_defaults=defaults)


def deployed_label(cfn: Any) -> str:
    parameters = cfn.describe_stacks(StackName="baton-moto")["Stacks"][0]["Parameters"]
    return str(next(p["ParameterValue"] for p in parameters if p["ParameterKey"] == "Label"))


def test_creation_defaults_apply_once_and_a_later_plain_deploy_keeps_the_deployed_value(
        aws, template):
    cfn = boto3.client("cloudformation", region_name=REGION)
    deploy_it(template, defaults={"Label": "emulator-default"})
    assert deployed_label(cfn) == "emulator-default"

    deploy_it(template, defaults={"Label": "emulator-default"}, Label="chosen")
    again = deploy_it(template, defaults={"Label": "emulator-default"})  # nothing given

    assert deployed_label(cfn) == "chosen"
    assert not again.changed


def test_a_stack_is_created_updated_left_alone_and_deleted_by_id(aws, template):
    created = deploy_it(template)
    cfn = boto3.client("cloudformation", region_name=REGION)
    stack_id = cfn.describe_stacks(StackName="baton-moto")["Stacks"][0]["StackId"]
    queue = cfn.describe_stack_resource(StackName=stack_id, LogicalResourceId="Queue")
    assert queue["StackResourceDetail"]["ResourceStatus"] == "CREATE_COMPLETE"

    updated = deploy_it(template, Label="second")
    unchanged = deploy_it(template, Label="second")
    deleted = deploy.destroy("aws", "baton-moto", say=lambda _: None)

    assert created.changed  # (moto gives change-set-created stacks no outputs to compare)
    assert updated.changed
    parameters = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["Parameters"]
    assert {"ParameterKey": "Label", "ParameterValue": "second"} in parameters
    assert not unchanged.changed
    assert deleted
    assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    assert deploy.stack_status(cfn, "baton-moto") is None  # by name it is gone, as on AWS
    assert not deploy.destroy("aws", "baton-moto", say=lambda _: None)
