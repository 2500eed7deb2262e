"""Integration fixtures: moto AWS, tables from template.yaml, a Lambda context, the sample site."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from baton.site import SampleSite, serve
from tests.lambda_context import FakeLambdaContext

TEMPLATE = Path(__file__).parents[2] / "template.yaml"


class _TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML, keeping intrinsic functions (!Ref, !Sub...) as plain values."""


_TemplateLoader.add_multi_constructor(
    "!", lambda loader, suffix, node: loader.construct_scalar(node)
    if isinstance(node, yaml.ScalarNode) else loader.construct_sequence(node)
    if isinstance(node, yaml.SequenceNode) else loader.construct_mapping(node)
)


def table_properties(logical_id: str) -> dict[str, Any]:
    """A DynamoDB table's create_table arguments, as template.yaml declares them."""
    template = yaml.load(TEMPLATE.read_text(), Loader=_TemplateLoader)
    properties = template["Resources"][logical_id]["Properties"]
    return {
        name: properties[name]
        for name in ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes",
                     "LocalSecondaryIndexes")
        if name in properties
    }




@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """A stand-in for the LambdaContext the runtime passes to handlers."""
    return FakeLambdaContext(aws_request_id=str(uuid.uuid4()))


@pytest.fixture
def aws() -> Iterator[None]:
    """Every AWS call in the test goes to moto, in memory."""
    with mock_aws():
        yield


@pytest.fixture
def bucket(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, uniquely named S3 bucket, exported as BUCKET_NAME."""
    name = f"baton-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    monkeypatch.setenv("BUCKET_NAME", name)
    return name


@pytest.fixture
def records_table(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh records table with template.yaml's key schema, exported as TABLE_NAME."""
    name = f"baton-records-{uuid.uuid4().hex[:12]}"
    properties = table_properties("RecordsTable")
    properties.setdefault("BillingMode", "PAY_PER_REQUEST")
    boto3.client("dynamodb").create_table(TableName=name, **properties)
    monkeypatch.setenv("TABLE_NAME", name)
    return name


@pytest.fixture(scope="session")
def sample_site_server() -> Iterator[SampleSite]:
    """The sample site on a free port of 127.0.0.1, for the whole session."""
    site = serve(port=0).start()
    yield site
    site.stop()


@pytest.fixture
def sample_site(sample_site_server: SampleSite) -> Iterator[SampleSite]:
    """The sample site in its initial state, put back after the test."""
    sample_site_server.state.reset()
    yield sample_site_server
    sample_site_server.state.reset()


@pytest.fixture
def alert_queue(aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An SNS topic (exported as ALERT_TOPIC_ARN) with an SQS queue subscribed to read alerts."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=f"baton-alerts-{uuid.uuid4().hex[:8]}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"baton-alerts-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("ALERT_TOPIC_ARN", topic)
    return {"topic": topic, "queue": queue_url}
