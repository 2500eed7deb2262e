"""Contract: the transformer's output is the moderator's input, and the moderator emits a ModerationResult."""

import boto3
import pytest

from moderator.handler import lambda_handler as moderate
from pipeline.models import ModerationResult, TransformedPage
from transformer.handler import lambda_handler as transform

PAGE = b"""<html><head><title>Local news</title></head><body><article>
<h1>Library reopens after renovation</h1>
<p>The city library reopened on Monday after a year of renovation work, with a new children's
wing, longer opening hours and a cafe on the ground floor. Visitors queued from early morning.</p>
<p>See the <a href="/events">events calendar</a> and the
<a href="https://other.example/">partner site</a>.</p>
</article></body></html>"""


@pytest.fixture
def transformed(bucket, load_event, lambda_context) -> dict:
    event = load_event("transformer.json")
    boto3.client("s3").put_object(Bucket=bucket, Key=event["raw_key"], Body=PAGE)
    return transform(event, lambda_context)


def test_transformer_output_is_valid_moderator_input(transformed):
    page = TransformedPage.model_validate(transformed)

    assert page.model_dump(mode="json") == transformed


def test_moderator_output_is_a_valid_moderation_result(transformed, lambda_context):
    result = ModerationResult.model_validate(moderate(transformed, lambda_context))

    assert result.page == TransformedPage.model_validate(transformed)
