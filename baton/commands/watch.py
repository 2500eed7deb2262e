"""`baton watch add|remove|list|import`: manage the monitor's watchlist."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from pydantic import ValidationError

from baton import targets
from baton.commands.common import add_target_options, existing_file, fraction, http_url, non_empty
from baton.errors import BatonError

SUMMARY = "manage the monitor's watchlist"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton watch` and its actions."""
    parser = add_target_options(subparsers.add_parser("watch", help=SUMMARY, description=SUMMARY))
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="watch a URL (or update its options)")
    add.add_argument("url", type=http_url)
    add.add_argument("--label", type=non_empty)
    add.add_argument("--review", type=fraction, help="this URL's review threshold (0 to 1)")
    add.add_argument("--block", type=fraction, help="this URL's block threshold (0 to 1)")
    actions.add_parser("remove", help="stop watching URLs").add_argument(
        "urls", nargs="+", type=non_empty)
    actions.add_parser("list", help="show the watchlist")
    actions.add_parser("import", help="add every URL of a file (all or none)").add_argument(
        "file", type=existing_file)
    return parser


def check_entry(args: argparse.Namespace) -> None:
    """Refuse an entry the watchlist would refuse (label length, threshold order), before any
    network: the entry model holds the rules."""
    from pipeline.monitor_models import WatchEntry

    try:
        WatchEntry(url=args.url, label=args.label, review_threshold=args.review,
                   block_threshold=args.block, added_at=datetime.now(UTC))
    except ValidationError as error:
        raise BatonError(f"cannot watch {args.url!r}: " + "; ".join(
            problem["msg"] for problem in error.errors())) from error


def run(args: argparse.Namespace) -> int:
    """Do the action on the deployed stack's watchlist."""
    from baton.watch import Watch, entries_table, read_watchlist_file, watchlist_table

    if args.action == "add":
        check_entry(args)
    lines = read_watchlist_file(args.file) if args.action == "import" else []
    targets.require_reachable(args.target)
    watch = Watch(watchlist_table(args.target, args.stack_name))
    if args.action == "add":
        entry, new = watch.add(args.url, args.label, args.review, args.block)
        print(f"{'Watching' if new else 'Updated'} {entry.url}")
    elif args.action == "remove":
        removed = watch.remove(args.urls)
        print(f"Stopped watching {len(removed)} URL(s).")
    elif args.action == "import":
        imported = watch.import_lines(lines)
        print(f"Imported {args.file}: {len(imported.added)} added, {len(imported.updated)} updated.")
    else:
        print(entries_table(watch.entries()))
    return 0
