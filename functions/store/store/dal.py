"""The store's data access: the page table (DynamoDB) and the permanent texts (S3).

Page table schema (one table, no index; template.yaml creates it, TABLE_NAME names it):

    key       pk (S, HASH)           sk (S, RANGE)
    latest    URL#<url_id>           LATEST
    history   URL#<url_id>           CHECK#<checked_at>#<run_id>
    marker    URL#<url_id>           RUN#<run_id>

``url_id`` is ``pipeline.keys.url_id(url)`` (sha256 prefix: URLs can exceed key size limits).
``checked_at`` is ISO 8601 UTC with microseconds, so history entries sort oldest first and
``Query(pk, begins_with(sk, "CHECK#"), ScanIndexForward=False)`` lists the newest first.

- **latest**: the newest state of a URL (what the next check compares against) plus a
  ``version`` number for optimistic locking between concurrent runs.
- **history**: one entry per check, never updated.
- **marker**: one per (run_id, url); its conditional put makes a check idempotent: a redelivered
  event finds it and gets back the record stored the first time.

Every item carries the record's attributes (url, run_id, content_hash, text_key, change,
previous_hash, verdict, score, checked_at) and page details (final_url, title, language,
word_count, labels, backend). The three writes of a check are one transaction: all or none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from pipeline import aws
from pipeline.dynamodb import Table, from_item, to_item
from pipeline.keys import url_id
from pipeline.models import StoredRecord

LATEST = "LATEST"
RECORD_FIELDS = frozenset(StoredRecord.model_fields)

_must_be_new = {"ConditionExpression": "attribute_not_exists(pk)"}


class AlreadyStored(Exception):
    """This (run_id, url) was stored before: the event is a redelivery."""


class LatestMoved(Exception):
    """Another check updated the URL's latest state since it was read."""


@dataclass(frozen=True)
class Latest:
    """The newest stored check of a URL and the version that guards its next update."""

    record: StoredRecord
    version: int


def partition_key(url: str) -> str:
    """The partition key of every item about ``url``."""
    return f"URL#{url_id(url)}"


def check_sort_key(checked_at: datetime, run_id: str) -> str:
    """The sort key of a history entry: chronological, then by run."""
    return f"CHECK#{timestamp(checked_at)}#{run_id}"


def run_sort_key(run_id: str) -> str:
    """The sort key of a run's idempotency marker."""
    return f"RUN#{run_id}"


