"""The shared SNS publisher, against a stubbed client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pipeline.alerts import SnsAlerts
from pipeline.errors import TransientError

TOPIC = "arn:aws:sns:us-east-1:123456789012:baton-alerts"


@pytest.fixture
def stubbed() -> Iterator[tuple[SnsAlerts, Stubber]]:
    client: Any = boto3.client("sns")
    with Stubber(client) as stubber:
        yield SnsAlerts(TOPIC, client), stubber
    stubber.assert_no_pending_responses()


def test_a_message_without_attributes_is_subject_and_body(stubbed: tuple[SnsAlerts, Stubber]) -> None:
    alerts, stubber = stubbed
    stubber.add_response("publish", {"MessageId": "1"},
                         {"TopicArn": TOPIC, "Subject": "baton: page flagged (block)", "Message": "{}"})

    alerts.publish("baton: page flagged (block)", "{}")


def test_attributes_are_string_message_attributes(stubbed: tuple[SnsAlerts, Stubber]) -> None:
    alerts, stubber = stubbed
    stubber.add_response("publish", {"MessageId": "1"}, {
        "TopicArn": TOPIC, "Subject": "down", "Message": "{}",
        "MessageAttributes": {"transition": {"DataType": "String", "StringValue": "down"}},
    })

    alerts.publish("down", "{}", {"transition": "down"})


def test_a_throttled_publish_is_transient(stubbed: tuple[SnsAlerts, Stubber]) -> None:
    alerts, stubber = stubbed
    stubber.add_client_error("publish", "Throttling", http_status_code=400)

    with pytest.raises(TransientError, match="Throttling"):
        alerts.publish("down", "{}")
