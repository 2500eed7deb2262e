"""Counting items' ends in the runs table, exactly once each, whatever is delivered twice.

The layout is the orchestrator's (orchestrator/orchestrator/runs.py), so ``RunsTable.summary``,
``recent_runs`` and the CLI read a choreographed run as they read an orchestrated one:

    run    RUN#<run_id>     META            engine, status, total, started_at, ended_at,
                                            succeeded, failed, flagged, finished, updated_at
    item   RUN#<run_id>     ITEM#<url_id>   url, url_id, status, ended_at, outcome

The run is opened by the CLI (``RunsTable.open_run``, engine "choreography") before any item is
published. Each terminal event is one transaction: the item is written only if it has no
outcome yet, and the run's counters are incremented with it — so a redelivered event cancels
the whole transaction and counts nothing. ``finished`` (the counters' sum) reaching ``total``
ends the run: status, ``pending`` 0 and ``ended_at`` are then set once.
"""

from __future__ import annotations

import functools
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from pipeline.errors import TransientError
from pipeline.keys import url_id
from pipeline.models import FLAGGED, ItemOutcome, RunStatus

ENGINE = "choreography"
META = "META"
CONFLICT_TRIES = 8  # concurrent items' ends contend for the one META item

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@functools.cache
def dynamodb_client() -> Any:
    """The DynamoDB client, created on first use so warm starts reuse it and moto can start."""
    return boto3.client("dynamodb")


def run_key(run_id: str) -> str:
    """The partition key of everything about one run (as orchestrator.runs.run_key)."""
    return f"RUN#{run_id}"


def item_key(url: str) -> str:
    """The sort key of one URL's item within its run (as orchestrator.runs.item_key)."""
    return f"ITEM#{url_id(url)}"


def timestamp(moment: datetime) -> str:
    """ISO 8601 UTC."""
    return moment.astimezone(UTC).isoformat()


class RunTracker:
    """Records items' outcomes and ends runs, in the runs table."""

    def __init__(
        self,
        table_name: str,
        client: Any = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self._sleep = sleep

    @property
    def client(self) -> Any:
        return self._client or dynamodb_client()

    def record(self, outcome: ItemOutcome, at: datetime) -> bool:
        """Count the item's end; False when it was counted before (a redelivered event)."""
        flagged = bool(outcome.record and outcome.record.verdict in FLAGGED)
        item = self._update(
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
            },
            ConditionExpression="attribute_not_exists(#outcome)",
        )
        run = self._update(
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
                ":engine": ENGINE,
            },
        )
        recorded = self._transact([{"Update": item}, {"Update": run}], outcome)
        # Also after a duplicate: the first delivery may have stopped between the two writes.
        self.finish_if_done(outcome.run_id, at)
        return recorded

    def finish_if_done(self, run_id: str, at: datetime) -> bool:
        """End the run if every item has ended; True if this call ended it."""
        answer = self._retry_conflicts(lambda: self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": run_key(run_id)}, "sk": {"S": META}},
            ConsistentRead=True,  # the increment just made must be seen
        ))
        meta = _from_dynamodb(answer.get("Item", {}))
        if "total" not in meta or "ended_at" in meta or meta.get("finished", 0) < meta["total"]:
            return False
        status = RunStatus.FAILED_ITEMS if meta.get("failed", 0) else RunStatus.SUCCEEDED
        update = self._update(
            run_id,
            META,
            "SET #ended_at = :at, #status = :status, #pending = :zero, #updated_at = :at",
            {":at": timestamp(at), ":status": status.value, ":zero": 0},
            ConditionExpression="attribute_not_exists(#ended_at)",
        )
        try:
            self._retry_conflicts(lambda: self.client.update_item(**update))
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False  # another item's event ended it at the same moment
            raise
        return True

    def _transact(self, writes: list[dict[str, Any]], outcome: ItemOutcome) -> bool:
        def attempt() -> bool:
            try:
                self.client.transact_write_items(TransactItems=writes)
            except ClientError as error:
                if _code(error) != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return False
                if not reasons and self._has_outcome(outcome):  # some emulators omit reasons
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
                    if _is_conflict(error) or _code(error) in _THROTTLED:
                        raise TransientError(f"runs table busy: {_code(error)}") from error
                    raise
            self._sleep(random.uniform(0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")

    def _has_outcome(self, outcome: ItemOutcome) -> bool:
        answer = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": run_key(outcome.run_id)}, "sk": {"S": item_key(outcome.url)}},
            ConsistentRead=True,
        )
        return "outcome" in answer.get("Item", {})

    def _update(
        self, run_id: str, sort_key: str, expression: str, values: Mapping[str, Any], **extra: Any
    ) -> dict[str, Any]:
        # Every attribute is written as #name: several (status, total...) are reserved words.
        text = expression + extra.get("ConditionExpression", "")
        return {
            "TableName": self.table_name,
            "Key": {"pk": {"S": run_key(run_id)}, "sk": {"S": sort_key}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {f"#{n}": n for n in re.findall(r"#(\w+)", text)},
            "ExpressionAttributeValues": _to_dynamodb(values),
            **extra,
        }


_THROTTLED = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                        "RequestLimitExceeded", "InternalServerError"})


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_conflict(error: ClientError) -> bool:
    reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
    return _code(error) == "TransactionConflictException" or "TransactionConflict" in reasons


def _to_dynamodb(values: Mapping[str, Any]) -> dict[str, Any]:
    # Through JSON so that every float becomes the Decimal DynamoDB requires, at any depth.
    plain = json.loads(json.dumps(dict(values)), parse_float=Decimal)
    return {name: _serializer.serialize(value) for name, value in plain.items()}


def _from_dynamodb(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}
