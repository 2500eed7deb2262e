"""`baton history`: show one run's step-by-step history."""

from __future__ import annotations

import argparse
import json
from typing import Annotated

from pydantic import TypeAdapter, ValidationError

from baton import targets
from baton.commands.common import add_target_options

SUMMARY = "show one run's step-by-step history"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton history` and its options."""
    parser = add_target_options(subparsers.add_parser("history", help=SUMMARY, description=SUMMARY))
    parser.add_argument("run_id", metavar="RUN_ID", type=run_id)
    parser.add_argument("--json", action="store_true", help="print JSON (with the run's cost_usd)")
    parser.add_argument("--timeline", action="store_true",
                        help="draw the run as a timeline: one row per URL, one bar per step")
    return parser


def run_id(text: str) -> str:
    """An argparse type for a run id, checked by the rule of the run request's own field."""
    from pipeline.models import RunRequest

    rule = TypeAdapter(Annotated[str, RunRequest.model_fields["run_id"]])
    try:
        return str(rule.validate_python(text))
    except ValidationError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a run id (1 to 80 letters, digits, '-' or '_')") from None


def run(args: argparse.Namespace) -> int:
    """Print the run's engine and every step of every item, as a table or JSON."""
    from baton.executions import Executions, table
    from baton.ui.history import cost_usd, timeline

    targets.require_reachable(args.target)
    if args.timeline and not args.json:
        print(timeline(args.target, args.stack_name, args.run_id))
        return 0
    engine, rows = Executions(args.target, args.stack_name).history(args.run_id)
    if args.json:
        print(json.dumps({"run_id": args.run_id, "engine": engine,
                          "events": [vars(row) for row in rows],
                          "cost_usd": cost_usd(args.target, args.stack_name, args.run_id)},
                         indent=2))
    else:
        print(f"run {args.run_id} ({engine})\n{table(rows)}")
    return 0
