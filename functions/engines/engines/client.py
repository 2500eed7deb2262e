"""Start, follow and summarise a run of any engine: the one client of the CLI and the monitor.

Each engine is started and followed its own way, and every one ends in the same ``RunSummary``:

- orchestrator: an asynchronous invoke of the orchestrator function (a run longer than one
  invocation continues itself), followed in the runs table;
- choreography: the run is opened in the runs table and one PageRequested published per URL,
  then followed in the runs table (the tracker counts each item's end);
- stepfunctions: the run is opened in the runs table, then StartExecution named after the run;
  the state machine hands each item's end to the run tracker, which records it in the runs table
  (so the execution's state stays small), where the run is followed; the items' attempts come
  from the execution history, as the other engines count them.

Every start keeps the run's request in the data bucket (``engines.handoff``), which is what a
``redrive`` reads back to run again, under the same run id, the items that failed or never ended.

Clients come from a ``Clients`` factory (service name → boto3 client): the CLI passes its
target's, the monitor the shared layer's lazy ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from engines.handoff import RequestStore
from engines.runs import RunsTable
from pipeline.keys import execution_items_key
from pipeline.models import ItemOutcome, RunRequest, RunStatus, RunSummary
from pipeline.steps import CHOREOGRAPHY, ENGINES, ORCHESTRATOR, STEPFUNCTIONS, STEPS, Step

Clients = Callable[[str], Any]
Expired = Callable[[], bool]

# The error names some step's policy retries: a Task failure under one of them was retried.
RETRIED_ERRORS = frozenset(name for step in STEPS for name in step.policy.retry_on)

# A run the orchestrator has not opened by then never started (the function cannot run, the
# asynchronous invoke was lost): said instead of waiting for ever.
START_TIMEOUT_S = 60.0


class EngineFailed(RuntimeError):
    """The engine could not run the run (its function cannot start, the execution failed)."""


class RunIncomplete(RuntimeError):
    """The run did not finish before its follower had to stop following it."""


@dataclass(frozen=True)
class Deployment:
    """Where a deployed stack's engines are: the names its outputs (or environment) give."""

    orchestrator_function: str | None = None
    state_machine_arn: str | None = None
    runs_table_name: str | None = None
    event_bus_name: str | None = None
    data_bucket_name: str | None = None  # where run requests are kept (and large ones handed over)

    # The stack output that holds each field, for the CLI and for messages.
    OUTPUTS: ClassVar[dict[str, str]] = {
        "orchestrator_function": "OrchestratorFunctionName",
        "state_machine_arn": "PipelineStateMachineArn",
        "runs_table_name": "RunsTableName",
        "event_bus_name": "EventBusName",
        "data_bucket_name": "DataBucketName",
    }
    NEEDS: ClassVar[dict[str, tuple[str, ...]]] = {
        ORCHESTRATOR: ("orchestrator_function", "runs_table_name", "data_bucket_name"),
        STEPFUNCTIONS: ("state_machine_arn", "runs_table_name", "data_bucket_name"),
        CHOREOGRAPHY: ("event_bus_name", "runs_table_name", "data_bucket_name"),
    }

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, str]) -> Deployment:
        """The deployment a stack's outputs describe."""
        return cls(**{field: outputs.get(output) for field, output in cls.OUTPUTS.items()})

    def missing(self, engine: str) -> list[str]:
        """The fields ``engine`` needs and this deployment lacks."""
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
        return [field for field in self.NEEDS[engine] if not getattr(self, field)]

    def require(self, engine: str, names: Mapping[str, str] = OUTPUTS) -> None:
        """Fail, naming what is missing (by ``names``: stack outputs by default), unless
        ``engine`` can run on this deployment."""
        if missing := self.missing(engine):
            raise ValueError(f"the {engine} engine needs {', '.join(names[m] for m in missing)}")


@dataclass
class Progress:
    """How far a run is: items done (failed among them) of its total, and what runs now."""

    total: int
    done: int = 0
    failed: int = 0
    current: str = ""


