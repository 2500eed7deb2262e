"""Lambda entry point of the scraper: ScrapeRequest in, ScrapedPage out (glue only)."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.models import ScrapeRequest
from pipeline.observability import logger, metrics, tracer
from scraper.dal import S3RawStore
from scraper.fetch import Fetcher
from scraper.logic import scrape
from scraper.settings import get_settings
from scraper.transport import HttpTransport


@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Fetch one page; raises TransientError or PermanentError when it cannot."""
    request = ScrapeRequest.model_validate(event)
    page = scrape(request, fetcher=fetcher(), raw_store=S3RawStore(get_settings().bucket_name))
    metrics.add_metric(name="PagesFetched", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="BytesFetched", unit=MetricUnit.Bytes, value=page.size_bytes)
    logger.info("fetched", url=str(page.url), status=page.status_code, size=page.size_bytes)
    return page.model_dump(mode="json")


@functools.cache
def fetcher() -> Fetcher:
    """The Fetcher configured from the environment, built once per warm container."""
    return Fetcher(get_settings().fetch_policy(), HttpTransport())
