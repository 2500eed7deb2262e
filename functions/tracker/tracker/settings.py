"""The tracker's environment, validated once: a bad variable fails fast with its name."""

from __future__ import annotations

import functools

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrackerSettings(BaseSettings):
    """Where runs are recorded (the runs table the orchestrator records its runs in too), and
    where a flagged page is announced (the alert topic every engine publishes to)."""

    model_config = SettingsConfigDict(frozen=True)

    runs_table_name: str = Field(min_length=3, validation_alias="RUNS_TABLE_NAME")
    alert_topic_arn: str = Field(min_length=1, validation_alias="ALERT_TOPIC_ARN")


@functools.cache
def get_settings() -> TrackerSettings:
    """The tracker's settings, read from the environment on first use."""
    return TrackerSettings()  # type: ignore[call-arg]  # fields come from the environment
