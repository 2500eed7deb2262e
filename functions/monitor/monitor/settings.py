"""The monitor's environment, validated once: a bad variable fails fast with its name."""

from __future__ import annotations

import functools

from pydantic import Field, PositiveFloat, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engines.client import Deployment
from pipeline.models import MAX_CONCURRENCY
from pipeline.monitor_models import MonitorEngine

# The variable behind each field of the deployment, for messages.
VARIABLES = {"orchestrator_function": "ORCHESTRATOR_FUNCTION_NAME",
             "runs_table_name": "RUNS_TABLE_NAME", "state_machine_arn": "STATE_MACHINE_ARN",
             "data_bucket_name": "BUCKET_NAME"}


class MonitorSettings(BaseSettings):
    """Where the watchlist and the monitor's state live, which engine runs the pipeline, alerts."""

    model_config = SettingsConfigDict(frozen=True)

    watchlist_table_name: str = Field(min_length=3, validation_alias="WATCHLIST_TABLE_NAME")
    state_table_name: str = Field(min_length=3, validation_alias="MONITOR_STATE_TABLE_NAME")
    alert_topic_arn: str = Field(min_length=1, validation_alias="ALERT_TOPIC_ARN")
    engine: MonitorEngine = Field(default="orchestrator", validation_alias="MONITOR_ENGINE")
    # orchestrator engine: the function to invoke, and its runs table to follow a continued run.
    orchestrator_function: str | None = Field(
        default=None, validation_alias="ORCHESTRATOR_FUNCTION_NAME")
    runs_table_name: str | None = Field(default=None, validation_alias="RUNS_TABLE_NAME")
    # Where a large run request is handed to the orchestrator (engines.handoff).
    bucket_name: str | None = Field(default=None, validation_alias="BUCKET_NAME")
    # stepfunctions engine: the pipeline state machine.
    state_machine_arn: str | None = Field(default=None, validation_alias="STATE_MACHINE_ARN")
    max_concurrency: int = Field(
        default=8, ge=1, le=MAX_CONCURRENCY, validation_alias="MONITOR_MAX_CONCURRENCY")
    # How often a run is looked at (its own record only: one read): its end is noticed within
    # this, which a sweep of unchanged pages waits for, half of it on average.
    poll_seconds: PositiveFloat = Field(default=0.25, validation_alias="MONITOR_POLL_SECONDS")
    # Stop following a run when less than this is left of the invocation: the run record must
    # still be written before the timeout.
    safety_margin_seconds: PositiveFloat = Field(
        default=20.0, validation_alias="MONITOR_SAFETY_MARGIN_SECONDS")
    # Follow a run at most this long in one firing (default: until the safety margin): a run
    # still going then is adopted by a later firing, which settles it when it ends.
    follow_seconds: PositiveFloat | None = Field(
        default=None, validation_alias="MONITOR_FOLLOW_SECONDS")
    # A run still unsettled this long after its start is taken as lost: recorded failed, and
    # the next firing starts a new one.
    run_lease_seconds: PositiveFloat = Field(
        default=6 * 3600, validation_alias="MONITOR_RUN_LEASE_SECONDS")
    # The moderator's thresholds (the same template parameters): a watchlist entry that sets only
    # one threshold keeps the other from here.
    review_threshold: float = Field(default=0.5, ge=0.0, le=1.0, validation_alias="REVIEW_THRESHOLD")
    block_threshold: float = Field(default=0.8, ge=0.0, le=1.0, validation_alias="BLOCK_THRESHOLD")
    # Monitor runs and their per-URL checks expire (DynamoDB TTL on ``expires_at``).
    retention_days: int = Field(default=14, ge=1, validation_alias="MONITOR_RETENTION_DAYS")

    @model_validator(mode="after")
    def _engine_is_reachable(self) -> MonitorSettings:
        self.require(self.engine)
        return self

    def require(self, engine: str) -> None:
        """Fail, naming the variables, unless ``engine`` can be driven with these settings."""
        self.deployment().require(engine, VARIABLES)

    def deployment(self) -> Deployment:
        """Where the engines are, as the environment names them."""
        return Deployment(orchestrator_function=self.orchestrator_function,
                          state_machine_arn=self.state_machine_arn,
                          runs_table_name=self.runs_table_name, data_bucket_name=self.bucket_name)


@functools.cache
def get_settings() -> MonitorSettings:
    """The monitor's settings, read from the environment on first use."""
    return MonitorSettings()  # type: ignore[call-arg]  # fields come from the environment
