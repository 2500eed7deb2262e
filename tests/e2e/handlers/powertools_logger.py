"""Logs through Powertools Logger and validates with pydantic, both from a layer."""

from aws_lambda_powertools import Logger
from pydantic import BaseModel

logger = Logger(service="fidelity")


class Probe(BaseModel):
    marker: str


def handler(event, context):
    probe = Probe.model_validate(event)
    logger.info("powertools says", extra={"marker": probe.marker})
    return {"logged": probe.marker}
