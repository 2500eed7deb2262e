"""`baton alerts`: show the newest alerts of the monitor."""

from __future__ import annotations

import argparse
import json

from baton import targets
from baton.commands.common import add_target_options, int_between

SUMMARY = "show recent alerts"
MAX_LIMIT = 1000


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton alerts` and its options."""
    parser = add_target_options(subparsers.add_parser("alerts", help=SUMMARY, description=SUMMARY))
    parser.add_argument("--limit", type=int_between(1, MAX_LIMIT), default=20,
                        help=f"at most, 1 to {MAX_LIMIT} (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the newest alerts (without consuming them), as lines or JSON."""
    from baton import monitoring

    targets.require_reachable(args.target)
    alerts = monitoring.recent_alerts(args.target, args.stack_name, args.limit)
    if args.json:
        print(json.dumps([vars(alert) for alert in alerts], indent=2))
    elif not alerts:
        print("No alerts.")
    for alert in [] if args.json else alerts:
        print(f"{alert.at}  {alert.subject}")
    return 0
