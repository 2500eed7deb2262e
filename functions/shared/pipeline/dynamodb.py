"""DynamoDB items from plain values and back, and the base of the tables (on the shared client)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from pipeline import aws

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


# Refusals DynamoDB answers before applying anything, so a call may simply be made again; botocore
# retries the throttles a few times but never a conflict with a transaction in progress on the
# item.
REFUSED = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException",
                     "RequestLimitExceeded", "TransactionConflictException"})

BATCH_WRITE_MAX = 25  # DynamoDB's limit per BatchWriteItem


def batch_write(client: Any, table_name: str, requests: list[dict[str, Any]], *,
                workers: int = 1) -> None:
    """Put/Delete requests in batches, re-sending what DynamoDB leaves unprocessed (with backoff).

    ``workers`` > 1 sends that many batches at once (each re-sends its own unprocessed items), for
    many items whose keys are all distinct: batches then cannot overwrite each other in any order.
    A failed batch is raised as a sequential write would raise it (the first failing batch's
    error, once every batch has ended); the other batches are written all the same."""
    batches = [requests[start:start + BATCH_WRITE_MAX]
               for start in range(0, len(requests), BATCH_WRITE_MAX)]
    if workers <= 1 or len(batches) <= 1:
        for batch in batches:
            _write_batch(client, table_name, batch)
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(batches)),
                            thread_name_prefix="batch-write") as pool:
        futures = [pool.submit(_write_batch, client, table_name, batch) for batch in batches]
    for future in futures:
        future.result()  # the first failing batch's error, in batch order


def _write_batch(client: Any, table_name: str, batch: list[dict[str, Any]]) -> None:
    pending: dict[str, Any] = {table_name: batch}
    for attempt in range(8):
        pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        if not pending:
            return
        time.sleep(0.05 * 2 ** attempt)
    raise RuntimeError(f"DynamoDB kept throttling writes to {table_name}")


def pk_sk_schema() -> dict[str, Any]:
    """create_table arguments of a table keyed by pk (S, HASH) and sk (S, RANGE), on demand."""
    return {
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


def to_item(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (or expression values); None values are left out, at any depth."""
    return {name: _attribute(value) for name, value in attributes.items() if value is not None}


def _attribute(value: Any) -> dict[str, Any]:
    # The types every record is made of, converted directly, as boto3's serializer would (its
    # type tests per value were most of the CPU of writing a sweep's 2,000 states); the others
    # (floats, huge ints, sets, bytes, Decimals) take its way, with its checks.
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if type(value) is int and -_MAX_DIGITS < value < _MAX_DIGITS:
        return {"N": str(value)}
    if isinstance(value, Mapping):
        return {"M": {key: _attribute(inner) for key, inner in value.items() if inner is not None}}
    if isinstance(value, list):
        return {"L": [_attribute(inner) for inner in value]}
    return _serializer.serialize(_decimals(value))


_MAX_DIGITS = 10**38  # DynamoDB's numbers have 38 digits at most


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values of a DynamoDB item: ints and floats rather than Decimals."""
    return {name: _plain(value) for name, value in item.items()}


def _plain(value: Mapping[str, Any]) -> Any:
    # The types every record is made of, converted directly: boto3's deserializer goes through
    # Decimal and a method lookup per value, most of the CPU of reading a run's 2,000 outcomes.
    # Sets and binaries, which no record holds, take its way.
    if "S" in value:
        return value["S"]
    if "N" in value:
        return _number(value["N"])
    if "M" in value:
        return {name: _plain(inner) for name, inner in value["M"].items()}
    if "L" in value:
        return [_plain(inner) for inner in value["L"]]
    if "BOOL" in value:
        return value["BOOL"]
    if "NULL" in value:
        return None
    return _numbers(_deserializer.deserialize(value))


def _number(text: str) -> int | float:
    # As _numbers would read it from a Decimal: an int when integral ("3", "3.0", "3E2").
    digits = text[1:] if text[:1] == "-" else text
    if digits.isascii() and digits.isdigit():
        return int(text)
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def _decimals(value: Any) -> Any:
    # DynamoDB numbers must be Decimal; str() keeps the float's shortest exact repr.
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {key: _decimals(inner) for key, inner in value.items() if inner is not None}
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


class Table:
    """One DynamoDB table by name; its client is the shared lazy one unless a test passes its own."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws.client("dynamodb")

    @property
    def bulk_client(self) -> Any:
        """The client of large batch writes of ``to_item`` items (see ``aws.BULK_WRITE``)."""
        return self._client or aws.client("dynamodb", aws.BULK_WRITE)
