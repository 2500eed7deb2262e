"""`baton executions`: list recent runs of every engine."""

from __future__ import annotations

import argparse
import json

from baton import targets
from baton.commands.common import add_target_options, int_between
from pipeline.steps import ENGINES

SUMMARY = "list recent runs of every engine"
MAX_LIMIT = 1000  # Step Functions' ListExecutions pages at most this many


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton executions` and its options."""
    parser = add_target_options(
        subparsers.add_parser("executions", help=SUMMARY, description=SUMMARY))
    parser.add_argument("--engine", choices=ENGINES)
    parser.add_argument("--limit", type=int_between(1, MAX_LIMIT), default=20,
                        help=f"at most, 1 to {MAX_LIMIT} (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the newest runs, as a table or JSON."""
    from baton.executions import Executions, table

    targets.require_reachable(args.target)
    found = Executions(args.target, args.stack_name).recent(args.engine, args.limit)
    if args.json:
        print(json.dumps([vars(execution) for execution in found], indent=2))
    else:
        print(table(found))
    return 0
