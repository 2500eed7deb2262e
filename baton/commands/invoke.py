"""`baton invoke`: invoke a deployed function with an event and show its answer."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

from baton import targets
from baton.commands.common import FUNCTIONS, add_target_options, function_name, say
from baton.errors import BatonError

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
    name = function_name(args.target, args.stack_name, args.function)
    lambdas = targets.client("lambda", args.target)
    if args.async_:
        response = lambdas.invoke(FunctionName=name, Payload=payload, InvocationType="Event")
        print(f"queued {args.function} ({name}), status {response['StatusCode']}")
        return 0
    response = lambdas.invoke(FunctionName=name, Payload=payload, LogType="Tail")
    body = response["Payload"].read().decode()
    try:
        print(json.dumps(json.loads(body), indent=2))
    except json.JSONDecodeError:
        print(body)
    if response.get("LogResult"):
        say("--- log tail ---\n" + base64.b64decode(response["LogResult"]).decode(errors="replace"))
    if response.get("FunctionError"):
        error_type = json.loads(body).get("errorType", "?") if body.startswith("{") else "?"
        say(f"{args.function} failed: FunctionError={response['FunctionError']} "
            f"errorType={error_type}")
        return 1
    return 0
