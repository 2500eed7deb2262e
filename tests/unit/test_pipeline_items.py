"""DynamoDB items read back as plain values: as boto3's deserializer reads them, without Decimals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer

from pipeline.dynamodb import from_item, to_item


def decimals_read_back(value: Any) -> Any:
    """What the items were read as before: boto3's deserializer, then Decimals as ints or floats."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: decimals_read_back(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [decimals_read_back(inner) for inner in value]
    return value


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
    expected = {name: decimals_read_back(TypeDeserializer().deserialize(value))
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
