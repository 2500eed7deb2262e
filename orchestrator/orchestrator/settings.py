"""The orchestrator's environment, validated once: a bad variable fails fast with its name."""

from __future__ import annotations

import functools

from pydantic import Field, PositiveFloat
from pydantic_settings import BaseSettings, SettingsConfigDict


class OrchestratorSettings(BaseSettings):
    """Which functions to call, where to record runs and alerts, and the time budget's margins."""

    model_config = SettingsConfigDict(frozen=True)

    scraper_function: str = Field(min_length=1, validation_alias="SCRAPER_FUNCTION_NAME")
    transformer_function: str = Field(min_length=1, validation_alias="TRANSFORMER_FUNCTION_NAME")
    moderator_function: str = Field(min_length=1, validation_alias="MODERATOR_FUNCTION_NAME")
    store_function: str = Field(min_length=1, validation_alias="STORE_FUNCTION_NAME")
    runs_table_name: str = Field(min_length=3, validation_alias="RUNS_TABLE_NAME")
    alert_topic_arn: str = Field(min_length=1, validation_alias="ALERT_TOPIC_ARN")
    # Stop starting items when less than this remains (or less than twice the slowest item so
    # far): the items in flight must finish and the run must checkpoint before the timeout.
    safety_margin_seconds: PositiveFloat = Field(
        default=60.0, validation_alias="ORCHESTRATOR_SAFETY_MARGIN_SECONDS"
    )
    # A run that needs more self-re-invocations than this is stopped: its remaining items fail.
    max_continuations: int = Field(default=20, ge=0, validation_alias="ORCHESTRATOR_MAX_CONTINUATIONS")
    # Above the functions' 60 s timeout, so a slow step ends as Sandbox.Timedout, not a read error.
    invoke_read_timeout: PositiveFloat = Field(
        default=75.0, validation_alias="ORCHESTRATOR_INVOKE_READ_TIMEOUT"
    )

    def function_names(self) -> dict[str, str]:
        """Step name → Lambda function name."""
        return {
            "scraper": self.scraper_function,
            "transformer": self.transformer_function,
            "moderator": self.moderator_function,
            "store": self.store_function,
        }


@functools.cache
def get_settings() -> OrchestratorSettings:
    """The orchestrator's settings, read from the environment on first use."""
    return OrchestratorSettings()  # type: ignore[call-arg]  # fields come from the environment
