"""`baton redrive`: run again the items of a run that failed or never finished."""

from __future__ import annotations

import argparse
import json
import sys

from baton import deploy, localcloud, targets
from baton import run as runs
from baton.commands.common import add_target_options, say
from baton.commands.history import run_id
from baton.errors import BatonError
from engines.client import Deployment, EngineFailed, redrive

SUMMARY = "run again, under the same run id, the items of a run that failed or never finished"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton redrive` and its options."""
    parser = add_target_options(subparsers.add_parser("redrive", help=SUMMARY, description=SUMMARY))
    parser.add_argument("run_id", metavar="RUN_ID", type=run_id)
    parser.add_argument("--force", action="store_true",
                        help="redrive a run still marked running that you know has stopped")
    parser.add_argument("--no-wait", action="store_true", help="start the redrive and return")
    parser.add_argument("--json", action="store_true", help="print the run's summary as JSON")
    parser.add_argument("--allow-failures", action="store_true",
                        help="exit 0 even when some URLs failed again")
    return parser


def run(args: argparse.Namespace) -> int:
    """Redrive the run with its own engine, follow it and print its summary (1 if items failed)."""
    targets.require_reachable(args.target)
    deployment = Deployment.from_outputs(deploy.stack_outputs(args.target, args.stack_name))
    try:
        started = redrive(args.run_id, deployment,
                          lambda service: targets.client(service, args.target), force=args.force,
                          cloud_started_at=localcloud.serving_since(targets.local_port())
                          if args.target == "local" else None)
    except (EngineFailed, ValueError) as error:
        raise BatonError(str(error)) from error
    if started is None:
        message = f"run {args.run_id}: nothing to redrive (every item is stored or failed for good)"
        print(json.dumps({"run_id": args.run_id, "redriven": []}) if args.json else message)
        return 0
    say(f"run {args.run_id}: redrive {started.number} of {len(started.urls)} item(s) with the "
        f"{started.client.engine} engine")
    if args.no_wait:
        print(f"redriving {args.run_id}: {started.handle}")
        return 0
    summary = runs.wait_for(started.client, started.handle, started.request,
                            show=None if args.json else runs.show_progress)
    if sys.stderr.isatty() and not args.json:
        sys.stderr.write("\n")
    print(summary.model_dump_json(indent=2) if args.json else runs.summary_table(summary))
    return 1 if summary.failed and not args.allow_failures else 0
