"""The transformer's configuration, read from the environment once per container."""

from __future__ import annotations

from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Environment of the transformer; a bad value fails naming its variable."""

    # Aliases make validation errors name the environment variable, not the field.
    model_config = SettingsConfigDict(frozen=True, populate_by_name=False)

    bucket_name: str = Field(min_length=1, validation_alias="BUCKET_NAME")
    text_prefix: str = Field(default="text/", validation_alias="TEXT_PREFIX")


@cache
def get_settings() -> Settings:
    """The validated settings, built on first use so tests can set the environment first."""
    return Settings()  # type: ignore[call-arg]  # values come from the environment
