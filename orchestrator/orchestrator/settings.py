"""The orchestrator's environment, validated once: a bad variable fails fast with its name."""

from __future__ import annotations

import functools
import os
from typing import Any

from pydantic import Field, PositiveFloat, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.steps import STEPS


class OrchestratorSettings(BaseSettings):
    """Which functions to call, where to record runs and alerts, and the time budget's margins."""

    model_config = SettingsConfigDict(frozen=True)

    # Step name -> Lambda function name, one ``<STEP>_FUNCTION_NAME`` variable per registry step.
    step_functions: dict[str, str] = Field(default_factory=dict)
    runs_table_name: str = Field(min_length=3, validation_alias="RUNS_TABLE_NAME")
    # Where a run request too large for an invocation's payload is kept (engines.handoff).
    bucket_name: str | None = Field(default=None, validation_alias="BUCKET_NAME")
    alert_topic_arn: str = Field(min_length=1, validation_alias="ALERT_TOPIC_ARN")
    # Stop starting items when less than this remains (or less than twice the slowest item so
    # far): the items in flight must finish and the run must checkpoint before the timeout.
    safety_margin_seconds: PositiveFloat = Field(
        default=60.0, validation_alias="ORCHESTRATOR_SAFETY_MARGIN_SECONDS"
    )
    # A run that needs more self-re-invocations than this is stopped: its remaining items fail.
    max_continuations: int = Field(default=20, ge=0, validation_alias="ORCHESTRATOR_MAX_CONTINUATIONS")
    # Above the steps' longest timeout, so a slow step ends as Sandbox.Timedout, not a read error.
    invoke_read_timeout: PositiveFloat = Field(
        default=max(step.timeout_seconds for step in STEPS) + 15.0,
        validation_alias="ORCHESTRATOR_INVOKE_READ_TIMEOUT",
    )

    @model_validator(mode="before")
    @classmethod
    def _function_names_from_environment(cls, values: Any) -> Any:
        # One variable per step of the registry, so a new step needs no new field here.
        missing = [step.env_var for step in STEPS if not os.environ.get(step.env_var)]
        if missing:
            raise ValueError(f"missing function name variable(s): {', '.join(missing)}")
        return {**values, "step_functions": {step.name: os.environ[step.env_var] for step in STEPS}}

    def function_names(self) -> dict[str, str]:
        """Step name → Lambda function name."""
        return dict(self.step_functions)


@functools.cache
def get_settings() -> OrchestratorSettings:
    """The orchestrator's settings, read from the environment on first use."""
    return OrchestratorSettings()  # type: ignore[call-arg]  # fields come from the environment