class EngineClient(Protocol):
    """Starts a run on one engine and reports its progress, then its summary."""

    engine: str

    def start(self, request: RunRequest) -> str:
        """Start ``request``; returns the handle ``poll`` takes."""
        ...

    def poll(self, handle: str, request: RunRequest) -> tuple[Progress, RunSummary | None]:
        """Progress so far, and the summary once the run has finished."""
        ...

    def restart(self, request: RunRequest, urls: list[str], redrive: int) -> str:
        """Run ``urls`` of a started run once more (a redrive, after ``RunsTable.reopen``)."""
        ...

    def alive(self, meta: dict[str, Any], now: datetime) -> bool | None:
        """Whether a run marked running still runs: None when the engine cannot tell."""
        ...


class _RunsTableClient:
    """An engine that records its runs in the runs table, where they are followed by run id."""

    engine = ""

    def __init__(self, deployment: Deployment, clients: Clients,
                 clock: Callable[[], float] = time.monotonic) -> None:
        deployment.require(self.engine)
        self.deployment = deployment
        self.clients = clients
        self.clock = clock
        self.started_at = 0.0

    def runs(self) -> RunsTable:
        return RunsTable(str(self.deployment.runs_table_name), self.clients("dynamodb"))

    def alive(self, meta: dict[str, Any], now: datetime) -> bool | None:
        """The choreography's items travel as events: nothing says whether they still do."""
        return None

    def requests(self) -> RequestStore:
        """Where the run's request is kept (what a redrive reads back) or handed over."""
        return RequestStore(self.deployment.data_bucket_name, self.clients("s3"))

    def poll(self, handle: str, request: RunRequest) -> tuple[Progress, RunSummary | None]:
        # The run's own record only, while it runs; its items once, when it has ended.
        runs = self.runs()
        progress = runs.progress(handle)
        if progress is None:
            if self.clock() - self.started_at > START_TIMEOUT_S:
                raise EngineFailed(
                    f"the {self.engine} engine did not start run {handle} within "
                    f"{START_TIMEOUT_S:.0f} s: its function may be unable to run (see its logs)")
            return Progress(len(request.urls), current="starting"), None
        meta, done, failed = progress
        shown = Progress(int(meta.get("total", len(request.urls))), min(done, int(meta.get(
            "total", done))), failed)
        if "ended_at" not in meta:
            return shown, None
        summary = runs.summary(handle)
        if summary is None or summary.pending or summary.ended_at is None:
            return shown, None
        return Progress(summary.total, summary.succeeded + summary.failed, summary.failed), summary


class OrchestratorClient(_RunsTableClient):
    """The orchestrator engine: one asynchronous invoke; the run continues itself if long."""

    engine = ORCHESTRATOR

    def start(self, request: RunRequest) -> str:
        # Asynchronous, so a run longer than one invocation is followed the same way as a
        # short one, and no caller holds a connection open for 15 minutes. A large request is
        # handed over in S3 (engines.handoff).
        self.requests().keep(request)
        self._invoke(request)
        return request.run_id

    def restart(self, request: RunRequest, urls: list[str], redrive: int) -> str:
        # The whole request, as its next continuation: the orchestrator skips the items that
        # have an outcome, so only the reopened ones run; its claim takes the new continuation.
        meta = self.runs().meta(request.run_id) or {}
        following = int(meta.get("claimed", meta.get("continuations", 0))) + 1
        self._invoke(request.model_copy(update={"continuation": following}))
        return request.run_id

    def alive(self, meta: dict[str, Any], now: datetime) -> bool | None:
        """An invocation holds the run while its lease lasts: past it, the holder is gone."""
        lease = meta.get("lease_until")
        return bool(lease) and datetime.fromisoformat(str(lease)) > now

    def _invoke(self, request: RunRequest) -> None:
        self.clients("lambda").invoke(
            FunctionName=self.deployment.orchestrator_function, InvocationType="Event",
            Payload=self.requests().payload(request))
        self.started_at = self.clock()


