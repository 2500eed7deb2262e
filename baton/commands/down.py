"""`baton down`: stop the embedded local cloud."""

from __future__ import annotations

import argparse

from baton.commands.common import say
from baton.localcloud import LocalCloud

SUMMARY = "stop the embedded local cloud"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton down` (no options)."""
    return subparsers.add_parser("down", help=SUMMARY, description=SUMMARY)


def run(args: argparse.Namespace) -> int:
    """Stop the local cloud if it runs."""
    cloud = LocalCloud(say=say)
    stopped = cloud.down()
    if stopped is None:
        print("The local cloud is not running; nothing to stop.")
    else:
        saved = " (state saved)" if stopped.persist else ""
        print(f"Stopped the local cloud at {stopped.endpoint} (pid {stopped.pid}){saved}.")
    return 0
