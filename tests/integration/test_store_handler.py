"""The store handler with S3 and DynamoDB in moto, the table built from template.yaml's schema."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from pipeline.errors import PermanentError
from pipeline.keys import page_text_key
from pipeline.models import Change, StoredRecord
from store import handler
from store.dal import PageTable, partition_key
from store.settings import StoreSettings

Store = Callable[..., dict[str, Any]]

# Failing invocations publish no metric; Powertools warns about that, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture
def url() -> str:
    """A URL no other test uses."""
    return f"http://example.com/{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ready(bucket: str, records_table: str) -> None:
    """S3 bucket and records table exist and the store's settings point at them."""


@pytest.fixture
def store(
    ready: None, bucket: str, url: str, load_event: Callable[[str], dict[str, Any]],
    lambda_context: Any,
) -> Store:
    """Store a moderated page of ``url``: its text is put in S3 first, as the transformer would."""

    def call(run_id: str, text: str, *, minutes: int = 0, **changes: Any) -> dict[str, Any]:
        return handler.lambda_handler(event(run_id, text, minutes, **changes), lambda_context)

    def event(run_id: str, text: str, minutes: int, **changes: Any) -> dict[str, Any]:
        sample = load_event("store.json")
        text_key = f"text/{run_id}/page.txt"
        boto3.client("s3").put_object(Bucket=bucket, Key=text_key, Body=text.encode())
        sample["page"].update(
            run_id=run_id, url=url, final_url=url, text_key=text_key,
            content_hash=f"hash-of-{text}", fetched_at=f"2026-11-22T10:{minutes:02d}:00Z",
        )
        sample.update(changes)
        return sample

    call.event = event  # type: ignore[attr-defined]
    return call


def history(table: str, url: str) -> list[StoredRecord]:
    return PageTable(table).history(url)


def all_items(table: str) -> list[dict[str, Any]]:
    return list(boto3.client("dynamodb").scan(TableName=table)["Items"])


def s3_keys(bucket: str, prefix: str = "") -> list[str]:
    answer = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in answer.get("Contents", [])]


# -- recording checks --------------------------------------------------------------------------


def test_the_first_check_of_a_url_is_new(store: Store) -> None:
    record = StoredRecord.model_validate(store("run-1", "hello"))

    assert (record.change, record.previous_hash) == (Change.NEW, None)


def test_the_text_is_copied_to_its_permanent_key(store: Store, bucket: str, url: str) -> None:
    record = store("run-1", "hello")

    body = boto3.client("s3").get_object(Bucket=bucket, Key=record["text_key"])["Body"].read()
    assert (record["text_key"], body) == (page_text_key(url, "hash-of-hello"), b"hello")


def test_the_same_text_in_a_later_run_is_unchanged(store: Store) -> None:
    store("run-1", "hello")

    record = store("run-2", "hello", minutes=5)

    assert (record["change"], record["previous_hash"]) == ("unchanged", "hash-of-hello")


def test_new_text_in_a_later_run_is_changed(store: Store) -> None:
    store("run-1", "hello")

    record = store("run-2", "goodbye", minutes=5)

    assert (record["change"], record["previous_hash"]) == ("changed", "hash-of-hello")


def test_each_check_adds_one_history_entry_newest_first(
    store: Store, records_table: str, url: str
) -> None:
    for minute, run_id in enumerate(["run-1", "run-2", "run-3"]):
        store(run_id, f"text {minute}", minutes=minute)

    assert [record.run_id for record in history(records_table, url)] == ["run-3", "run-2", "run-1"]


def test_the_latest_state_is_the_newest_check(store: Store, records_table: str, url: str) -> None:
    store("run-1", "hello")
    store("run-2", "goodbye", minutes=5)

    latest = PageTable(records_table).latest(url)

    assert latest is not None
    assert (latest.record.run_id, latest.record.content_hash, latest.version) == (
        "run-2", "hash-of-goodbye", 2)


