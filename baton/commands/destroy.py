"""`baton destroy`: delete the deployed stack."""

from __future__ import annotations

import argparse

from baton import deploy, targets
from baton.commands.common import add_target_options, say

SUMMARY = "delete the deployed stack"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton destroy` and its options."""
    return add_target_options(subparsers.add_parser("destroy", help=SUMMARY, description=SUMMARY))


def run(args: argparse.Namespace) -> int:
    """Delete the stack if it is deployed."""
    targets.require_reachable(args.target)
    if deploy.destroy(args.target, args.stack_name, say=say):
        print(f"Deleted stack {args.stack_name} on {args.target}.")
    else:
        print(f"Stack {args.stack_name} is not deployed on {args.target}; nothing to delete.")
    return 0
