"""Handlers that probe the payload limits the local cloud enforces as AWS does."""

import json


def measure(event, context):
    """How many bytes of JSON the function received."""
    return {"received": len(json.dumps(event, separators=(",", ":")))}


def sized_result(event, context):
    """A result of about ``event["size"]`` bytes of JSON."""
    return {"blob": "x" * int(event["size"])}
