"""`baton monitor`: set, trigger or follow the scheduled monitor."""

from __future__ import annotations

import argparse
import time
from typing import get_args

from baton import targets
from baton.commands.common import add_target_options, say
from pipeline.monitor_models import MonitorEngine

SUMMARY = "set, trigger or follow the scheduled monitor"
MONITOR_ENGINES = get_args(MonitorEngine)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton monitor` and its options."""
    parser = add_target_options(subparsers.add_parser("monitor", help=SUMMARY, description=SUMMARY))
    parser.add_argument("--schedule", metavar="EXPR",
                        help="EventBridge schedule, e.g. 'rate(5 minutes)' or 'cron(0 8 * * ? *)'")
    parser.add_argument("--engine", choices=MONITOR_ENGINES, help="the engine the schedule drives")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--once", action="store_true", help="run the monitor now and report")
    when.add_argument("--follow", action="store_true", help="show each scheduled run as it ends")
    return parser


def run(args: argparse.Namespace) -> int:
    """Apply --schedule/--engine, then run the monitor once or follow its scheduled runs."""
    from baton import monitoring

    if args.schedule is not None:
        monitoring.validate_schedule(args.schedule)  # before anything is contacted or deployed
    targets.require_reachable(args.target)
    if args.schedule is not None or args.engine:
        changed = monitoring.set_schedule(args.target, args.stack_name, args.schedule, args.engine)
        print("Monitor settings " + ("updated." if changed else "unchanged."))
    table = monitoring.monitor_table(args.target, args.stack_name)
    if args.once:
        run = monitoring.run_once(args.target, args.stack_name, args.engine)
        print(monitoring.run_report(table, run))
        return 1 if run.status == "failed" else 0
    say("Following the monitor's runs (Ctrl-C to stop)…")
    seen = {run.run_id for run in table.recent_runs(20)}
    while True:
        for run in monitoring.new_runs(table, seen):
            print(monitoring.run_report(table, run), flush=True)
        time.sleep(2)
