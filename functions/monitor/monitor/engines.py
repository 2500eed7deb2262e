"""The two engines the monitor can drive, behind one method: run a RunRequest to its RunSummary.

- ``OrchestratorRunner``: a RequestResponse invoke of the orchestrator. A run longer than one
  invocation comes back ``running`` (the orchestrator continued itself asynchronously); the
  summary is then read from the runs table (``pipeline.runs``) until every item has finished.
- ``StepFunctionsRunner``: ``start_execution`` of the pipeline state machine, then
  ``describe_execution`` until it ends; its output's items are ItemOutcomes.

Neither derives per-item attempts (the CLI does that from execution history): the monitor only
needs each item's outcome.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Protocol

from pipeline import aws
from pipeline.models import ItemOutcome, RunRequest, RunStatus, RunSummary
from pipeline.runs import RunsTable

Expired = Callable[[], bool]


class EngineFailed(RuntimeError):
    """The engine could not run the run (an invoke error, a failed execution)."""


class RunIncomplete(RuntimeError):
    """The run did not finish before the monitor had to stop following it."""


class PipelineRunner(Protocol):
    """Runs a whole run and returns its final summary."""

    engine: str

    def run(self, request: RunRequest, *, expired: Expired) -> RunSummary: ...


class OrchestratorRunner:
    """The orchestrator engine: invoke and wait; follow the runs table if the run continued."""

    engine = "orchestrator"

    def __init__(
        self,
        function_name: str,
        runs_table_name: str,
        *,
        lambda_client: Any = None,
        dynamodb: Any = None,
        poll_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.function_name = function_name
        self.runs_table_name = runs_table_name
        self._lambda = lambda_client
        self._dynamodb = dynamodb
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    def run(self, request: RunRequest, *, expired: Expired) -> RunSummary:
        """The run's final summary."""
        response = (self._lambda or aws.client("lambda", aws.RUN_WAIT)).invoke(
            FunctionName=self.function_name,
            InvocationType="RequestResponse",
            Payload=request.model_dump_json().encode(),
        )
        body = response["Payload"].read()
        if response.get("FunctionError"):
            try:
                error = json.loads(body)
                detail = f"{error.get('errorType')}: {error.get('errorMessage')}"
            except (ValueError, AttributeError):
                detail = body.decode(errors="replace")
            raise EngineFailed(f"the orchestrator failed run {request.run_id}: {detail}")
        summary = RunSummary.model_validate_json(body)
        runs = RunsTable(self.runs_table_name, self._dynamodb)
        while summary.status is RunStatus.RUNNING or summary.ended_at is None:
            if expired():
                raise RunIncomplete(f"run {request.run_id} is still running ({summary.pending} "
                                    "item(s) pending); the monitor stopped following it")
            self.sleep(self.poll_seconds)
            summary = runs.summary(request.run_id) or summary
        return summary


class StepFunctionsRunner:
    """The Step Functions engine: start an execution named after the run, wait for its output."""

    engine = "stepfunctions"

    def __init__(
        self,
        state_machine_arn: str,
        *,
        client: Any = None,
        poll_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.state_machine_arn = state_machine_arn
        self._client = client
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    def run(self, request: RunRequest, *, expired: Expired) -> RunSummary:
        """The run's final summary, from the execution's output."""
        sfn = self._client or aws.client("stepfunctions")
        execution_arn = sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=request.run_id,
            input=json.dumps(request.state_machine_input()),
        )["executionArn"]
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                break
            if expired():
                raise RunIncomplete(f"execution {execution_arn} is still running; the monitor "
                                    "stopped following it")
            self.sleep(self.poll_seconds)
        if described["status"] != "SUCCEEDED":
            raise EngineFailed(f"execution {execution_arn} ended {described['status']}: "
                               f"{described.get('error', '')} {described.get('cause', '')}".strip())
        output = json.loads(described["output"])
        items = [ItemOutcome.model_validate(item) for item in output["items"]]
        return RunSummary.from_outcomes(request.run_id, self.engine, items,
                                        started_at=described.get("startDate"),
                                        ended_at=described.get("stopDate"))
