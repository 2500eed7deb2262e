"""The runs table: a run's progress and each item's steps, as the orchestrator records them.

Schema (template.yaml's RunsTable, named by RUNS_TABLE_NAME; ``RUNS_TABLE_SCHEMA`` below is the
same key schema as create_table arguments):

    key    pk (S, HASH)     sk (S, RANGE)
    run    RUN#<run_id>     META
    item   RUN#<run_id>     ITEM#<url_id>

``url_id`` is ``pipeline.keys.url_id(url)``. One ``Query(pk)`` reads a whole run.

- **run** (META): engine, status (running | succeeded | failed-items), total, succeeded, failed,
  flagged, pending, continuations, started_at, ended_at, updated_at. ``started_at`` is written
  once (``if_not_exists``), so a continued invocation keeps the run's real start.
- **item**: url, url_id, status (running | succeeded | failed), started_at, ended_at, ``steps``
  (one StepRecord map appended as each step ends, so a run in progress can be watched) and
  ``outcome`` (the ItemOutcome map, set when the item ends). An item with an outcome is finished:
  a continued or redelivered invocation skips it; an item still ``running`` is started again.

Timestamps are ISO 8601 UTC strings; numbers are DynamoDB numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from orchestrator.aws import dynamodb_client
from pipeline.keys import url_id
from pipeline.models import ItemOutcome, RunStatus, RunSummary, StepRecord

RUNS_TABLE_SCHEMA: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}

META = "META"
ITEM_PREFIX = "ITEM#"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def run_key(run_id: str) -> str:
    """The partition key of everything about one run."""
    return f"RUN#{run_id}"


def item_key(url: str) -> str:
    """The sort key of one URL's item within its run."""
    return f"{ITEM_PREFIX}{url_id(url)}"


def timestamp(moment: datetime) -> str:
    """ISO 8601 UTC."""
    return moment.astimezone(UTC).isoformat()


