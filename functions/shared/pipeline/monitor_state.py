"""The monitor's state table: each URL's last check, the monitor's runs, and a run lease.

Schema (template.yaml's MonitorStateTable, named by MONITOR_STATE_TABLE_NAME;
``MONITOR_STATE_TABLE_SCHEMA`` below is the same key schema as create_table arguments):

    key           pk (S, HASH)            sk (S, RANGE)
    url state     URL#<url_id>            STATE
    monitor run   MONITOR#RUN             RUN#<started_at>#<run_id>
    run's checks  MONITOR#RUN#<run_id>    URL#<url_id>
    lease         MONITOR#LEASE           LEASE
    delivery      MONITOR#EVENT           <schedule event id>

- **url state**: a ``UrlState`` (status up/down/failing, content_hash, score, verdicts, etag,
  last_modified, error, checked_at, run_id): what the next check compares with. Written only
  after the URL's alert (if any) was published, so a failed publish is detected again next run.
- **monitor run**: a ``MonitorRun`` (run_id, engine, trigger, status, started_at, ended_at, total,
  counts by classification, alerts raised). ``Query(pk=MONITOR#RUN, ScanIndexForward=False)``
  lists the newest first: what `baton monitor --follow` polls.
- **run's checks**: one ``Check`` per URL of the run (classification, previous and current
  state): the live table of `--follow`.
- **lease**: held by the monitor run whose pipeline run is going, from before it starts until its
  checks are settled, whichever firing settles them: ``owner`` (the run id), ``lease_until``
  (epoch seconds: past it the run is taken as abandoned), ``run`` (the ``MonitorRun`` as JSON),
  ``handle`` (what its engine follows it by), and the one firing following it now:
  ``follower`` and ``followed_until`` (epoch seconds: its invocation's end). A run is started
  only with a conditional put of the lease, so two runs never go over the watchlist at once; a
  firing follows (and settles) a run only with a conditional update of the follower, so a run's
  alerts are sent by one firing, once.
- **delivery**: one item per scheduled event id (conditional put, with ``expires_at``): a
  duplicated delivery of the same schedule event is recognised and does nothing.

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
from pipeline.models import Contract
from pipeline.monitor_models import Check, MonitorRun, UrlState

MONITOR_STATE_TABLE_SCHEMA = pk_sk_schema()
STATE = "STATE"
RUNS = "MONITOR#RUN"
LEASE = "MONITOR#LEASE"
LEASE_KEY = {"pk": {"S": LEASE}, "sk": {"S": "LEASE"}}
EVENTS = "MONITOR#EVENT"
BATCH_GET_MAX = 100
# Batches of states or checks written at once: a sweep's settle writes two items per URL (160
# requests for 2,000 URLs), each URL's under its own key, so the order of batches cannot matter.
WRITE_WORKERS = 4


class PendingRun(Contract):
    """The monitor run holding the lease: its pipeline run is going, or its checks are unsettled."""

    run: MonitorRun | None = None  # None: a lease taken by an older monitor (owner only)
    owner: str
    lease_until: float
    handle: str | None = None  # None until the pipeline run has been started
    follower: str | None = None
    followed_until: float = 0.0


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

    def save_states(self, states: Sequence[UrlState]) -> None:
        """Record URLs' states after their checks, 25 to a request, some requests at once."""
        batch_write(self.bulk_client, self.table_name, [{"PutRequest": {"Item": to_item(
            {**state.model_dump(mode="json"), "pk": url_key(state.url), "sk": STATE})}}
            for state in states], workers=WRITE_WORKERS)

    # ---- runs and their checks -------------------------------------------------------------

    def save_run(self, run: MonitorRun) -> None:
        """Write the run's record (at its start, then at its end: same key)."""
        self.client.put_item(TableName=self.table_name, Item=to_item({
            **run.model_dump(mode="json"), "pk": RUNS, "sk": run_sort_key(run),
            "expires_at": self._expiry(run.started_at)}))

    def save_checks(self, run: MonitorRun, checks: Sequence[Check]) -> None:
        """Write one item per URL checked in the run, some requests at once."""
        expires_at = self._expiry(run.started_at)
        requests = [{"PutRequest": {"Item": to_item({
            **check.model_dump(mode="json"), "pk": checks_key(run.run_id), "sk": url_key(check.url),
            "expires_at": expires_at})}} for check in checks]
        batch_write(self.bulk_client, self.table_name, requests, workers=WRITE_WORKERS)

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

    def acquire_lease(self, owner: str, *, now: float, seconds: float,
                      run: MonitorRun | None = None, followed_until: float = 0.0) -> str | None:
        """Take the lease for ``seconds``; returns None, or the run that holds it.

        With ``run``, the lease records it and that its own firing follows it until
        ``followed_until``."""
        item: dict[str, Any] = {"pk": LEASE, "sk": "LEASE", "owner": owner,
                                "lease_until": int(now + seconds)}
        if run is not None:
            item |= {"run": run.model_dump_json(), "follower": owner,
                     "followed_until": int(followed_until)}
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
            return None
        except ClientError as error:
            if aws.error_code(error) != "ConditionalCheckFailedException":
                raise
        held = self.pending_run()
        return held.owner if held else "another run"

    def pending_run(self) -> PendingRun | None:
        """The run holding the lease, if any."""
        held = self.client.get_item(TableName=self.table_name, Key=LEASE_KEY,
                                    ConsistentRead=True).get("Item")
        if not held:
            return None
        values = from_item(held)
        run = MonitorRun.model_validate_json(str(values["run"])) if "run" in values else None
        return PendingRun(run=run, owner=str(values["owner"]),
                          lease_until=float(values["lease_until"]),
                          handle=values.get("handle"), follower=values.get("follower"),
                          followed_until=float(values.get("followed_until", 0)))

    def set_handle(self, owner: str, handle: str) -> None:
        """Record how the lease holder's pipeline run is followed, once it has started."""
        self._update_lease(owner, "SET handle = :handle", {":handle": {"S": handle}})

    def take_follow(self, owner: str, follower: str, *, until: float, now: float) -> bool:
        """Become the one firing following ``owner``'s run until ``until``; False when another
        firing follows it now (or ``owner`` no longer holds the lease)."""
        return self._update_lease(
            owner, "SET follower = :follower, followed_until = :until",
            {":follower": {"S": follower}, ":until": {"N": str(int(until))},
             ":now": {"N": str(int(now))}},
            extra_condition="(attribute_not_exists(followed_until) OR followed_until < :now "
                            "OR follower = :follower)")

    def drop_follow(self, owner: str, follower: str) -> None:
        """Stop following ``owner``'s run: the next firing may take it over at once."""
        self._update_lease(owner, "SET followed_until = :zero",
                           {":zero": {"N": "0"}, ":follower": {"S": follower}},
                           extra_condition="follower = :follower")

    def first_delivery(self, event_id: str, *, now: float, seconds: float = 86_400) -> bool:
        """Record a schedule event's delivery; False when it was delivered before."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=to_item({"pk": EVENTS, "sk": event_id, "expires_at": int(now + seconds)}),
                ConditionExpression="attribute_not_exists(pk)")
            return True
        except ClientError as error:
            if aws.error_code(error) != "ConditionalCheckFailedException":
                raise
            return False

    def _update_lease(self, owner: str, update: str, values: dict[str, Any], *,
                      extra_condition: str | None = None) -> bool:
        condition = "#owner = :owner" + (f" AND {extra_condition}" if extra_condition else "")
        try:
            self.client.update_item(
                TableName=self.table_name, Key=LEASE_KEY, UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}, **values})
            return True
        except ClientError as error:
            if aws.error_code(error) != "ConditionalCheckFailedException":
                raise
            return False

    def release_lease(self, owner: str) -> None:
        """Give the lease back, if this run still holds it."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=LEASE_KEY,
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
