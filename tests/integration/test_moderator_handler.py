"""The moderator Lambda end to end over moto S3, driven by tests/events/moderator.json."""

import boto3
import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from moderator.handler import lambda_handler
from pipeline import aws
from pipeline.errors import PermanentError
from pipeline.models import ModerationResult, Verdict

GARDEN_TEXT = (
    "Notes from a small city garden\n"
    "The tomatoes finally ripened in the last week of August, three weeks later than last year.\n"
    "We moved the herb bed closer to the kitchen door, and the basil has never been happier."
)
ABUSIVE_TEXT = GARDEN_TEXT + "\nYou are a pathetic, worthless idiot and your garden is garbage, moron."


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch):
    for name in ("MODERATION_BACKEND", "REVIEW_THRESHOLD", "BLOCK_THRESHOLD", "COMPREHEND_REGION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def event(load_event):
    return load_event("moderator.json")


def put_text(bucket: str, key: str, text: str) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))


def test_ordinary_page_is_allowed(bucket, event, lambda_context):
    put_text(bucket, event["text_key"], GARDEN_TEXT)

    result = ModerationResult.model_validate(lambda_handler(event, lambda_context))

    assert (result.verdict, result.backend) == (Verdict.ALLOW, "profanity-svm")


def test_page_with_an_abusive_paragraph_is_blocked(bucket, event, lambda_context):
    put_text(bucket, event["text_key"], ABUSIVE_TEXT)

    result = lambda_handler(event, lambda_context)

    assert result["verdict"] == "block" and result["score"] >= 0.8


def test_thresholds_come_from_the_environment(bucket, event, lambda_context, monkeypatch):
    monkeypatch.setenv("REVIEW_THRESHOLD", "0")
    monkeypatch.setenv("BLOCK_THRESHOLD", "1")
    put_text(bucket, event["text_key"], GARDEN_TEXT)

    assert lambda_handler(event, lambda_context)["verdict"] == "review"


def test_result_carries_the_page_unchanged(bucket, event, lambda_context):
    put_text(bucket, event["text_key"], GARDEN_TEXT)

    result = lambda_handler(event, lambda_context)

    assert result["page"] == event | {"fetched_at": "2026-11-22T10:00:00.123456Z"}


def test_missing_text_is_a_permanent_error(bucket, event, lambda_context):
    with pytest.raises(PermanentError, match="NoSuchKey"):
        lambda_handler(event, lambda_context)


def test_malformed_event_names_the_field(bucket, event, lambda_context):
    del event["content_hash"]

    with pytest.raises(ValidationError, match="content_hash"):
        lambda_handler(event, lambda_context)


def test_comprehend_backend_is_selected_by_setting(bucket, event, lambda_context, monkeypatch):
    monkeypatch.setenv("MODERATION_BACKEND", "comprehend")
    put_text(bucket, event["text_key"], GARDEN_TEXT)
    # moto does not implement DetectToxicContent: stub the very client the backend will use.
    with Stubber(aws.client("comprehend")) as stubber:
        stubber.add_response(
            "detect_toxic_content",
            {"ResultList": [{"Toxicity": 0.62, "Labels": [{"Name": "INSULT", "Score": 0.62}]}]},
        )
        result = lambda_handler(event, lambda_context)

    assert (result["backend"], result["verdict"], result["labels"]["INSULT"]) == (
        "comprehend",
        "review",
        0.62,
    )