class ChoreographyClient(_RunsTableClient):
    """The choreography engine: the run opened, then one event per URL; the tracker counts."""

    engine = CHOREOGRAPHY

    def start(self, request: RunRequest) -> str:
        # Imported here: the choreography's runtime brings Powertools and X-Ray (~0.5 s), which
        # every CLI command would otherwise pay at start.
        from engines.choreography import start_choreography

        # Opens the run first (so the tracker knows its total), then one PageRequested per URL.
        self.requests().keep(request)
        start_choreography(request, str(self.deployment.event_bus_name), self.runs(),
                           self.clients("events"))
        self.started_at = self.clock()
        return request.run_id

    def restart(self, request: RunRequest, urls: list[str], redrive: int) -> str:
        from engines.choreography import request_pages  # see start()

        request_pages(request, urls, str(self.deployment.event_bus_name), self.clients("events"),
                      datetime.now(UTC), self.runs())
        self.started_at = self.clock()
        return request.run_id


class StepFunctionsClient(_RunsTableClient):
    """The Step Functions engine: an execution named after the run. The run is opened in the runs
    table first; the state machine hands each item's end to the run tracker, which records it
    there, so the run is followed like the others and the execution's own state stays small.

    The execution's input is a pointer: its items (URLs and validators) are put in the data
    bucket, where the state machine's Distributed Map reads them, so no state holds the URL list
    and a run of any size stays under Step Functions' 256 KiB per state."""

    engine = STEPFUNCTIONS

    def start(self, request: RunRequest) -> str:
        self.requests().keep(request)
        self.runs().open_run(request.run_id, engine=self.engine,
                             total=len(dict.fromkeys(request.urls)),
                             started_at=datetime.now(UTC), continuation=0)
        return self._execute(request.run_id, request)

    def restart(self, request: RunRequest, urls: list[str], redrive: int) -> str:
        # A new execution over the reopened items only, linked to the run by its name and by
        # the run id its items are recorded under (neither emulator offers RedriveExecution).
        return self._execute(f"{request.run_id}-redrive-{redrive}",
                             request.model_copy(update={"urls": urls}))

    def alive(self, meta: dict[str, Any], now: datetime) -> bool | None:
        """The run's latest execution (its first, or its latest redrive) is still running."""
        run_id = str(meta["pk"]).removeprefix("RUN#")
        redrives = int(meta.get("redrives", 0))
        name = f"{run_id}-redrive-{redrives}" if redrives else run_id
        sfn = self.clients("stepfunctions")
        try:
            described = sfn.describe_execution(
                executionArn=execution_arn(str(self.deployment.state_machine_arn), name))
        except sfn.exceptions.ExecutionDoesNotExist:
            return False
        return bool(described["status"] == "RUNNING")

    def _execute(self, name: str, request: RunRequest) -> str:
        """Put the items of ``request`` where the execution ``name`` reads them, and start it."""
        bucket = str(self.deployment.data_bucket_name)
        key = execution_items_key(request.run_id, name)
        self.clients("s3").put_object(
            Bucket=bucket, Key=key, ContentType="application/json",
            Body=json.dumps(request.state_machine_items(), separators=(",", ":")).encode())
        response = self.clients("stepfunctions").start_execution(
            stateMachineArn=self.deployment.state_machine_arn, name=name,
            input=json.dumps(request.state_machine_input(bucket, key)))
        self.started_at = self.clock()
        return str(response["executionArn"])

    def poll(self, handle: str, request: RunRequest) -> tuple[Progress, RunSummary | None]:
        sfn = self.clients("stepfunctions")
        described = sfn.describe_execution(executionArn=handle)
        if described["status"] not in ("RUNNING", "SUCCEEDED"):
            raise EngineFailed(f"execution {handle} ended {described['status']}: "
                               f"{described.get('error', '')} {described.get('cause', '')}".strip()
                               + "".join(f"\n  {failure}" for failure in failed_items(sfn, handle)))
        progress, summary = super().poll(request.run_id, request)
        # Every item recorded is not yet the run's end: an iteration may still fail after its
        # outcome was recorded (its alert lost), and with it the execution.
        if summary is None or described["status"] == "RUNNING":
            return progress, None
        # Attempts are what only the execution history knows (retries inside a Task): each
        # item's child execution's history, or the whole history where it names no items.
        histories = item_histories(sfn, handle)
        items = [with_attempts(item, histories[item.url], own=True) if item.url in histories
                 else with_attempts(item, histories[None]) for item in summary.items]
        return progress, summary.model_copy(update={"items": items})


