"""`baton status`: show whether the embedded local cloud runs, and where."""

from __future__ import annotations

import argparse

from baton.commands.common import say
from baton.localcloud import LocalCloud

SUMMARY = "show whether the embedded local cloud runs, and where"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton status` (no options)."""
    return subparsers.add_parser("status", help=SUMMARY, description=SUMMARY)


def run(args: argparse.Namespace) -> int:
    """Describe the running local cloud; exit 3 when none runs."""
    cloud = LocalCloud(say=say)
    instance = cloud.running()
    if instance is None:
        print("The local cloud is not running. Start it with: baton up")
        return 3  # the LSB code for "not running", so scripts can tell
    print(f"running   {instance.endpoint}\n"
          f"pid       {instance.pid}\n"
          f"version   MiniStack {instance.version}\n"
          f"persist   {'yes' if instance.persist else 'no'}\n"
          f"state     {cloud.state_dir}\n"
          f"log       {cloud.log_file}")
    return 0
