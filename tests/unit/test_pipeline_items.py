"""DynamoDB items from plain values and back: as boto3 writes and reads them, without Decimals."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from pipeline.dynamodb import _decimals, _numbers, from_item, to_item

# The way items were written and read before the direct conversions (boto3's serializer after
# _decimals, its deserializer before _numbers): what those must still give.

ITEM = {
    "pk": {"S": "RUN#1"},
    "count": {"N": "42"}, "negative": {"N": "-7"}, "integral": {"N": "3.0"},
    "exponent": {"N": "3E2"}, "fraction": {"N": "0.125"}, "small": {"N": "-1.5e-3"},
    "flag": {"BOOL": False}, "nothing": {"NULL": True},
    "outcome": {"M": {"etag": {"S": '"v1"'}, "steps": {"L": [{"N": "1"}, {"S": "x"},
                                                                {"M": {"ms": {"N": "2.5"}}}]}}},
    "names": {"SS": ["a", "b"]}, "sizes": {"NS": ["1", "2.5"]},
    "raw": {"B": b"hi"}, "deep": {"L": [{"M": {"b": {"B": b"hi"}}}]},
}


def test_every_type_is_read_as_before() -> None:
    expected = {name: _numbers(TypeDeserializer().deserialize(value))
                for name, value in ITEM.items()}

    read = from_item(ITEM)

    assert read == expected
    assert {name: type(value) for name, value in read.items()} == {
        name: type(value) for name, value in expected.items()}
    assert read["integral"] == 3 and isinstance(read["integral"], int)
    assert read["exponent"] == 300 and isinstance(read["exponent"], int)
    assert read["small"] == -0.0015 and isinstance(read["small"], float)
    assert read["raw"] == Binary(b"hi")


def test_plain_values_make_the_round_trip() -> None:
    values = {"url": "http://a/", "attempts": 3, "score": 0.25, "ok": True,
              "record": {"labels": ["x", "y"], "size": 1024, "ratio": 1.5}}

    assert from_item(to_item(values)) == values


def test_every_type_is_written_as_boto3_writes_it() -> None:
    values = {"url": "http://a/", "attempts": 3, "negative": -2, "score": 0.25, "tiny": 1e-9,
              "ok": True, "no": False, "gone": None, "big": 10**38 - 1,
              "record": {"labels": ["x", None, 2.5, {"deep": 1, "none": None}], "size": 1024,
                         "empty": {}, "missing": None},
              "names": {"a", "b"}, "raw": b"hi", "exact": Decimal("0.1")}
    serializer = TypeSerializer()

    written = to_item(values)

    assert written == {name: serializer.serialize(_decimals(value))
                       for name, value in values.items() if value is not None}
    assert written["record"]["M"]["labels"]["L"][1] == {"NULL": True}  # None kept in a list


def test_what_dynamodb_cannot_store_is_refused_as_before() -> None:
    for value in (float("nan"), float("inf"), 10**40, {"inner": [float("nan")]}):
        with pytest.raises((TypeError, decimal.Inexact, decimal.Rounded)):
            to_item({"value": value})

