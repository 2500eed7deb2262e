"""The transformer step: ScrapedPage in, TransformedPage out.

Not-modified pages (``raw_key`` null) are rejected with a ValueError: engines skip this step
for them (see transformer.transform).

The function's entry point is entry.py, which hands it every step request and each event's data.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.models import ScrapedPage
from pipeline.observability import logger, metrics, tracer
from transformer.dal import S3Pages
from transformer.logic import transform
from transformer.settings import get_settings


@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Transform one scraped page."""
    page = ScrapedPage.model_validate(event)
    settings = get_settings()
    result = transform(page, S3Pages(settings.bucket_name), settings.text_prefix)
    metrics.add_metric(name="PagesTransformed", unit=MetricUnit.Count, value=1)
    logger.info("transformed", extra={"url": str(page.url), "words": result.word_count})
    return result.model_dump(mode="json")
