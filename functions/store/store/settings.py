"""The store's environment, validated once: a bad variable fails fast with its name."""

from __future__ import annotations

import functools

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseSettings):
    """Where the store writes: one S3 bucket and one DynamoDB table."""

    model_config = SettingsConfigDict(frozen=True)

    bucket_name: str = Field(min_length=3, validation_alias="BUCKET_NAME")
    table_name: str = Field(min_length=3, validation_alias="TABLE_NAME")


@functools.cache
def get_settings() -> StoreSettings:
    """The store's settings, read from the environment on first use."""
    return StoreSettings()  # type: ignore[call-arg]  # fields come from the environment
