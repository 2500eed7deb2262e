"""The monitor's pipeline runner: start a run on an engine, follow a started one to its end."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from engines.client import EngineClient, Expired, RunIncomplete, follow
from pipeline.models import RunRequest, RunSummary


@dataclass
class EnginePipelineRunner:
    """monitor.logic.PipelineRunner on one engine's client (engines.client)."""

    client: EngineClient
    poll_seconds: float = 2.0
    sleep: Callable[[float], None] = field(default=time.sleep)

    @property
    def engine(self) -> str:
        """The engine's name."""
        return self.client.engine

    def start(self, request: RunRequest) -> str:
        """Start ``request``; returns the handle the run is followed by."""
        return self.client.start(request)

    def wait(self, handle: str, request: RunRequest, *, started_at: datetime,
             expired: Expired) -> RunSummary | None:
        """The run's summary once it has ended; None when ``expired()`` says stop first."""
        if hasattr(self.client, "started_at"):
            # A client times "the run never opened" from its own start(); a run started by an
            # earlier firing (an asynchronous invoke maybe still queued) is timed from its start.
            age = max(0.0, (datetime.now(UTC) - started_at).total_seconds())
            cast(Any, self.client).started_at = time.monotonic() - age
        try:
            return follow(self.client, handle, request, expired=expired,
                          poll_seconds=self.poll_seconds, sleep=self.sleep)
        except RunIncomplete:
            return None
