"""Batched DynamoDB writes sent some at once: every item written once, unprocessed items re-sent
by their own batch while the others run, and a failure raised as a sequential write raises it."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.dynamodb import BATCH_WRITE_MAX, batch_write

TABLE = "states"


def put(index: int) -> dict[str, Any]:
    return {"PutRequest": {"Item": {"pk": {"S": f"URL#{index}"}, "sk": {"S": "STATE"}}}}


def key(request: dict[str, Any]) -> str:
    return str(request["PutRequest"]["Item"]["pk"]["S"])


class FakeDynamoDB:
    """A batch_write_item that records what it wrote. ``together`` first calls must be in flight
    at the same moment (a barrier: sequential calls break it); ``unprocessed`` names items left
    unprocessed ``times`` times before they are accepted; a batch with a ``failing`` item raises
    that item's error (or the item stays unprocessed for ever when its error is None)."""

    def __init__(self, *, together: int = 1, unprocessed: frozenset[str] = frozenset(),
                 times: int = 1, failing: dict[str, Exception | None] | None = None) -> None:
        self.barrier = threading.Barrier(together, timeout=10) if together > 1 else None
        self.together = together
        self.unprocessed = Counter({name: times for name in unprocessed})
        self.failing = failing or {}
        self.written: Counter[str] = Counter()
        self.calls = 0
        self.lock = threading.Lock()

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        (table, requests), = RequestItems.items()
        assert table == TABLE and 0 < len(requests) <= BATCH_WRITE_MAX
        with self.lock:
            self.calls += 1
            first_round = self.calls <= self.together
        if self.barrier is not None and first_round:
            self.barrier.wait()  # raises BrokenBarrierError unless the first calls overlap
        for request in requests:
            error = self.failing.get(key(request))
            if error is not None:
                raise error
        left = []
        with self.lock:
            for request in requests:
                name = key(request)
                if name in self.failing or self.unprocessed[name] > 0:
                    self.unprocessed[name] -= 1
                    left.append(request)
                else:
                    self.written[name] += 1
        return {"UnprocessedItems": {table: left}} if left else {"UnprocessedItems": {}}


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _: None)


def test_batches_are_sent_together_and_every_item_is_written_once() -> None:
    requests = [put(index) for index in range(4 * BATCH_WRITE_MAX + 3)]  # 5 batches
    dynamodb = FakeDynamoDB(together=4)

    batch_write(dynamodb, TABLE, requests, workers=4)

    assert dynamodb.written == Counter(key(request) for request in requests)


def test_a_batch_resends_its_unprocessed_items_while_the_others_run() -> None:
    requests = [put(index) for index in range(3 * BATCH_WRITE_MAX)]
    # One item of the second batch and two of the third are left unprocessed, twice.
    lagging = frozenset({"URL#30", "URL#60", "URL#74"})
    dynamodb = FakeDynamoDB(together=3, unprocessed=lagging, times=2)

    batch_write(dynamodb, TABLE, requests, workers=3)

    assert dynamodb.written == Counter(key(request) for request in requests)
    assert dynamodb.calls == 3 + 2 + 2  # the lagging batches re-sent only what was left


def test_an_item_never_processed_fails_the_write_as_a_sequential_write_does() -> None:
    requests = [put(index) for index in range(3 * BATCH_WRITE_MAX)]
    dynamodb = FakeDynamoDB(failing={"URL#40": None})

    with pytest.raises(RuntimeError, match=f"DynamoDB kept throttling writes to {TABLE}"):
        batch_write(dynamodb, TABLE, requests, workers=3)

    # The other batches were written all the same; the failing one, but for its stuck item.
    assert dynamodb.written == Counter(key(request) for request in requests
                                       if key(request) != "URL#40")


def test_the_first_failing_batch_is_the_error_raised() -> None:
    requests = [put(index) for index in range(4 * BATCH_WRITE_MAX)]
    second, fourth = (ClientError({"Error": {"Code": "ValidationException", "Message": text},
                                   "ResponseMetadata": {"HTTPStatusCode": 400}}, "BatchWriteItem")
                      for text in ("second batch", "fourth batch"))
    # Items of the second and fourth batches fail: the second's error is the one raised, whichever
    # batch failed first.
    dynamodb = FakeDynamoDB(together=4, failing={"URL#30": second, "URL#90": fourth})

    with pytest.raises(ClientError) as raised:
        batch_write(dynamodb, TABLE, requests, workers=4)

    assert raised.value is second
    assert dynamodb.written == Counter(key(request) for request in requests[:25] + requests[50:75])


def test_one_worker_writes_one_batch_after_another() -> None:
    requests = [put(index) for index in range(2 * BATCH_WRITE_MAX)]
    dynamodb = FakeDynamoDB(failing={"URL#3": RuntimeError("refused")})

    with pytest.raises(RuntimeError, match="refused"):
        batch_write(dynamodb, TABLE, requests)

    assert dynamodb.written == Counter()  # stopped at the first batch: the second never sent
