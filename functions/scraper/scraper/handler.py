"""The scraper step: ScrapeRequest in, ScrapedPage out (glue only).

The function's entry point is entry.py, which hands it every step request and each event's data.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline.models import ScrapeRequest
from pipeline.observability import logger, metrics, tracer
from scraper.dal import S3RawStore
from scraper.fetch import Fetcher
from scraper.logic import Politeness, scrape
from scraper.robots import Robots, robots_fetcher
from scraper.session import SessionValues
from scraper.settings import get_settings
from scraper.slots import HostGate, HostSlotsTable
from scraper.transport import HttpTransport


@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Fetch one page; raises TransientError or PermanentError when it cannot."""
    request = ScrapeRequest.model_validate(event)
    page = scrape(request, fetcher=fetcher(), raw_store=S3RawStore(get_settings().bucket_name),
                  politeness=politeness())
    metrics.add_metric(name="PagesFetched", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="BytesFetched", unit=MetricUnit.Bytes, value=page.size_bytes)
    logger.info("fetched", url=str(page.url), status=page.status_code, size=page.size_bytes)
    return page.model_dump(mode="json")


@functools.cache
def fetcher() -> Fetcher:
    """The Fetcher configured from the environment, built once per warm container."""
    return Fetcher(get_settings().fetch_policy(), HttpTransport())


@functools.cache
def politeness() -> Politeness:
    """Host slots, robots.txt and session values as configured, kept per warm container (the
    robots.txt and secret caches live as long as it)."""
    settings = get_settings()
    gate = None
    if settings.slots_table:
        gate = HostGate(HostSlotsTable(settings.slots_table), settings.host_concurrency,
                        max_wait=settings.slot_max_wait())
    return Politeness(
        gate=gate,
        robots=Robots(robots_fetcher(fetcher(), HttpTransport()), ttl=settings.robots_ttl),
        session=SessionValues(parameter_prefix=settings.parameter_prefix,
                              secret_prefix=settings.secret_prefix, ttl=settings.secret_ttl),
    )