CLIENTS: dict[str, Callable[[Deployment, Clients], EngineClient]] = {
    ORCHESTRATOR: OrchestratorClient,
    STEPFUNCTIONS: StepFunctionsClient,
    CHOREOGRAPHY: ChoreographyClient,
}


def engine_client(engine: str, deployment: Deployment, clients: Clients) -> EngineClient:
    """The client of ``engine`` on ``deployment``; ValueError names what it lacks."""
    deployment.require(engine)
    return CLIENTS[engine](deployment, clients)


def follow(
    client: EngineClient,
    handle: str,
    request: RunRequest,
    *,
    expired: Expired,
    poll_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    show: Callable[[Progress], None] | None = None,
) -> RunSummary:
    """Poll a started run until its summary; RunIncomplete once ``expired()`` says stop."""
    while True:
        progress, summary = client.poll(handle, request)
        if show is not None:
            show(progress)
        if summary is not None:
            return summary
        if expired():
            raise RunIncomplete(f"run {request.run_id} is still running ({progress.done} of "
                                f"{progress.total} item(s) done); stopped following it")
        sleep(poll_seconds)


# ---- redrive --------------------------------------------------------------------------------------


def items_to_redrive(request: RunRequest, summary: RunSummary) -> list[str]:
    """The run's URLs to run again: those that never ended, and those that failed for a reason
    that may pass (not a permanent failure, which would fail the same way)."""
    ended = {item.url: item for item in summary.items}
    final = {name for step in STEPS for name in step.policy.final}
    return [url for url in dict.fromkeys(request.urls)
            if url not in ended or (not ended[url].succeeded and ended[url].error_type not in final)]


@dataclass(frozen=True)
class Redrive:
    """A redrive under way: follow it with ``follow(client, handle, request)``."""

    client: EngineClient
    handle: str
    request: RunRequest
    urls: list[str]
    number: int


def carried_by_an_earlier_cloud(meta: dict[str, Any], cloud_started_at: datetime | None) -> bool:
    """Whether the run was last (re)started before the cloud that runs it did: whatever carried
    it then (an invocation, events on their way, an execution) died with the earlier process."""
    updated = meta.get("updated_at") or meta.get("started_at")
    return (cloud_started_at is not None and bool(updated)
            and datetime.fromisoformat(str(updated)) < cloud_started_at)


def redrive(run_id: str, deployment: Deployment, clients: Clients, *, force: bool = False,
            now: Callable[[], datetime] = lambda: datetime.now(UTC),
            cloud_started_at: datetime | None = None) -> Redrive | None:
    """Run again, under the same run id and with the same engine, the items of a run that failed
    or never finished; None when there is nothing to redrive. Items stored are not redone.

    A run still marked running is refused unless its engine says it stopped (an orchestrator
    whose lease expired, an execution that ended), the cloud that runs it restarted since it
    was last started (``cloud_started_at``: the local cloud's start, None on AWS), or ``force``
    says so.
    """
    runs = RunsTable(str(deployment.runs_table_name), clients("dynamodb"))
    meta = runs.meta(run_id)
    summary = runs.summary(run_id)
    if meta is None or summary is None:
        raise EngineFailed(f"no run {run_id!r} in the runs table; `baton executions` lists them")
    request = RequestStore(deployment.data_bucket_name, clients("s3")).kept(run_id)
    if request is None:
        raise EngineFailed(f"run {run_id}'s request was not kept (it was started before runs "
                           "kept their requests), so its items cannot be known: run it again")
    client = engine_client(str(meta["engine"]), deployment, clients)
    if (summary.status is RunStatus.RUNNING and not force
            and not carried_by_an_earlier_cloud(meta, cloud_started_at)
            and client.alive(meta, now()) is not False):
        raise EngineFailed(
            f"run {run_id} is still running ({summary.pending} item(s) pending); redrive it once "
            "it has ended, or with --force if you know it stopped")
    urls = items_to_redrive(request, summary)
    if not urls:
        return None
    number, reopened = runs.reopen(run_id, urls, now())
    if not reopened:  # every one was stored meanwhile
        return None
    return Redrive(client, client.restart(request, reopened, number), request, reopened, number)