def timestamp(moment: datetime) -> str:
    """Fixed-width ISO 8601 UTC, so string order is time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class PageTable(Table):
    """Reads and writes a URL's latest state, history and run markers in one DynamoDB table."""

    def latest(self, url: str) -> Latest | None:
        """The URL's newest stored check, or None if it was never stored."""
        item = self._get(url, LATEST)
        if item is None:
            return None
        return Latest(record=to_record(item), version=int(item["version"]))

    def find_run(self, url: str, run_id: str) -> StoredRecord | None:
        """The record this run stored for the URL, if it did."""
        item = self._get(url, run_sort_key(run_id))
        return None if item is None else to_record(item)

    def check_before(self, url: str, checked_at: datetime) -> StoredRecord | None:
        """The URL's newest check made before ``checked_at`` (what a late check compares with)."""
        request = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :before",
            "ExpressionAttributeValues": {
                ":pk": {"S": partition_key(url)},
                ":first": {"S": "CHECK#"},
                ":before": {"S": f"CHECK#{timestamp(checked_at)}"},  # sorts before its run ids
            },
            "ScanIndexForward": False,
            "Limit": 1,
        }
        try:
            items = self.client.query(**request).get("Items", [])
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, f"reading the history of {url}") from error
        return to_record(from_item(items[0])) if items else None

    def history(self, url: str, *, limit: int | None = None) -> list[StoredRecord]:
        """The URL's checks, newest first."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": partition_key(url)},
                ":prefix": {"S": "CHECK#"},
            },
            "ScanIndexForward": False,
        }
        records: list[StoredRecord] = []
        while True:
            if limit is not None:
                request["Limit"] = limit - len(records)
            try:
                page = self.client.query(**request)
            except (ClientError, BotoCoreError) as error:
                raise aws.translate(error, f"reading the history of {url}") from error
            records.extend(to_record(from_item(item)) for item in page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start or (limit is not None and len(records) >= limit):
                return records
            request["ExclusiveStartKey"] = start

    def save(
        self,
        record: StoredRecord,
        *,
        expected_version: int | None,
        details: Mapping[str, Any] | None = None,
        update_latest: bool = True,
    ) -> None:
        """Write marker, history entry and latest state at once.

        Raises AlreadyStored if the run's marker exists, LatestMoved if the latest state is no
        longer at ``expected_version`` (None: must not exist yet). ``update_latest`` False
        writes the marker and the history entry only: a late check older than the latest.
        """
        url = str(record.url)
        attributes = {**(details or {}), **record.model_dump(mode="json", exclude_none=True)}
        pk = partition_key(url)
        version = 1 if expected_version is None else expected_version + 1
        latest_condition: dict[str, Any] = (
            _must_be_new
            if expected_version is None
            else {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        )

        def item(sort_key: str, **extra: Any) -> dict[str, Any]:
            return to_item({**attributes, **extra, "pk": pk, "sk": sort_key})

        table = self.table_name
        marker = item(run_sort_key(record.run_id))
        entry = item(check_sort_key(record.checked_at, record.run_id))
        latest = item(LATEST, version=version)
        writes = [
            # The marker's condition guards the whole transaction against redelivery.
            {"Put": {"TableName": table, "Item": marker, **_must_be_new}},
            {"Put": {"TableName": table, "Item": entry}},
        ]
        if update_latest:
            writes.append({"Put": {"TableName": table, "Item": latest, **latest_condition}})
        try:
            self.client.transact_write_items(TransactItems=writes)
        except ClientError as error:
            if aws.error_code(error) != "TransactionCanceledException":
                raise aws.translate(error, f"storing {url}") from error
            raise _cancellation(error, self, url, record.run_id) from error
        except BotoCoreError as error:
            raise aws.translate(error, f"storing {url}") from error

    def _get(self, url: str, sort_key: str) -> dict[str, Any] | None:
        try:
            answer = self.client.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": partition_key(url)}, "sk": {"S": sort_key}},
                ConsistentRead=True,  # the idempotency check must see a write made just before
            )
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, f"reading {url}") from error
        item = answer.get("Item")
        return None if item is None else from_item(item)


def to_record(item: Mapping[str, Any]) -> StoredRecord:
    """The StoredRecord held by a table item (page details are left out)."""
    fields = {name: value for name, value in item.items() if name in RECORD_FIELDS}
    if "score" in fields:
        fields["score"] = float(fields["score"])
    return StoredRecord.model_validate(fields)


def _cancellation(error: ClientError, table: PageTable, url: str, run_id: str) -> Exception:
    reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
    if reasons and reasons[0] == "ConditionalCheckFailed":
        return AlreadyStored(run_id)
    if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed":
        return LatestMoved(url)
    if "TransactionConflict" in reasons:
        return LatestMoved(url)  # a concurrent transaction on the same items: read and retry
    # Without reasons (some emulators omit them), the marker tells which case this is.
    if table.find_run(url, run_id) is not None:
        return AlreadyStored(run_id)
    return aws.translate(error, f"storing {url}")


class TextStore(Protocol):
    """Copies a text object to its permanent key."""

    def keep(self, source_key: str, permanent_key: str) -> None: ...


class S3TextStore:
    """TextStore within one S3 bucket (the transformer writes its texts there too)."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._client = client

    def keep(self, source_key: str, permanent_key: str) -> None:
        """Server-side copy; repeating it is harmless because the target is content-addressed."""
        try:
            (self._client or aws.client("s3")).copy_object(
                Bucket=self.bucket,
                Key=permanent_key,
                CopySource={"Bucket": self.bucket, "Key": source_key},
            )
        except (ClientError, BotoCoreError) as error:
            raise aws.translate(error, f"copying s3://{self.bucket}/{source_key}") from error
