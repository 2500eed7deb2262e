"""The transformer Lambda end to end over moto S3, driven by tests/events/transformer.json."""

import boto3
import pytest
from pydantic import ValidationError

from pipeline.errors import PermanentError
from pipeline.models import TransformedPage
from pipeline.observability import logger
from transformer.handler import lambda_handler

GARDEN = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Garden | Sample site</title></head><body>
<nav><a href="/">Home</a></nav>
<article><h1>Notes from a small city garden</h1>
<p>The tomatoes finally ripened in the last week of August, three weeks later than last year.
The cool spring slowed everything down, but the plants that survived the frost did well.</p>
<p>We moved the herb bed closer to the kitchen door, and the basil has never been happier.
Next year we will try <a href="/pages/library">the library's seed swap</a>.</p>
</article></body></html>"""


@pytest.fixture
def event(load_event):
    return load_event("transformer.json")


def put_raw(bucket: str, key: str, body: bytes) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def keys(bucket: str) -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_handler_returns_a_transformed_page(bucket, event, lambda_context):
    put_raw(bucket, event["raw_key"], GARDEN.encode())

    result = TransformedPage.model_validate(lambda_handler(event, lambda_context))

    assert (result.title, result.language) == ("Notes from a small city garden", "en")
    assert result.links == [
        "http://127.0.0.1:8765/",
        "http://127.0.0.1:8765/pages/library",
    ]


def test_handler_writes_the_text_under_its_hash(bucket, event, lambda_context):
    put_raw(bucket, event["raw_key"], GARDEN.encode())

    result = lambda_handler(event, lambda_context)

    body = boto3.client("s3").get_object(Bucket=bucket, Key=result["text_key"])["Body"].read()
    assert result["text_key"] == f"text/{result['content_hash']}.txt"
    assert "basil has never been happier" in body.decode("utf-8")


def test_latin1_page_without_charset_is_stored_as_utf8(bucket, event, lambda_context):
    html = "<html><body><article><p>Un café très animé, où l'on mange des crêpes.</p></article></body></html>"
    put_raw(bucket, event["raw_key"], html.encode("latin-1"))

    result = lambda_handler({**event, "charset": None, "content_type": "text/html"}, lambda_context)

    body = boto3.client("s3").get_object(Bucket=bucket, Key=result["text_key"])["Body"].read()
    assert body.decode("utf-8") == "Un café très animé, où l'on mange des crêpes."


def test_run_id_becomes_the_correlation_id(bucket, event, lambda_context):
    put_raw(bucket, event["raw_key"], GARDEN.encode())

    lambda_handler(event, lambda_context)

    assert logger.get_correlation_id() == event["run_id"]


def test_missing_raw_object_is_a_permanent_error(bucket, event, lambda_context):
    with pytest.raises(PermanentError, match="NoSuchKey"):
        lambda_handler(event, lambda_context)


def test_not_modified_page_is_rejected_and_nothing_written(bucket, event, lambda_context):
    with pytest.raises(ValueError, match="not modified"):
        lambda_handler({**event, "raw_key": None, "status_code": 304}, lambda_context)
    assert keys(bucket) == []


def test_malformed_event_names_the_field_and_writes_nothing(bucket, event, lambda_context):
    put_raw(bucket, event["raw_key"], GARDEN.encode())
    del event["final_url"]

    with pytest.raises(ValidationError, match="final_url"):
        lambda_handler(event, lambda_context)
    assert keys(bucket) == [event["raw_key"]]


def test_unknown_field_in_event_is_rejected_by_name(bucket, event, lambda_context):
    with pytest.raises(ValidationError, match="body_html"):
        lambda_handler({**event, "body_html": "<p>inline</p>"}, lambda_context)
