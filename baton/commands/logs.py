"""`baton logs`: show (or follow) a deployed function's CloudWatch logs."""

from __future__ import annotations

import argparse
import time

from baton import targets
from baton.commands.common import add_target_options, duration, say
from baton.invoke import FUNCTIONS, function_name

SUMMARY = "show a deployed function's logs"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton logs` and its options."""
    parser = add_target_options(subparsers.add_parser("logs", help=SUMMARY, description=SUMMARY))
    parser.add_argument("function", choices=FUNCTIONS, metavar="FUNCTION",
                        help=f"one of: {', '.join(FUNCTIONS)}")
    parser.add_argument("--since", type=duration, default=duration("10m"),
                        help="how far back, e.g. 30s, 10m, 2h (default 10m)")
    parser.add_argument("--follow", action="store_true", help="keep printing new events")
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the function's log events since --since; with --follow, keep printing new ones."""
    targets.require_reachable(args.target)
    group = f"/aws/lambda/{function_name(args.target, args.stack_name, args.function)}"
    logs = targets.client("logs", args.target)
    start_ms = int((time.time() - args.since) * 1000)
    seen: set[object] = set()
    while True:
        try:
            events = logs.filter_log_events(logGroupName=group, startTime=start_ms)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        for event in events:
            # Some emulators give no eventId: the stream, time and text identify an event too.
            key = event.get("eventId") or (event.get("logStreamName"), event["timestamp"],
                                           event["message"])
            if key not in seen:
                seen.add(key)
                stamp = time.strftime("%H:%M:%S", time.localtime(event["timestamp"] / 1000))
                print(f"{stamp} {event['message'].rstrip()}", flush=True)
        if not args.follow:
            if not events:
                say(f"no log events in {group} since {args.since:.0f} s ago")
            return 0
        time.sleep(1)
