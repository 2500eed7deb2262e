"""The moderator step: TransformedPage in, ModerationResult out.

The function's entry point is entry.py, which hands it every step request and each event's data.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from moderator.backends import ToxicityBackend, make_backend
from moderator.dal import S3Texts
from moderator.logic import moderate
from moderator.settings import get_settings
from pipeline.models import TransformedPage
from pipeline.observability import logger, metrics, tracer


@cache
def backend() -> ToxicityBackend:
    """The configured backend, built (and its model loaded) once per container."""
    settings = get_settings()
    return make_backend(settings.backend, settings.comprehend_region)


@logger.inject_lambda_context(correlation_id_path="run_id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Moderate one transformed page."""
    page = TransformedPage.model_validate(event)
    settings = get_settings()
    result = moderate(
        page,
        S3Texts(settings.bucket_name),
        backend(),
        settings.review_threshold,
        settings.block_threshold,
    )
    metrics.add_metric(name=f"Verdict_{result.verdict.value}", unit=MetricUnit.Count, value=1)
    logger.info("moderated", extra={"url": str(page.url), "score": result.score})
    return result.model_dump(mode="json")
