"""Imports a package that is in neither this zip nor any layer: must fail to initialise."""

import pydantic  # noqa: F401


def handler(event, context):
    return {"imported": True}
