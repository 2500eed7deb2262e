"""The runs table: a run's progress and each item's steps and outcome, as every engine records them.

Schema (template.yaml's RunsTable, named by RUNS_TABLE_NAME; ``RUNS_TABLE_SCHEMA`` below is the
same key schema as create_table arguments):

    key    pk (S, HASH)     sk (S, RANGE)
    run    RUN#<run_id>     META
    item   RUN#<run_id>     ITEM#<url_id>
    wait   RUN#<run_id>     WAIT#<batch>#<n>   (a choreographed item not admitted yet)

``url_id`` is ``pipeline.keys.url_id(url)``. One ``Query(pk)`` reads a whole run.

- **run** (META): engine, status (running | succeeded | failed-items), total, succeeded, failed,
  flagged, pending, continuations, started_at, ended_at, updated_at; a choreographed run also
  ``finished`` (the counters' sum). ``started_at`` is written once (``if_not_exists``), so a
  continued invocation keeps the run's real start. An orchestrated run also ``claimed`` (the
  continuation an invocation holds), ``lease_until`` (until when; renewed while it works) and
  ``released`` (the last continuation that ran to its end).
- **item**: url, url_id, status (running | succeeded | failed), started_at, ended_at, ``steps``
  (one StepRecord map appended as each step ends, so a run in progress can be watched) and
  ``outcome`` (the ItemOutcome map, set when the item ends). An item with an outcome is finished:
  a continued or redelivered invocation skips it; an item still ``running`` is started again.

Who writes what:

- the orchestrator opens its run, records each item's start, steps and outcome
  (``item_started``, ``step_finished``, ``item_finished``, which also writes the step that ended
  the item), adds its items' ends to the run's progress in batches (``add_progress``) and saves
  the run's summary, which sets that progress exactly;
- the choreography's run is opened by its starter (``open_run``, engine "choreography") before
  any item is published; the run tracker then counts each item's end with ``record``: one
  transaction writes the item only if it has no outcome yet and increments the run's counters
  with it, so a redelivered event cancels the whole transaction and counts nothing (but a
  success replaces a recorded failure, counts moved over: a duplicated event's copy may fail
  while its twin stores the page). ``finished``
  reaching ``total`` ends the run (``finish_if_done``): status, ``pending`` 0 and ``ended_at``
  are then set once. No steps are recorded. The starter also keeps the items beyond the run's
  first ``max_concurrency`` as **wait** records (``wait``), each admitted, then deleted, by the
  end of the item ahead of it in its lane (``waiting``, ``admitted``; engines.choreography).

Timestamps are ISO 8601 UTC strings; numbers are DynamoDB numbers.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws import error_code
from pipeline.dynamodb import REFUSED, Table, batch_write, from_item, pk_sk_schema, to_item
from pipeline.errors import TransientError
from pipeline.keys import url_id
from pipeline.models import FLAGGED, ItemOutcome, RunStatus, RunSummary, StepRecord
from pipeline.steps import CHOREOGRAPHY  # the engine whose items ``record`` counts

RUNS_TABLE_SCHEMA = pk_sk_schema()

META = "META"
ITEM_PREFIX = "ITEM#"
WAITING_PREFIX = "WAIT#"  # a choreographed item not admitted yet

CONFLICT_TRIES = 8  # concurrent items' ends contend for the one META item


class RunClaimed(Exception):
    """Another invocation holds this continuation of the run, or the run has ended."""


def run_key(run_id: str) -> str:
    """The partition key of everything about one run."""
    return f"RUN#{run_id}"


def item_key(url: str) -> str:
    """The sort key of one URL's item within its run."""
    return f"{ITEM_PREFIX}{url_id(url)}"


