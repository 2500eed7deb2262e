"""`baton monitor` and `baton alerts`: the scheduled monitor of a deployed stack, seen from the CLI."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from baton import deploy
from baton.errors import BatonError
from baton.schedule import validate_schedule
from baton.targets import client
from pipeline.monitor_models import MonitorRun, MonitorRunStatus
from pipeline.monitor_state import MonitorTable


def set_schedule(target: str, stack: str, expression: str | None, engine: str | None) -> bool:
    """Redeploy the stack with a new schedule and/or engine; True when something changed."""
    parameters = {}
    if expression is not None:
        parameters["MonitorSchedule"] = validate_schedule(expression)
    if engine is not None:
        parameters["MonitorEngine"] = engine
    if not parameters:
        return False
    return deploy.deploy(target, stack, parameters, say=lambda _: None).changed


def run_once(target: str, stack: str, engine: str | None) -> MonitorRun:
    """Run the monitor now (a direct invocation) and return its run record."""
    outputs = deploy.stack_outputs(target, stack)
    response = client("lambda", target).invoke(
        FunctionName=outputs["MonitorFunctionName"],
        Payload=json.dumps({"engine": engine} if engine else {}).encode())
    body = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        raise BatonError(f"the monitor failed: {body.get('errorType')}: {body.get('errorMessage')}")
    return MonitorRun.model_validate(body)


def set_variables(target: str, stack: str, variables: dict[str, str | None]) -> dict[str, str]:
    """Set (or, with None, remove) variables of the deployed monitor function that the template
    does not expose (MONITOR_FOLLOW_SECONDS, MONITOR_MAX_CONCURRENCY…), once the update has
    settled; returns the variables it had before. A later deploy puts the template's back."""
    name = deploy.stack_outputs(target, stack)["MonitorFunctionName"]
    lambda_ = client("lambda", target)
    before = dict(lambda_.get_function_configuration(FunctionName=name)
                  .get("Environment", {}).get("Variables", {}))
    after = {key: value for key, value in {**before, **variables}.items() if value is not None}
    lambda_.update_function_configuration(FunctionName=name, Environment={"Variables": after})
    deadline = time.monotonic() + 60
    while lambda_.get_function_configuration(FunctionName=name).get(
            "LastUpdateStatus", "Successful") != "Successful":
        if time.monotonic() > deadline:
            raise BatonError(f"the monitor function {name}'s configuration update did not settle")
        time.sleep(0.5)
    return before


def monitor_table(target: str, stack: str) -> MonitorTable:
    outputs = deploy.stack_outputs(target, stack)
    return MonitorTable(outputs["MonitorStateTableName"], client("dynamodb", target))


def new_runs(table: MonitorTable, seen: set[str]) -> Iterator[MonitorRun]:
    """Finished monitor runs not seen before, oldest first (for --follow)."""
    for run in reversed(table.recent_runs(20)):
        if run.run_id not in seen and run.status != "running":
            seen.add(run.run_id)
            yield run


def run_report(table: MonitorTable, run: MonitorRun) -> str:
    """A monitor run as text: its URLs with their state, and the alerts it raised."""
    lines = [f"monitor run {run.run_id} ({run.engine}, {run.trigger}) "
             f"{run.started_at:%Y-%m-%d %H:%M:%S}: {run.status}"
             + (f" — {run.error}" if run.error else "")]
    if run.adopted:
        lines.append(f"  followed the earlier run {run.adopted} (settled it if it had ended)")
    if run.status == MonitorRunStatus.RUNNING:
        lines.append(f"  still running when this firing's time was up: a later firing settles "
                     f"its {run.total} check(s) and alerts (`baton monitor --follow`)")
    for check in table.run_checks(run.run_id):
        mark = "ALERT" if check.transition else ""
        lines.append(f"  {check.state.value:<10} {mark:<5} {check.label or check.url}")
    for alert in run.alerts:
        lines.append(f"  -> {alert.subject}" + ("" if alert.published else " (NOT PUBLISHED)"))
    return "\n".join(lines)


@dataclass(frozen=True)
class AlertMessage:
    at: str
    subject: str
    body: dict[str, Any]


def recent_alerts(target: str, stack: str, limit: int = 20) -> list[AlertMessage]:
    """The newest alerts in the stack's alerts queue, newest first. Reading does not consume
    them: each message is hidden while the queue is paged through, then made visible again."""
    queue = deploy.stack_outputs(target, stack)["AlertsQueueUrl"]
    sqs = client("sqs", target)
    found: list[AlertMessage] = []
    handles: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                       VisibilityTimeout=30, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            break
        for message in messages:
            handles.append(message["ReceiptHandle"])
            envelope = json.loads(message["Body"])
            try:
                body = json.loads(envelope.get("Message", "{}"))
            except json.JSONDecodeError:
                body = {"message": envelope.get("Message")}
            found.append(AlertMessage(envelope.get("Timestamp", ""), envelope.get("Subject", ""), body))
    for start in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(QueueUrl=queue, Entries=[
            {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for index, handle in enumerate(handles[start:start + 10])])
    return sorted(found, key=lambda alert: alert.at, reverse=True)[:limit]
