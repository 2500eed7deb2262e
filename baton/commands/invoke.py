"""`baton invoke`: invoke a deployed function with an event and show its answer."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from baton import targets
from baton.commands.common import add_target_options, say
from baton.errors import BatonError
from baton.invoke import FUNCTIONS, invoke

SUMMARY = "invoke a deployed function"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton invoke` and its options."""
    parser = add_target_options(subparsers.add_parser("invoke", help=SUMMARY, description=SUMMARY))
    parser.add_argument("function", choices=FUNCTIONS, metavar="FUNCTION",
                        help=f"one of: {', '.join(FUNCTIONS)}")
    parser.add_argument("--event", metavar="FILE", help="event JSON file, or - for stdin")
    parser.add_argument("--async", dest="async_", action="store_true",
                        help="invoke asynchronously (InvocationType Event)")
    return parser


def read_event(source: str | None) -> bytes:
    """The event to send: a JSON file, '-' for stdin, or an empty object; checked to be JSON."""
    if source is None:
        return b"{}"
    name = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise BatonError(f"cannot read the event file: {error}") from error
    except UnicodeDecodeError as error:
        raise BatonError(f"the event in {name} is not UTF-8 text: {error}") from error
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise BatonError(f"invalid event JSON in {name}: {error.msg} at line {error.lineno} "
                         f"column {error.colno} (char {error.pos})") from error
    return text.encode()


def run(args: argparse.Namespace) -> int:
    """Invoke the function (synchronously: print its answer and log tail; 1 if it failed)."""
    payload = read_event(args.event)
    targets.require_reachable(args.target)
    answer = invoke(args.target, args.stack_name, args.function, payload, args.async_)
    if args.async_:
        print(f"queued {args.function} ({answer.name}), status {answer.status}")
        return 0
    print(answer.pretty_body())
    if answer.log_tail:
        say("--- log tail ---\n" + answer.log_tail)
    if answer.error:
        say(f"{args.function} ({answer.name}) failed: {answer.error}")
        return 1
    return 0
