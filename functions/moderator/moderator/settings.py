"""The moderator's configuration, read from the environment once per container."""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Environment of the moderator; a bad value fails naming its variable."""

    # Aliases make validation errors name the environment variable, not the field.
    model_config = SettingsConfigDict(frozen=True, populate_by_name=False)

    bucket_name: str = Field(min_length=1, validation_alias="BUCKET_NAME")
    backend: Literal["profanity-svm", "comprehend"] = Field(
        default="profanity-svm", validation_alias="MODERATION_BACKEND"
    )
    review_threshold: float = Field(default=0.5, ge=0.0, le=1.0, validation_alias="REVIEW_THRESHOLD")
    block_threshold: float = Field(default=0.8, ge=0.0, le=1.0, validation_alias="BLOCK_THRESHOLD")
    # DetectToxicContent exists in few regions; None means the function's own region.
    comprehend_region: str | None = Field(default=None, validation_alias="COMPREHEND_REGION")

    @model_validator(mode="after")
    def _review_before_block(self) -> Settings:
        if self.review_threshold > self.block_threshold:
            raise ValueError(
                f"REVIEW_THRESHOLD ({self.review_threshold}) must not exceed "
                f"BLOCK_THRESHOLD ({self.block_threshold})"
            )
        return self


@cache
def get_settings() -> Settings:
    """The validated settings, built on first use so tests can set the environment first."""
    return Settings()  # type: ignore[call-arg]  # values come from the environment