def timestamp(moment: datetime) -> str:
    """ISO 8601 UTC, always with microseconds: conditions compare these strings, and
    ``isoformat()`` drops a zero fraction ("…:37+00:00" would sort before "…:37.1+00:00")."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


# A call DynamoDB refused before applying it (pipeline.dynamodb.REFUSED) is made again; the
# tracker's transactions on META make conflicts ordinary here.
REFUSED_TRIES = 6


class _Retrying:
    """A DynamoDB client whose calls are made again (jittered backoff) while DynamoDB refuses
    them: a run's bookkeeping must not fail, or strand its run, for a refusal."""

    def __init__(self, client: Any, sleep: Callable[[float], None]) -> None:
        self._client = client
        self._sleep = sleep

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if not callable(call):
            return call

        def retried(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(1, REFUSED_TRIES + 1):
                try:
                    return call(*args, **kwargs)
                except ClientError as error:
                    if error_code(error) not in REFUSED or attempt == REFUSED_TRIES:
                        raise
                self._sleep(random.uniform(0, 0.05 * 2**attempt))
            raise AssertionError("unreachable")

        return retried


class RunsTable(Table):
    """Records runs and their items in DynamoDB (the orchestrator's RunLog, the tracker's counts)."""

    def __init__(
        self,
        table_name: str,
        client: Any = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(table_name, client)
        self._sleep = sleep

    @property
    def client(self) -> Any:
        """The table's client, making refused calls again."""
        return _Retrying(super().client, self._sleep)

    # ---- a run -------------------------------------------------------------------------------

    def open_run(
        self,
        run_id: str,
        *,
        engine: str,
        total: int,
        started_at: datetime,
        continuation: int,
        lease_until: datetime | None = None,
    ) -> datetime:
        """Mark the run running (creating it if new); returns when it first started.

        With ``lease_until`` the caller also claims the run's ``continuation`` until then (a
        short lease its holder renews while it works, ``renew_lease``): a redelivered or
        duplicated invocation of the same (or an earlier) continuation, of a continuation that
        ran to its end (``release``), or any invocation once the run has ended, raises
        ``RunClaimed``. A lease its holder stopped renewing (it died) can be taken over by a retry
        of the same continuation.
        """
        expression = ("SET #engine = :engine, #total = :total, #status = :status, "
                      "#continuations = :cont, #updated_at = :now, "
                      "#started_at = if_not_exists(#started_at, :now)")
        values: dict[str, Any] = {
            ":engine": engine,
            ":total": total,
            ":status": RunStatus.RUNNING.value,
            ":cont": continuation,
            ":now": timestamp(started_at),
        }
        extra: dict[str, Any] = {}
        if lease_until is not None:
            expression += ", #claimed = :cont, #lease_until = :lease"
            values[":lease"] = timestamp(lease_until)
            extra["ConditionExpression"] = (
                "attribute_not_exists(#ended_at) "
                "AND (attribute_not_exists(#released) OR #released < :cont) "
                "AND (attribute_not_exists(#claimed) "
                "OR #claimed < :cont OR (#claimed = :cont AND #lease_until < :now))")
        try:
            answer = self._update(run_id, META, expression, values, ReturnValues="ALL_NEW", **extra)
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                raise RunClaimed(f"run {run_id}: continuation {continuation} is held by another "
                                 "invocation, or the run has ended") from error
            raise
        return datetime.fromisoformat(from_item(answer["Attributes"])["started_at"])

    def renew_lease(self, run_id: str, continuation: int, until: datetime) -> bool:
        """Extend the holder's claim on ``continuation`` to ``until``; False when it is no longer
        the holder's (a retry took it over, a later continuation or the run's end came)."""
        try:
            self._update(run_id, META, "SET #lease_until = :lease",
                         {":lease": timestamp(until), ":cont": continuation},
                         ConditionExpression="#claimed = :cont AND attribute_not_exists(#ended_at)")
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, run_id: str, continuation: int) -> None:
        """Mark ``continuation`` as run to its end (its work recorded, its successor invoked):
        a retry or a late twin of it then does nothing, whatever its lease says."""
        try:
            self._update(run_id, META, "SET #released = :cont", {":cont": continuation},
                         ConditionExpression="#claimed = :cont")
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise  # else a later continuation holds the run: nothing of ours to release

    def save_summary(self, summary: RunSummary) -> None:
        """Write the run's status and counts (at a checkpoint or at the end); the progress
        added in batches (``add_progress``) is set to what the summary counts."""
        values: dict[str, Any] = {
            ":status": summary.status.value,
            ":succeeded": summary.succeeded,
            ":failed": summary.failed,
            ":flagged": summary.flagged,
            ":pending": summary.pending,
            ":done": summary.succeeded + summary.failed,
            ":now": timestamp(datetime.now(UTC)),
        }
        expression = (
            "SET #status = :status, #succeeded = :succeeded, #failed = :failed, "
            "#flagged = :flagged, #pending = :pending, #updated_at = :now, "
            "#progress_done = :done, #progress_failed = :failed"
        )
        if summary.ended_at is not None:
            expression += ", #ended_at = :ended"
            values[":ended"] = timestamp(summary.ended_at)
        self._update(summary.run_id, META, expression, values)

    # ---- an orchestrated item ----------------------------------------------------------------

    def item_started(self, run_id: str, url: str, at: datetime,
                     first_step: StepRecord | None = None) -> bool:
        """Record that the URL's item started at ``at`` (again, if an earlier invocation left it
        running), with the record of its first step if it has one; False when it has an outcome
        already, which is never overwritten: do not run it further.

        An update, not a put: a restarted item keeps its ``alerted`` mark (one alert per item).
        """
        steps = [] if first_step is None else [first_step.model_dump(mode="json", exclude_none=True)]
        try:
            self._update(
                run_id, item_key(url),
                "SET #url = :url, #url_id = :url_id, #status = :status, #started_at = :at, "
                "#steps = :steps",
                {":url": url, ":url_id": url_id(url), ":status": "running",
                 ":at": timestamp(at), ":steps": steps},
                ConditionExpression="attribute_not_exists(#outcome)")
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def claim_alert(self, run_id: str, url: str) -> bool:
        """Take the item's one alert; False when it was taken before (the alert went out)."""
        try:
            self._update(run_id, item_key(url), "SET #alerted = :yes", {":yes": True},
                         ConditionExpression="attribute_not_exists(#alerted)")
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_alert(self, run_id: str, url: str) -> None:
        """Give the alert back after a failed publish, so a retry of the item can send it."""
        self._update(run_id, item_key(url), "REMOVE #alerted", {})

    def step_finished(self, run_id: str, url: str, step: StepRecord) -> None:
        """Append one step's record to the item."""
        self._update(
            run_id,
            item_key(url),
            "SET #steps = list_append(if_not_exists(#steps, :empty), :step)",
            {":empty": [], ":step": [step.model_dump(mode="json", exclude_none=True)]},
        )

    def item_finished(self, outcome: ItemOutcome, at: datetime,
                      last_step: StepRecord | None = None,
                      started_at: datetime | None = None) -> bool:
        """Record the item's outcome, and the record of the step that ended it, in one write:
        from now on the run counts it as finished. False when it had one already (two
        invocations ran it at once): the first stands, and this one's step is only appended.

        ``started_at``: the item's start, when this is its invocation's first write of it (an
        item ended by its first step is recorded in this one write, start included): its URL and
        start are set, and its steps replaced rather than appended to (an earlier invocation's
        unfinished attempt is not this one's history).

        The run's progress is not counted here: the orchestrator adds its items' ends in
        batches (``add_progress``), which saves a write on the run's one META item per item.
        """
        expression = "SET #status = :status, #ended_at = :at, #outcome = :outcome"
        values: dict[str, Any] = {
            ":status": "succeeded" if outcome.succeeded else "failed",
            ":at": timestamp(at),
            ":outcome": outcome.model_dump(mode="json", exclude_none=True),
        }
        step = [] if last_step is None else [last_step.model_dump(mode="json", exclude_none=True)]
        if started_at is not None:
            expression += (", #url = :url, #url_id = :url_id, #started_at = :started_at, "
                           "#steps = :step")
            values |= {":url": outcome.url, ":url_id": url_id(outcome.url),
                       ":started_at": timestamp(started_at), ":step": step}
        elif last_step is not None:
            expression += ", #steps = list_append(if_not_exists(#steps, :empty), :step)"
            values |= {":empty": [], ":step": step}
        try:
            self._update(outcome.run_id, item_key(outcome.url), expression, values,
                         ConditionExpression="attribute_not_exists(#outcome)")
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                if last_step is not None:  # its steps are history all the same
                    self.step_finished(outcome.run_id, outcome.url, last_step)
                return False
            raise
        return True

    def add_progress(self, run_id: str, done: int, failed: int) -> None:
        """Add ``done`` items ended, ``failed`` of them failed, to the run's progress: what a
        follower reads from META alone (``progress``), as reading every item at each poll would
        cost O(items) a poll, O(items²) a run. ``save_summary`` sets it exactly."""
        self._update(run_id, META, "ADD #progress_done :done, #progress_failed :failed",
                     {":done": done, ":failed": failed})

    # ---- a choreographed item ----------------------------------------------------------------

    def record(self, outcome: ItemOutcome, at: datetime, *,
               requested_at: datetime | None = None) -> bool:
        """Count the item's end; False when it was counted before (a redelivered event), or
        when it ends an attempt the run asked for (``requested_at``) before the item was
        redriven: a stale end (a dead letter of the earlier attempt) must not end the new one."""
        flagged = bool(outcome.record and outcome.record.verdict in FLAGGED)
        condition, asked = "attribute_not_exists(#outcome)", {}
        if requested_at is not None:
            condition += " AND (attribute_not_exists(#reopened_at) OR #reopened_at <= :asked)"
            asked = {":asked": timestamp(requested_at)}
        item = self._update_request(
            outcome.run_id,
            item_key(outcome.url),
            "SET #url = :url, #url_id = :url_id, #status = :status, #ended_at = :at, "
            "#outcome = :outcome",
            {
                ":url": outcome.url,
                ":url_id": url_id(outcome.url),
                ":status": "succeeded" if outcome.succeeded else "failed",
                ":at": timestamp(at),
                ":outcome": outcome.model_dump(mode="json", exclude_none=True),
            } | asked,
            ConditionExpression=condition,
        )
        run = self._update_request(
            outcome.run_id,
            META,
            "ADD #succeeded :succeeded, #failed :failed, #flagged :flagged, #finished :one "
            "SET #updated_at = :at, #engine = if_not_exists(#engine, :engine)",
            {
                ":succeeded": int(outcome.succeeded),
                ":failed": int(not outcome.succeeded),
                ":flagged": int(flagged),
                ":one": 1,
                ":at": timestamp(at),
                ":engine": CHOREOGRAPHY,
            },
        )
        recorded = self._transact([{"Update": item}, {"Update": run}], outcome)
        if not recorded and outcome.succeeded:
            recorded = self._succeed_failed(outcome, at, flagged)
        # Also after a duplicate: the first delivery may have stopped between the two writes.
        self.finish_if_done(outcome.run_id, at)
        return recorded

    def _succeed_failed(self, outcome: ItemOutcome, at: datetime, flagged: bool) -> bool:
        """Replace a recorded failure by this success; False if the item had not failed.

        Events are delivered at least once: a duplicated event's copy may fail (its function
        killed, its retries spent) while its twin stores the page. The item is then stored, and
        counting its first end would call it failed; the success wins, whichever came first.
        """
        item = self._update_request(
            outcome.run_id,
            item_key(outcome.url),
            "SET #status = :status, #ended_at = :at, #outcome = :outcome",
            {":status": "succeeded", ":failed": "failed", ":at": timestamp(at),
             ":outcome": outcome.model_dump(mode="json", exclude_none=True)},
            ConditionExpression="#status = :failed",
        )
        run = self._update_request(
            outcome.run_id,
            META,
            "ADD #succeeded :one, #failed :minus, #flagged :flagged SET #updated_at = :at",
            {":one": 1, ":minus": -1, ":flagged": int(flagged), ":at": timestamp(at)},
        )
        if not self._transact([{"Update": item}, {"Update": run}], outcome, ended=False):
            return False
        # A run that had ended on this failure ended with every item stored after all.
        update = self._update_request(
            outcome.run_id, META, "SET #status = :status",
            {":status": RunStatus.SUCCEEDED.value, ":zero": 0},
            ConditionExpression="attribute_exists(#ended_at) AND #failed = :zero")
        try:
            self._retry_conflicts(lambda: self.client.update_item(**update))
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
        return True

    def finish_if_done(self, run_id: str, at: datetime) -> bool:
        """End the run if every item has ended; True if this call ended it."""
        answer = self._retry_conflicts(lambda: self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": run_key(run_id)}, "sk": {"S": META}},
            ConsistentRead=True,  # the increment just made must be seen
        ))
        meta = from_item(answer.get("Item", {}))
        if "total" not in meta or "ended_at" in meta or meta.get("finished", 0) < meta["total"]:
            return False
        status = RunStatus.FAILED_ITEMS if meta.get("failed", 0) else RunStatus.SUCCEEDED
        update = self._update_request(
            run_id,
            META,
            "SET #ended_at = :at, #status = :status, #pending = :zero, #updated_at = :at",
            {":at": timestamp(at), ":status": status.value, ":zero": 0},
            ConditionExpression="attribute_not_exists(#ended_at)",
        )
        try:
            self._retry_conflicts(lambda: self.client.update_item(**update))
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False  # another item's event ended it at the same moment
            raise
        return True

    def wait(self, run_id: str, waiting: list[tuple[str, str, str]]) -> None:
        """Keep items that wait to be admitted, as (key, url, their PageRequested's detail)."""
        batch_write(self.client, self.table_name, [
            {"PutRequest": {"Item": to_item({
                "pk": run_key(run_id), "sk": f"{WAITING_PREFIX}{key}", "url": url,
                "detail": detail})}}
            for key, url, detail in waiting])

    def waiting(self, run_id: str, key: str) -> str | None:
        """The detail the item waiting under ``key`` is to be requested with; None once it was
        admitted (or left its lane for a redrive)."""
        answer = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": run_key(run_id)}, "sk": {"S": f"{WAITING_PREFIX}{key}"}},
            ConsistentRead=True,  # an admission just made must be seen
        )
        return str(from_item(answer["Item"])["detail"]) if "Item" in answer else None

    def admitted(self, run_id: str, key: str) -> None:
        """The item waiting under ``key`` was admitted: it waits no more."""
        self.client.delete_item(
            TableName=self.table_name,
            Key={"pk": {"S": run_key(run_id)}, "sk": {"S": f"{WAITING_PREFIX}{key}"}})

    def forget_waiting(self, run_id: str, urls: list[str]) -> None:
        """Take ``urls`` out of the run's waiting items (a redrive runs them in lanes of its own)."""
        leaving = set(urls)
        batch_write(self.client, self.table_name, [
            {"DeleteRequest": {"Key": {"pk": {"S": run_key(run_id)}, "sk": {"S": item["sk"]}}}}
            for item in self._records(run_id, WAITING_PREFIX) if item["url"] in leaving])

    # ---- a redrive ---------------------------------------------------------------------------

    def reopen(self, run_id: str, urls: list[str], at: datetime) -> tuple[int, list[str]]:
        """Take back the failed outcomes of ``urls`` and mark the run running again, so that its
        engine runs those items once more under the same run id; the redrive's number and the
        URLs taken back (none: the run is left as it was).

        An item that succeeded is never taken back: it is left out (``urls`` was read a moment
        ago; a duplicated event's twin may have stored it since, and may still while it is being
        taken back: its end is then read again). An item with no outcome has nothing to take
        back. Where the run counts its ends (the tracker's ``record``), an outcome's counts are
        taken back with it, in one transaction. An item's ``alerted`` mark stays: a redriven
        item does not alert twice.
        """
        meta = self.meta(run_id)
        if meta is None:
            raise ValueError(f"no run {run_id} in the runs table")
        counted = "finished" in meta
        ended = self.finished_items(run_id)
        reopened = [url for url in urls
                    if self._take_back(run_id, url, ended.get(url_id(url)), counted, at)]
        if not reopened:
            return int(meta.get("redrives", 0)), []
        answer = self._update(
            run_id, META,
            "REMOVE #ended_at SET #status = :running, #updated_at = :at ADD #redrives :one",
            {":running": RunStatus.RUNNING.value, ":at": timestamp(at), ":one": 1},
            ReturnValues="ALL_NEW")
        return int(from_item(answer["Attributes"])["redrives"]), reopened

    def _take_back(self, run_id: str, url: str, outcome: ItemOutcome | None, counted: bool,
                   at: datetime, tries: int = 3) -> bool:
        """Take back ``url``'s end as read (``outcome``), its count with it; False if the item
        is stored (as read, or meanwhile). Its condition fails when the end changed since it was read: the
        item is read again and, unless stored now, taken back as it is then."""
        for _ in range(tries):
            if outcome is not None and outcome.succeeded:
                return False
            item = self._update_request(
                run_id, item_key(url),
                "SET #url = :url, #url_id = :url_id, #status = :status, #reopened_at = :at "
                "REMOVE #outcome, #ended_at",
                {":url": url, ":url_id": url_id(url), ":status": "redriven", ":at": timestamp(at)}
                | ({":failed": "failed"} if outcome is not None else {}),
                ConditionExpression=("#status = :failed" if outcome is not None
                                     else "attribute_not_exists(#outcome)"))
            writes = [{"Update": item}]
            if outcome is not None:  # its end is counted: take the count back with it
                counts = ("ADD #failed :minus, #finished :minus" if counted
                          else "ADD #progress_failed :minus, #progress_done :minus")
                writes.append({"Update": self._update_request(
                    run_id, META, counts, {":minus": -1})})

            def take_back(writes: list[dict[str, Any]] = writes) -> Any:
                return self.client.transact_write_items(TransactItems=writes)

            try:
                self._retry_conflicts(take_back)
                return True
            except ClientError as error:
                if error_code(error) != "TransactionCanceledException":
                    raise
            outcome = self._outcome(run_id, url)
        raise ValueError(f"{url} kept changing in run {run_id} while it was being redriven; "
                         "try again")

    def _outcome(self, run_id: str, url: str) -> ItemOutcome | None:
        """The item's recorded end, read consistently; None if it has none."""
        recorded = from_item(self._item(run_id, url)).get("outcome")
        return None if recorded is None else ItemOutcome.model_validate(recorded)

    def progress(self, run_id: str) -> tuple[dict[str, Any], int, int] | None:
        """(META, items ended, items failed) from the run's own record alone, without reading
        its items: what a follower polls. None if the run was never opened."""
        meta = self.meta(run_id)
        if meta is None:
            return None
        if "finished" in meta:  # the tracker's counts
            return meta, int(meta["finished"]), int(meta.get("failed", 0))
        return meta, int(meta.get("progress_done", 0)), int(meta.get("progress_failed", 0))

    def meta(self, run_id: str) -> dict[str, Any] | None:
        """The run's own record (META) as plain values, or None if it was never opened."""
        answer = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": run_key(run_id)}, "sk": {"S": META}},
            ConsistentRead=True,
        )
        return from_item(answer["Item"]) if "Item" in answer else None

    # ---- reading -----------------------------------------------------------------------------

    def finished_items(self, run_id: str) -> dict[str, ItemOutcome]:
        """The outcomes of the run's finished items, by url_id."""
        return {item["url_id"]: ItemOutcome.model_validate(item["outcome"])
                for item in self._items(run_id, "url_id", "outcome") if "outcome" in item}

    def summary(self, run_id: str) -> RunSummary | None:
        """The run as recorded so far, or None if it was never started."""
        meta = self.meta(run_id)
        if meta is None:
            return None
        items = list(self.finished_items(run_id).values())
        ended = meta.get("ended_at")
        return RunSummary.from_outcomes(
            run_id,
            str(meta["engine"]),
            items,
            total=int(meta["total"]),
            started_at=datetime.fromisoformat(meta["started_at"]),
            ended_at=datetime.fromisoformat(ended) if ended else None,
        )

    def recent_runs(self, limit: int = 20, engine: str | None = None) -> list[dict[str, Any]]:
        """The runs' own records (META) of one engine or all, newest first: a Scan, as the table
        holds nothing else."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "sk = :meta",
            "ExpressionAttributeValues": {":meta": {"S": META}},
        }
        runs: list[dict[str, Any]] = []
        while True:
            page = self.client.scan(**request)
            for raw in page.get("Items", []):
                meta = from_item(raw)
                if engine is None or meta.get("engine") == engine:
                    runs.append(meta | {"run_id": meta["pk"].removeprefix("RUN#")})
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(runs, key=lambda run: run.get("started_at", ""), reverse=True)[:limit]

    def item_steps(self, run_id: str) -> list[tuple[str, StepRecord]]:
        """Every recorded step of the run as (url, step), in the order they ended."""
        steps = [(item["url"], StepRecord.model_validate(step))
                 for item in self._items(run_id, "url", "steps") for step in item.get("steps", [])]
        return sorted(steps, key=lambda pair: pair[1].ended_at)

    def item_ends(self, run_id: str) -> list[tuple[datetime, ItemOutcome]]:
        """Every finished item of the run as (when it ended, its outcome), in that order."""
        ends = [(datetime.fromisoformat(item["ended_at"]), ItemOutcome.model_validate(item["outcome"]))
                for item in self._items(run_id, "ended_at", "outcome")
                if "outcome" in item and "ended_at" in item]
        return sorted(ends, key=lambda pair: pair[0])

    def _items(self, run_id: str, *attributes: str) -> list[dict[str, Any]]:
        """Every item record of the run, all pages of the query; only ``attributes`` of each
        if named (an item's step records are most of what botocore parses when it is read)."""
        return self._records(run_id, ITEM_PREFIX, attributes)

    def _records(self, run_id: str, prefix: str,
                 attributes: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Every record of the run whose sort key starts with ``prefix`` (only ``attributes``
        of each, if named), all pages of the query."""
        projection: dict[str, Any] = {
            "ProjectionExpression": ", ".join(f"#{name}" for name in attributes),
            "ExpressionAttributeNames": {f"#{name}": name for name in attributes},
        } if attributes else {}
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": run_key(run_id)},
                ":prefix": {"S": prefix},
            },
            "ConsistentRead": True,  # an item finished just before a re-invocation must count
            **projection,
        }
        items: list[dict[str, Any]] = []
        while True:
            page = self.client.query(**request)
            items += [from_item(raw) for raw in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ---- writing -----------------------------------------------------------------------------

    def _update(
        self, run_id: str, sort_key: str, expression: str, values: Mapping[str, Any], **extra: Any
    ) -> Any:
        return self.client.update_item(
            **self._update_request(run_id, sort_key, expression, values, **extra))

    def _update_request(
        self, run_id: str, sort_key: str, expression: str, values: Mapping[str, Any], **extra: Any
    ) -> dict[str, Any]:
        """UpdateItem's arguments (also a transaction's Update)."""
        # Every attribute is written as #name: several (status, total...) are reserved words.
        text = f"{expression} {extra.get('ConditionExpression', '')}"
        request = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": run_key(run_id)}, "sk": {"S": sort_key}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {f"#{n}": n for n in re.findall(r"#(\w+)", text)},
            **extra,
        }
        if values:  # DynamoDB refuses an empty map
            request["ExpressionAttributeValues"] = to_item(values)
        return request

    def _transact(self, writes: list[dict[str, Any]], outcome: ItemOutcome,
                  ended: bool = True) -> bool:
        """Write the item and its run's counts together; False when the item's condition failed
        (``ended``: the condition is that the item has not ended yet)."""
        def attempt() -> bool:
            try:
                self.client.transact_write_items(TransactItems=writes)
            except ClientError as error:
                if error_code(error) != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return False
                # Some emulators omit the reasons.
                if not reasons and ended and self._has_outcome(outcome):
                    return False
                if not reasons and not ended and not self._has_failed(outcome):
                    return False
                raise
            return True

        return self._retry_conflicts(attempt)

    def _retry_conflicts(self, call: Callable[[], Any]) -> Any:
        """``call``, again after a short jittered wait while it conflicts with another write."""
        for attempt in range(1, CONFLICT_TRIES + 1):
            try:
                return call()
            except ClientError as error:
                if not _is_conflict(error) or attempt == CONFLICT_TRIES:
                    if _is_conflict(error) or error_code(error) in _THROTTLED:
                        raise TransientError(f"runs table busy: {error_code(error)}") from error
                    raise
            self._sleep(random.uniform(0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")

    def _has_outcome(self, outcome: ItemOutcome) -> bool:
        return "outcome" in self._item(outcome.run_id, outcome.url)

    def _has_failed(self, outcome: ItemOutcome) -> bool:
        return self._item(outcome.run_id, outcome.url).get("status", {}).get("S") == "failed"

    def _item(self, run_id: str, url: str) -> dict[str, Any]:
        """The item's record as DynamoDB holds it, read consistently; {} if there is none."""
        answer = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": run_key(run_id)}, "sk": {"S": item_key(url)}},
            ConsistentRead=True,
        )
        return dict(answer.get("Item", {}))


_THROTTLED = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                        "RequestLimitExceeded", "InternalServerError"})


def _is_conflict(error: ClientError) -> bool:
    reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
    return error_code(error) == "TransactionConflictException" or "TransactionConflict" in reasons