def test_page_details_are_kept_with_the_record(
    store: Store, records_table: str, url: str
) -> None:
    store("run-1", "hello")

    item = boto3.client("dynamodb").get_item(
        TableName=records_table, Key={"pk": {"S": partition_key(url)}, "sk": {"S": "LATEST"}}
    )["Item"]

    assert (item["title"]["S"], item["backend"]["S"], item["labels"]["M"]["OFFENSIVE"]["N"]) == (
        "Notes from a small city garden", "profanity-svm", "0.01608222204543556")


# -- idempotency -------------------------------------------------------------------------------


def test_the_same_item_stored_twice_leaves_exactly_one_history_entry(
    store: Store, records_table: str, url: str
) -> None:
    store("run-1", "hello")
    store("run-1", "hello")

    assert [record.run_id for record in history(records_table, url)] == ["run-1"]


def test_a_redelivery_returns_the_originally_stored_record(store: Store) -> None:
    store("run-1", "hello")
    first = store("run-2", "goodbye", minutes=5)

    again = store("run-2", "goodbye", minutes=5)

    assert again == first
    assert again["change"] == "changed"


def test_a_redelivery_with_a_later_fetch_time_is_still_one_check(
    store: Store, records_table: str, url: str
) -> None:
    first = store("run-1", "hello")

    again = store("run-1", "hello", minutes=9)  # e.g. the scraper step ran twice in one run

    assert again == first
    assert len(history(records_table, url)) == 1


def test_a_redelivery_does_not_advance_the_latest_version(
    store: Store, records_table: str, url: str
) -> None:
    store("run-1", "hello")
    store("run-1", "hello")

    latest = PageTable(records_table).latest(url)

    assert latest is not None and latest.version == 1


# -- failures ----------------------------------------------------------------------------------


def test_a_malformed_event_fails_naming_the_field_and_writes_nothing(
    store: Store, bucket: str, records_table: str, lambda_context: Any
) -> None:
    event = store.event("run-1", "hello", 0)  # type: ignore[attr-defined]
    del event["page"]["content_hash"]

    with pytest.raises(ValidationError, match=r"page\.content_hash"):
        handler.lambda_handler(event, lambda_context)
    assert all_items(records_table) == []
    assert s3_keys(bucket, "pages/") == []


def test_a_score_out_of_range_fails_naming_the_field(store: Store, lambda_context: Any) -> None:
    event = store.event("run-1", "hello", 0, score=7)  # type: ignore[attr-defined]

    with pytest.raises(ValidationError, match="score"):
        handler.lambda_handler(event, lambda_context)


def test_a_missing_text_object_is_permanent_and_records_nothing(
    store: Store, bucket: str, records_table: str, lambda_context: Any
) -> None:
    event = store.event("run-1", "hello", 0)  # type: ignore[attr-defined]
    boto3.client("s3").delete_object(Bucket=bucket, Key=event["page"]["text_key"])

    with pytest.raises(PermanentError, match="does not exist"):
        handler.lambda_handler(event, lambda_context)
    assert all_items(records_table) == []


def test_a_missing_table_name_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BUCKET_NAME", "some-bucket")
    monkeypatch.delenv("TABLE_NAME", raising=False)

    with pytest.raises(ValidationError, match="TABLE_NAME"):
        StoreSettings()  # type: ignore[call-arg]


# -- the sample event --------------------------------------------------------------------------


def test_the_sample_event_is_stored_as_new(
    ready: None, bucket: str, load_event: Callable[[str], dict[str, Any]], lambda_context: Any
) -> None:
    event = load_event("store.json")
    boto3.client("s3").put_object(Bucket=bucket, Key=event["page"]["text_key"], Body=b"text")

    record = StoredRecord.model_validate(handler.lambda_handler(event, lambda_context))

    assert (record.run_id, record.change) == (event["page"]["run_id"], Change.NEW)
