"""Which deployed functions `baton run --faults` lets the Lambda fault kinds strike: every step's
(one function each, for every engine) and the coordinators' (orchestrator, tracker), read from
the stack's resources; not the monitor's nor the dead-letter tracker's."""

from __future__ import annotations

from typing import Any

import pytest

from baton import run

# Every function template.yaml declares, as describe_stack_resources lists them.
DEPLOYED = ["ScraperFunction", "TransformerFunction", "ModeratorFunction", "StoreFunction",
            "OrchestratorFunction", "TrackerFunction",
            "TrackerDeadLetterFunction", "MonitorFunction"]


class Stack:
    def describe_stack_resources(self, StackName: str) -> dict[str, Any]:
        return {"StackResources": [
            {"LogicalResourceId": logical, "PhysicalResourceId": f"{StackName}-{logical}-x1"}
            for logical in [*DEPLOYED, "RunsTable"]]}


def test_the_lambda_faults_strike_the_steps_and_the_coordinators(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "client", lambda service, target: Stack())

    struck = run.step_functions("local", "baton")

    assert "baton-OrchestratorFunction-x1" in struck and "baton-TrackerFunction-x1" in struck
    assert "baton-MonitorFunction-x1" not in struck
    assert "baton-TrackerDeadLetterFunction-x1" not in struck
    assert "baton-RunsTable-x1" not in struck
    assert len(struck) == 6  # 4 step functions and 2 coordinators
