"""The monitor's state table: each URL's last check, the monitor's runs, and a run lease.

Schema (template.yaml's MonitorStateTable, named by MONITOR_STATE_TABLE_NAME;
``MONITOR_STATE_TABLE_SCHEMA`` below is the same key schema as create_table arguments):

    key           pk (S, HASH)            sk (S, RANGE)
    url state     URL#<url_id>            STATE
    monitor run   MONITOR#RUN             RUN#<started_at>#<run_id>
    run's checks  MONITOR#RUN#<run_id>    URL#<url_id>
    lease         MONITOR#LEASE           LEASE

- **url state**: a ``UrlState`` (status up/down, content_hash, score, verdicts, etag,
  last_modified, error, checked_at, run_id): what the next check compares with. Written only
  after the URL's alert (if any) was published, so a failed publish is detected again next run.
- **monitor run**: a ``MonitorRun`` (run_id, engine, trigger, status, started_at, ended_at, total,
  counts by classification, alerts raised). ``Query(pk=MONITOR#RUN, ScanIndexForward=False)``
  lists the newest first: what `baton monitor --follow` polls.
- **run's checks**: one ``Check`` per URL of the run (classification, previous and current
  state): the live table of `--follow`.
- **lease**: owner (a run id) and ``lease_until`` (epoch seconds). A run takes it with a
  conditional put before starting, so two firings never compare and alert at the same time.

Runs and checks carry ``expires_at`` (epoch seconds) for DynamoDB TTL.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from pipeline import aws
from pipeline.dynamodb import Table, batch_write, from_item, pk_sk_schema, to_item
from pipeline.keys import url_id
from pipeline.monitor_models import Check, MonitorRun, UrlState

MONITOR_STATE_TABLE_SCHEMA = pk_sk_schema()
STATE = "STATE"
RUNS = "MONITOR#RUN"
LEASE = "MONITOR#LEASE"
BATCH_GET_MAX = 100


def url_key(url: str) -> str:
    return f"URL#{url_id(url)}"


def run_sort_key(run: MonitorRun) -> str:
    return f"RUN#{run.started_at.isoformat()}#{run.run_id}"


def checks_key(run_id: str) -> str:
    return f"{RUNS}#{run_id}"


class MonitorTable(Table):
    """Reads and writes the monitor's state, runs, checks and lease in one DynamoDB table."""

    def __init__(self, table_name: str, client: Any = None, retention_days: int = 14) -> None:
        super().__init__(table_name, client)
        self.retention_s = retention_days * 86_400

    # ---- per-URL state ---------------------------------------------------------------------

    def states(self, urls: Iterable[str]) -> dict[str, UrlState]:
        """The last state of each of ``urls`` that was checked before, by URL."""
        keys = [{"pk": {"S": url_key(url)}, "sk": {"S": STATE}} for url in dict.fromkeys(urls)]
        found: dict[str, UrlState] = {}
        for start in range(0, len(keys), BATCH_GET_MAX):
            pending: dict[str, Any] = {self.table_name: {
                "Keys": keys[start:start + BATCH_GET_MAX], "ConsistentRead": True}}
            for attempt in range(8):
                answer = self.client.batch_get_item(RequestItems=pending)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    state = _model(UrlState, item)
                    found[state.url] = state
                pending = answer.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2 ** attempt)
            if pending:
                raise RuntimeError(f"DynamoDB kept throttling reads of {self.table_name}")
        return found

    def save_state(self, state: UrlState) -> None:
        """Record a URL's state after its check."""
        self.client.put_item(TableName=self.table_name, Item=to_item(
            {**state.model_dump(mode="json"), "pk": url_key(state.url), "sk": STATE}))

    # ---- runs and their checks -------------------------------------------------------------

    def save_run(self, run: MonitorRun) -> None:
        """Write the run's record (at its start, then at its end: same key)."""
        self.client.put_item(TableName=self.table_name, Item=to_item({
            **run.model_dump(mode="json"), "pk": RUNS, "sk": run_sort_key(run),
            "expires_at": self._expiry(run.started_at)}))

    def save_checks(self, run: MonitorRun, checks: Sequence[Check]) -> None:
        """Write one item per URL checked in the run."""
        expires_at = self._expiry(run.started_at)
        requests = [{"PutRequest": {"Item": to_item({
            **check.model_dump(mode="json"), "pk": checks_key(run.run_id), "sk": url_key(check.url),
            "expires_at": expires_at})}} for check in checks]
        batch_write(self.client, self.table_name, requests)

    def recent_runs(self, limit: int = 20) -> list[MonitorRun]:
        """The newest monitor runs first."""
        answer = self.client.query(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": RUNS}},
            ScanIndexForward=False,
            Limit=limit,
            ConsistentRead=True,
        )
        return [_model(MonitorRun, item) for item in answer.get("Items", [])]

    def run_checks(self, run_id: str) -> list[Check]:
        """The checks of one run (in url_id order)."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": checks_key(run_id)}},
            "ConsistentRead": True,
        }
        checks: list[Check] = []
        while True:
            page = self.client.query(**request)
            checks += [_model(Check, item) for item in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return checks
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ---- the lease -------------------------------------------------------------------------

    def acquire_lease(self, owner: str, *, now: float, seconds: float) -> str | None:
        """Take the lease for ``seconds``; returns None, or the run that holds it."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=to_item({"pk": LEASE, "sk": "LEASE", "owner": owner,
                              "lease_until": int(now + seconds)}),
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
            return None
        except ClientError as error:
            if aws.error_code(error) != "ConditionalCheckFailedException":
                raise
        held = self.client.get_item(TableName=self.table_name,
                                    Key={"pk": {"S": LEASE}, "sk": {"S": "LEASE"}},
                                    ConsistentRead=True).get("Item")
        return str(from_item(held)["owner"]) if held else "another run"

    def release_lease(self, owner: str) -> None:
        """Give the lease back, if this run still holds it."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"pk": {"S": LEASE}, "sk": {"S": "LEASE"}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as error:
            if aws.error_code(error) != "ConditionalCheckFailedException":
                raise

    def _expiry(self, started_at: datetime) -> int:
        return int(started_at.timestamp() + self.retention_s)


def _model(model: Any, item: dict[str, Any]) -> Any:
    values = from_item(item)
    for key in ("pk", "sk", "expires_at"):
        values.pop(key, None)
    return model.model_validate(values)