# ---- Step Functions history ---------------------------------------------------------------------


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the state machine's execution called ``name`` (a run's id)."""
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def _pages(call: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every entry under ``key`` of a paginated Step Functions listing."""
    found: list[dict[str, Any]] = []
    while True:
        page = call(**kwargs)
        found += page[key]
        if not page.get("nextToken"):
            return found
        kwargs["nextToken"] = page["nextToken"]


def own_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of one execution's own history, oldest first (not its child executions')."""
    return _pages(sfn.get_execution_history, "events", executionArn=execution_arn,
                  maxResults=1000)


def keeps_no_child_executions(response: dict[str, Any]) -> bool:
    """Whether the Step Functions that gave ``response`` is LocalStack's, which runs a
    Distributed Map's iterations inside the parent execution: it lists the Map Run but keeps no
    child execution nor any history of the iterations (ListExecutions by mapRunArn fails with an
    InternalError), so there is nothing to read but the parent's own history."""
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return str(headers.get("x-localstack", "")).lower() == "true"


def child_executions(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The child executions of an execution's Map Runs (one per item of a Distributed Map),
    in the order they started; none where the service keeps none (LocalStack)."""
    first = sfn.list_map_runs(executionArn=execution_arn)
    if keeps_no_child_executions(first):
        return []
    runs = first["mapRuns"] + (_pages(sfn.list_map_runs, "mapRuns", executionArn=execution_arn,
                                      nextToken=first["nextToken"]) if first.get("nextToken") else [])
    children = [child for run in runs
                for child in _pages(sfn.list_executions, "executions",
                                    mapRunArn=run["mapRunArn"], maxResults=1000)]
    return sorted(children, key=lambda child: (str(child["startDate"]), child["executionArn"]))


def child_histories(sfn: Any, execution_arn: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """(ARN, history) of each child execution of an execution's Map Runs, in the order they
    started."""
    return [(child["executionArn"], own_history(sfn, child["executionArn"]))
            for child in child_executions(sfn, execution_arn)]


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of an execution's history, oldest first, followed by those of each child
    execution of its Distributed Map (each item's together, in the order they started): the
    tasks run in the children. Ids are renumbered so that each stays unique."""
    events = [*own_history(sfn, execution_arn),
              *(event for _, child in child_histories(sfn, execution_arn) for event in child)]
    return [{**event, "id": number} for number, event in enumerate(events, 1)]


def failed_items(sfn: Any, execution_arn: str) -> list[str]:
    """"URL: error: cause" for each child execution of the Map that failed (its Fail state, or a
    task it could not catch), in the order they started: what made the execution fail."""
    found = []
    for child in child_executions(sfn, execution_arn):
        if child.get("status") != "FAILED":
            continue
        described = sfn.describe_execution(executionArn=child["executionArn"])
        url = json.loads(described.get("input") or "{}").get("url", child["executionArn"])
        found.append(f"{url}: {described.get('error', '')}: {described.get('cause', '')}")
    return found


def item_url(sfn: Any, child_arn: str, history: list[dict[str, Any]]) -> str | None:
    """The URL a Distributed Map's child execution ran, from its input: as its ExecutionStarted
    event holds it (AWS records one), else as DescribeExecution gives it (the local cloud records
    none for a child)."""
    started = next((event["executionStartedEventDetails"] for event in history
                    if "executionStartedEventDetails" in event), None)
    text = (started or sfn.describe_execution(executionArn=child_arn)).get("input") or "{}"
    url = json.loads(text).get("url")
    return None if url is None else str(url)


def item_histories(sfn: Any, execution_arn: str) -> dict[str | None, list[dict[str, Any]]]:
    """Each item's history by its URL, from the Distributed Map's child executions; under
    None, the execution's own history (where an inline Map's items' tasks are)."""
    histories: dict[str | None, list[dict[str, Any]]] = {None: own_history(sfn, execution_arn)}
    for child_arn, history in child_histories(sfn, execution_arn):
        url = item_url(sfn, child_arn, history)
        if url is not None:
            histories[url] = histories.get(url, []) + history
    return histories


def last_state_entered(history: list[dict[str, Any]]) -> str:
    """The name of the state most recently entered, for progress."""
    for event in reversed(history):
        details = event.get("stateEnteredEventDetails")
        if details:
            return str(details["name"])
    return ""


def retried_failures(history: list[dict[str, Any]], url: str) -> int:
    """How many task failures in a history shared by several items (an inline Map's) were the
    item's and retried: those under an error some step's policy retries whose message names
    the item's URL, as the steps' errors do."""
    return sum(1 for event in history
               if (failed := event.get("taskFailedEventDetails"))
               and failed.get("error") in RETRIED_ERRORS and url in failed.get("cause", ""))


def steps_taken(item: ItemOutcome) -> list[Step] | None:
    """The steps an item's path ran, in order, as the state machine goes: every step for a
    stored page, the scraper alone for an unchanged one, up to the failed step for a failed
    one; None when its outcome does not say (a failure to record it)."""
    if item.succeeded:
        return list(STEPS) if item.record is not None else [STEPS[0]]
    names = [step.name for step in STEPS]
    if item.failed_step not in names:
        return None
    return list(STEPS[:names.index(item.failed_step) + 1])


def attempts_per_step(item: ItemOutcome, history: list[dict[str, Any]]) -> list[int]:
    """Each step's task attempts in an item's own history (its child execution), in order.

    The history is read as the Retry policies run it, not by state names (the local cloud's
    child executions record none): each step's attempts follow one another until one succeeds,
    fails with an error its policy does not retry, or its retries are used up; then the next
    step's begin. What follows the item's last step (the tracker's tasks) is not counted.
    """
    steps = steps_taken(item)
    if steps is None:
        return []
    ends = [event for event in history
            if event.get("type") in ("TaskSucceeded", "TaskFailed", "TaskTimedOut")]
    counts, position = [], 0
    for step in steps:
        attempts = 0
        while position < len(ends):
            end, position, attempts = ends[position], position + 1, attempts + 1
            error = (end.get("taskFailedEventDetails") or {}).get("error")
            if (end["type"] == "TaskSucceeded" or not step.policy.is_retryable(str(error))
                    or attempts > step.policy.max_attempts):
                break
        counts.append(attempts)
    return counts


def with_attempts(item: ItemOutcome, history: list[dict[str, Any]], own: bool = False) -> ItemOutcome:
    """An item's attempts from the history, as the orchestrator counts them: those of its step
    tried most.

    ``own``: the history is the item's alone (its Distributed Map child execution), so every
    task in it is the item's, whatever its error's message (a killed or throttled invoke does
    not name the URL). Otherwise (an inline Map's history, shared by every item) the item's
    retried failures are those whose message names its URL: 1 + those, the failure that
    ended the item being its last attempt, not a retry.
    """
    if own:
        attempts = max(attempts_per_step(item, history), default=1)
    else:
        final = 0 if item.succeeded or item.error_type not in RETRIED_ERRORS else 1
        attempts = 1 + retried_failures(history, item.url) - final
    return item.model_copy(update={"attempts": max(item.attempts, attempts)})
