"""`baton run`: run the pipeline over URLs with one engine, follow it and summarise it."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from pydantic import ValidationError

from baton import faults, targets
from baton import run as runs
from baton.commands.common import add_target_options, existing_file, http_url, int_between, say
from baton.errors import BatonError
from pipeline.models import MAX_CONCURRENCY
from pipeline.steps import ENGINES, ORCHESTRATOR

SUMMARY = "run the pipeline over URLs with an engine"
HELP = "help"  # `--faults help` lists the fault kinds


def fault_spec(text: str) -> tuple[faults.Rule, ...] | str:
    """An argparse type for --faults: a SPEC's rules, or "help"."""
    if text.strip() == HELP:
        return HELP
    try:
        return faults.parse(text)
    except faults.SpecError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton run` and its options."""
    parser = add_target_options(subparsers.add_parser("run", help=SUMMARY, description=SUMMARY))
    parser.add_argument("--engine", choices=ENGINES, default=ORCHESTRATOR,
                        help="who coordinates (default %(default)s)")
    parser.add_argument("--url", type=http_url, action="append", default=[],
                        help="a URL (repeatable)")
    parser.add_argument("--watchlist", type=existing_file,
                        help="a watchlist file: a URL per line, with the columns `baton watch "
                             "import` reads (fetch options are used, labels and thresholds are "
                             "the monitor's)")
    parser.add_argument("--max-concurrency", type=int_between(1, MAX_CONCURRENCY), default=8,
                        help=f"URLs in flight at once, 1 to {MAX_CONCURRENCY} "
                             "(default %(default)s)")
    parser.add_argument("--no-wait", action="store_true", help="start the run and return")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--allow-failures", action="store_true",
                        help="exit 0 even when some URLs failed")
    parser.add_argument("--faults", metavar="SPEC", type=fault_spec,
                        help="inject AWS-shaped faults into the run (local cloud only), e.g. "
                             "lambda.throttle=0.1,lambda.crash=@1; `--faults help` lists them; "
                             "the run ends with its invariant report (baton check)")
    parser.add_argument("--seed", type=int, default=0,
                        help="the seed the faults are drawn from (default %(default)s)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Start the run; unless --no-wait, follow it and print its summary (1 if some URL failed)."""
    if args.faults == HELP:
        print(faults.describe())
        return 0
    if args.faults:
        runs.refuse_faults_off_local(args.target)
        if args.no_wait:
            raise runs.usage_error("--faults follows the run to clear its faults: drop --no-wait")
    lines = runs.read_watchlist(args.watchlist) if args.watchlist else []
    try:
        request = runs.run_request(list(args.url), args.max_concurrency, lines)
    except ValidationError as error:  # the run's contract, e.g. more URLs than a run may have
        raise BatonError("cannot run this: " + "; ".join(
            f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}"
            for problem in error.errors(include_url=False))) from error
    targets.require_reachable(args.target)
    say(f"run {request.run_id}: {len(request.urls)} URL(s) with the {args.engine} engine"
        + (f", faults {','.join(map(str, args.faults))} (seed {args.seed})" if args.faults else ""))
    injecting: contextlib.AbstractContextManager[dict[str, int]] = contextlib.nullcontext({})
    if args.faults:
        injecting = runs.faults_on(args.target, args.stack_name, args.faults, args.seed,
                                   request.run_id)
    with injecting:
        result = runs.run(args.engine, args.target, args.stack_name, request,
                          wait=not args.no_wait, show=None if args.json else runs.show_progress)
    if isinstance(result, str):
        print(f"started {request.run_id}: {result}")
        return 0
    if sys.stderr.isatty() and not args.json:
        sys.stderr.write("\n")
    if not args.faults:
        print(result.model_dump_json(indent=2) if args.json else runs.summary_table(result))
        return 1 if result.failed and not args.allow_failures else 0
    from baton.check import check

    report = check(args.target, args.stack_name, request.run_id)
    if args.json:
        print(json.dumps({"summary": result.model_dump(mode="json"), "check": report.as_json()},
                         indent=2))
    else:
        print(runs.summary_table(result))
        print(report.text())
    for problem in report.broken():
        say(f"baton run: broken: {problem}")
    return 1 if report.broken() or (result.failed and not args.allow_failures) else 0