class RunsTable:
    """Records runs and their items in DynamoDB (the engine's RunLog)."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or dynamodb_client()

    def open_run(
        self, run_id: str, *, engine: str, total: int, started_at: datetime, continuation: int
    ) -> datetime:
        """Mark the run running (creating it if new); returns when it first started."""
        answer = self._update(
            run_id,
            META,
            "SET #engine = :engine, #total = :total, #status = :status, #continuations = :cont, "
            "#updated_at = :now, #started_at = if_not_exists(#started_at, :now)",
            {
                ":engine": engine,
                ":total": total,
                ":status": RunStatus.RUNNING.value,
                ":cont": continuation,
                ":now": timestamp(started_at),
            },
            ReturnValues="ALL_NEW",
        )
        return datetime.fromisoformat(_from_dynamodb(answer["Attributes"])["started_at"])

    def finished_items(self, run_id: str) -> dict[str, ItemOutcome]:
        """The outcomes of the run's finished items, by url_id."""
        return {item["url_id"]: ItemOutcome.model_validate(item["outcome"])
                for item in self._items(run_id) if "outcome" in item}

    def _items(self, run_id: str) -> list[dict[str, Any]]:
        """Every item record of the run, all pages of the query."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": run_key(run_id)},
                ":prefix": {"S": ITEM_PREFIX},
            },
            "ConsistentRead": True,  # an item finished just before a re-invocation must count
        }
        items: list[dict[str, Any]] = []
        while True:
            page = self.client.query(**request)
            items += [_from_dynamodb(raw) for raw in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def item_started(self, run_id: str, url: str, at: datetime) -> None:
        """Record that the URL's item started (again, if an earlier invocation left it running)."""
        item = {
            "pk": run_key(run_id),
            "sk": item_key(url),
            "url": url,
            "url_id": url_id(url),
            "status": "running",
            "started_at": timestamp(at),
            "steps": [],
        }
        self.client.put_item(TableName=self.table_name, Item=_to_dynamodb(item))

    def step_finished(self, run_id: str, url: str, step: StepRecord) -> None:
        """Append one step's record to the item."""
        self._update(
            run_id,
            item_key(url),
            "SET #steps = list_append(if_not_exists(#steps, :empty), :step)",
            {":empty": [], ":step": [step.model_dump(mode="json", exclude_none=True)]},
        )

    def item_finished(self, outcome: ItemOutcome, at: datetime) -> None:
        """Record the item's outcome: from now on the run counts it as finished."""
        self._update(
            outcome.run_id,
            item_key(outcome.url),
            "SET #status = :status, #ended_at = :at, #outcome = :outcome",
            {
                ":status": "succeeded" if outcome.succeeded else "failed",
                ":at": timestamp(at),
                ":outcome": outcome.model_dump(mode="json", exclude_none=True),
            },
        )

    def save_summary(self, summary: RunSummary) -> None:
        """Write the run's status and counts (at a checkpoint or at the end)."""
        values: dict[str, Any] = {
            ":status": summary.status.value,
            ":succeeded": summary.succeeded,
            ":failed": summary.failed,
            ":flagged": summary.flagged,
            ":pending": summary.pending,
            ":now": timestamp(datetime.now(UTC)),
        }
        expression = (
            "SET #status = :status, #succeeded = :succeeded, #failed = :failed, "
            "#flagged = :flagged, #pending = :pending, #updated_at = :now"
        )
        if summary.ended_at is not None:
            expression += ", #ended_at = :ended"
            values[":ended"] = timestamp(summary.ended_at)
        self._update(summary.run_id, META, expression, values)

    def summary(self, run_id: str) -> RunSummary | None:
        """The run as recorded so far (for the CLI), or None if it was never started."""
        answer = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": run_key(run_id)}, "sk": {"S": META}},
            ConsistentRead=True,
        )
        if "Item" not in answer:
            return None
        meta = _from_dynamodb(answer["Item"])
        items = list(self.finished_items(run_id).values())
        ended = meta.get("ended_at")
        return RunSummary.from_outcomes(
            run_id,
            meta["engine"],
            items,
            total=int(meta["total"]),
            started_at=datetime.fromisoformat(meta["started_at"]),
            ended_at=datetime.fromisoformat(ended) if ended else None,
        )

    def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The runs' own records (META), newest first: a Scan, as the table holds nothing else."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "sk = :meta",
            "ExpressionAttributeValues": {":meta": {"S": META}},
        }
        runs: list[dict[str, Any]] = []
        while True:
            page = self.client.scan(**request)
            for raw in page.get("Items", []):
                meta = _from_dynamodb(raw)
                runs.append(meta | {"run_id": meta["pk"].removeprefix("RUN#")})
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(runs, key=lambda run: run.get("started_at", ""), reverse=True)[:limit]

    def item_steps(self, run_id: str) -> list[tuple[str, StepRecord]]:
        """Every recorded step of the run as (url, step), in the order they ended."""
        steps = [(item["url"], StepRecord.model_validate(step))
                 for item in self._items(run_id) for step in item.get("steps", [])]
        return sorted(steps, key=lambda pair: pair[1].ended_at)

    def _update(
        self,
        run_id: str,
        sort_key: str,
        expression: str,
        values: Mapping[str, Any],
        **extra: Any,
    ) -> Any:
        # Every attribute is written as #name: several (status, total...) are reserved words.
        names = {f"#{name}": name for name in re.findall(r"#(\w+)", expression)}
        return self.client.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": run_key(run_id)}, "sk": {"S": sort_key}},
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=_to_dynamodb(values),
            **extra,
        )


def _to_dynamodb(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(_decimals(value)) for name, value in attributes.items()}


def _from_dynamodb(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _numbers(_deserializer.deserialize(value)) for name, value in item.items()}


def _decimals(value: Any) -> Any:
    # DynamoDB numbers must be Decimal; str() keeps the float's shortest exact repr.
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {key: _decimals(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_decimals(inner) for inner in value]
    return value


def _numbers(value: Any) -> Any:
    # Back from Decimal: the models validate ints and floats, not Decimals.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {key: _numbers(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_numbers(inner) for inner in value]
    return value
