"""The watchlist: the URLs the monitor checks, in DynamoDB, so the deployed monitor can read it.

Schema (template.yaml's WatchlistTable, named by WATCHLIST_TABLE_NAME; ``WATCHLIST_TABLE_SCHEMA``
below is the same key schema as create_table arguments):

    key     pk (S, HASH)
    entry   URL#<url_id>

``url_id`` is ``pipeline.keys.url_id(url)``: URLs can exceed DynamoDB's key size. Attributes:
url, label, review_threshold, block_threshold, options (a map: headers, cookies, robots; each
only when set), added_at (ISO 8601 UTC). Header and cookie values are literals or references
({"ssm": name} / {"secret": name}), never a secret in clear.
The CLI (`baton watch`) writes it; the monitor reads it with one Scan per run.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from pipeline.dynamodb import Table, batch_write, from_item, to_item
from pipeline.keys import url_id
from pipeline.monitor_models import WatchEntry

WATCHLIST_TABLE_SCHEMA: dict[str, Any] = {
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "BillingMode": "PAY_PER_REQUEST",
}
BATCH_GET_MAX = 100  # and per BatchGetItem


class UnknownUrls(LookupError):
    """Some URLs to remove are not in the watchlist: nothing was removed."""

    def __init__(self, urls: Sequence[str]) -> None:
        super().__init__(", ".join(urls))
        self.urls = list(urls)


def entry_key(url: str) -> dict[str, Any]:
    """The DynamoDB key of ``url``'s entry."""
    return {"pk": {"S": f"URL#{url_id(url)}"}}


class WatchlistTable(Table):
    """Reads and writes watchlist entries."""

    def entries(self) -> list[WatchEntry]:
        """Every entry, oldest first (then by URL): a Scan, as the table holds nothing else."""
        request: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        entries: list[WatchEntry] = []
        while True:
            page = self.client.scan(**request)
            entries += [_entry(item) for item in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(entries, key=lambda entry: (entry.added_at, entry.url))

    def get_many(self, urls: Iterable[str]) -> dict[str, WatchEntry]:
        """The entries of those ``urls`` that are watched, by URL."""
        found: dict[str, WatchEntry] = {}
        keys = [entry_key(url) for url in dict.fromkeys(urls)]
        for start in range(0, len(keys), BATCH_GET_MAX):
            pending: dict[str, Any] = {self.table_name: {
                "Keys": keys[start:start + BATCH_GET_MAX], "ConsistentRead": True}}
            for attempt in range(8):
                answer = self.client.batch_get_item(RequestItems=pending)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    entry = _entry(item)
                    found[entry.url] = entry
                pending = answer.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2 ** attempt)  # throttled: back off, then the rest
            if pending:
                raise RuntimeError(f"DynamoDB kept throttling reads of {self.table_name}")
        return found

    def put_many(self, entries: Sequence[WatchEntry]) -> None:
        """Write the entries (an existing URL's entry is replaced)."""
        requests = [{"PutRequest": {"Item": to_item(
            {**entry.model_dump(mode="json"), **entry_key_plain(entry.url)})}} for entry in entries]
        self._batch_write(requests)

    def remove(self, urls: Sequence[str]) -> list[str]:
        """Remove the URLs' entries; all or nothing: raises UnknownUrls naming the unwatched."""
        watched = self.get_many(urls)
        unknown = [url for url in dict.fromkeys(urls) if url not in watched]
        if unknown:
            raise UnknownUrls(unknown)
        self._batch_write([{"DeleteRequest": {"Key": entry_key(url)}} for url in watched])
        return list(watched)

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        batch_write(self.client, self.table_name, requests)


def entry_key_plain(url: str) -> dict[str, str]:
    """The key attributes of ``url``'s entry as plain values."""
    return {"pk": f"URL#{url_id(url)}"}


def _entry(item: dict[str, Any]) -> WatchEntry:
    values = from_item(item)
    values.pop("pk", None)
    return WatchEntry.model_validate(values)
