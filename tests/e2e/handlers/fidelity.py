"""Handlers that probe how faithfully the local cloud behaves like AWS Lambda."""

import logging
import time


class TransientError(Exception):
    """Named like the pipeline's retryable error: the name is what AWS reports and matches."""


def raise_transient(event, context):
    raise TransientError(f"upstream hiccup for {event.get('item', '?')}")


def sleep_past_timeout(event, context):
    time.sleep(float(event.get("seconds", 5)))
    return {"slept": True}


def log_with_stdlib(event, context):
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("baton.probe").info("stdlib says %s", event["marker"])
    return {"logged": event["marker"]}


def log_one_line(event, context):
    print("invoked")
    return {"ok": True}


def count_concurrent(event, context):
    """How many other invocations were in flight when this one started (shared local disk)."""
    import os
    import uuid

    folder = event["folder"]
    others = len(os.listdir(folder))
    marker = os.path.join(folder, uuid.uuid4().hex)
    open(marker, "w").close()
    time.sleep(0.3)  # long enough for any concurrent sibling to start meanwhile
    os.remove(marker)
    return {"others": others}


def leave_a_mark(event, context):
    """Write a file named after the event in a shared folder, taking a while to do it."""
    import os

    time.sleep(0.5)
    open(os.path.join(event["folder"], event["name"]), "w").close()
    return {"marked": event["name"]}


def tracing_environment(event, context):
    """What the X-Ray SDK would read from the environment when imported."""
    import os

    return {name: os.environ.get(name)
            for name in ("AWS_XRAY_SDK_ENABLED", "AWS_XRAY_DAEMON_ADDRESS", "_X_AMZN_TRACE_ID")}
