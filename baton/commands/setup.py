"""`baton setup`: create the local cloud's environments ahead of time."""

from __future__ import annotations

import argparse

from baton.commands.common import say
from baton.localcloud import LocalCloud

SUMMARY = "create the local cloud's environments ahead of time"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton setup` (no options)."""
    return subparsers.add_parser("setup", help=SUMMARY, description=SUMMARY)


def run(args: argparse.Namespace) -> int:
    """Create (or find) the local cloud's and the function runtime's environments."""
    ministack_python, lambda_python = LocalCloud(say=say).prepare()
    print(f"local cloud environment:   {ministack_python.parent.parent}")
    print(f"function runtime (Python): {lambda_python.parent.parent}")
    return 0
