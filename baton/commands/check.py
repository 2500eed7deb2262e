"""`baton check`: the invariant report of one run, of any engine."""

from __future__ import annotations

import argparse
import json

from baton import targets
from baton.commands.common import add_target_options, say
from baton.commands.history import run_id

SUMMARY = "check that a run lost nothing and did nothing twice"
DESCRIPTION = f"""{SUMMARY}.

Reads the runs table, the records table and the alerts queue (without consuming it) and prints,
for the run's engine: submitted (items the run was given), terminal (items with exactly one
terminal outcome), stored (items that succeeded with a stored record), records (the run's
markers in the records table), lost (items with no outcome once the run has ended; while it
runs: "running" and how many are pending, and null in JSON), duplicate_records ((run, URL)
pairs with more than one history entry of the run), duplicate_history (history entries beyond
one per (run, URL)), duplicate_alerts ((run, URL) pairs with more than one alert in the alerts
queue) and faults_injected (the faults `baton run --faults` injected into the run; in JSON,
"faults" has them by kind).

Exit 0 when the invariants hold (lost 0, no duplicates, records equal to stored; for a run
still running, those that can be judged so far), 1 naming each one that is broken, or when
there is no such run."""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton check` and its options."""
    parser = add_target_options(subparsers.add_parser(
        "check", help=SUMMARY, description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("run_id", metavar="RUN_ID", type=run_id)
    parser.add_argument("--json", action="store_true",
                        help="print JSON: run_id, engine, status and the counts by name")
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the run's invariant report; exit 1 naming each broken invariant."""
    from baton.check import check

    targets.require_reachable(args.target)
    report = check(args.target, args.stack_name, args.run_id)
    print(json.dumps(report.as_json(), indent=2) if args.json else report.text())
    broken = report.broken()
    for problem in broken:
        say(f"baton check: broken: {problem}")
    if not broken and not args.json:
        print("invariants hold" + ("" if report.ended else " so far (the run is still running)"))
    return 1 if broken else 0
