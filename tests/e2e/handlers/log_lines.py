"""Writes log lines through print, stdlib logging and raw stderr, the last one just before it ends."""

import logging
import sys


def handler(event, context):
    marker, request_id = event["marker"], context.aws_request_id
    logging.getLogger().setLevel(logging.INFO)
    for index in range(event.get("lines", 3)):
        print(f"{marker} print {index} of {request_id}")
        logging.getLogger("baton.probe").info("%s logging %d of %s", marker, index, request_id)
    # The last line has no newline: it still belongs to this invocation, and nothing follows it.
    sys.stderr.write(f"{marker} last line of {request_id}")
    if event.get("raise"):
        raise RuntimeError(f"{marker} raised in {request_id}")
    return {"request_id": request_id}


def silent(event, context):
    return {"ok": True}
