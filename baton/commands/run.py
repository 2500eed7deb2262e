"""`baton run`: run the pipeline over URLs with one engine, follow it and summarise it."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from baton import run as runs
from baton import targets
from baton.commands.common import add_target_options, existing_file, http_url, int_between, say
from baton.errors import BatonError
from pipeline.models import MAX_CONCURRENCY
from pipeline.steps import ENGINES, ORCHESTRATOR

SUMMARY = "run the pipeline over URLs with an engine"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton run` and its options."""
    parser = add_target_options(subparsers.add_parser("run", help=SUMMARY, description=SUMMARY))
    parser.add_argument("--engine", choices=ENGINES, default=ORCHESTRATOR,
                        help="who coordinates (default %(default)s)")
    parser.add_argument("--url", type=http_url, action="append", default=[],
                        help="a URL (repeatable)")
    parser.add_argument("--watchlist", type=existing_file, help="a file of URLs, one per line")
    parser.add_argument("--max-concurrency", type=int_between(1, MAX_CONCURRENCY), default=8,
                        help=f"URLs in flight at once, 1 to {MAX_CONCURRENCY} "
                             "(default %(default)s)")
    parser.add_argument("--no-wait", action="store_true", help="start the run and return")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--allow-failures", action="store_true",
                        help="exit 0 even when some URLs failed")
    return parser


def run(args: argparse.Namespace) -> int:
    """Start the run; unless --no-wait, follow it and print its summary (1 if some URL failed)."""
    urls = list(args.url)
    if args.watchlist:
        urls += runs.read_watchlist(args.watchlist)
    try:
        request = runs.run_request(urls, args.max_concurrency)
    except ValidationError as error:  # the run's contract, e.g. more URLs than a run may have
        raise BatonError("cannot run this: " + "; ".join(
            f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}"
            for problem in error.errors(include_url=False))) from error
    targets.require_reachable(args.target)
    say(f"run {request.run_id}: {len(request.urls)} URL(s) with the {args.engine} engine")
    result = runs.run(args.engine, args.target, args.stack_name, request, wait=not args.no_wait,
                      show=None if args.json else runs.show_progress)
    if isinstance(result, str):
        print(f"started {request.run_id}: {result}")
        return 0
    if sys.stderr.isatty() and not args.json:
        sys.stderr.write("\n")
    print(result.model_dump_json(indent=2) if args.json else runs.summary_table(result))
    return 1 if result.failed and not args.allow_failures else 0
