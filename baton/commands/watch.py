"""`baton watch add|remove|list|import`: manage the monitor's watchlist."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from baton import targets
from baton.commands.common import add_target_options, existing_file, fraction, http_url, non_empty
from baton.errors import BatonError

if TYPE_CHECKING:
    from pipeline.models import FetchOptions

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
    add.add_argument("--header", type=name_value_arg, action="append", default=[],
                     metavar="NAME=VALUE",
                     help="a request header for this URL (repeatable); VALUE is a literal, "
                          "ssm:/baton/NAME or secret:baton/NAME (secrets by reference only)")
    add.add_argument("--cookie", type=name_value_arg, action="append", default=[],
                     metavar="NAME=VALUE", help="a cookie for this URL (repeatable), as --header")
    add.add_argument("--ignore-robots", action="store_true",
                     help="fetch this URL even where the site's robots.txt disallows it")
    actions.add_parser("remove", help="stop watching URLs").add_argument(
        "urls", nargs="+", type=non_empty)
    actions.add_parser("list", help="show the watchlist")
    actions.add_parser("import", help="add every URL of a file (all or none)").add_argument(
        "file", type=existing_file)
    return parser


def name_value_arg(text: str) -> tuple[str, Any]:
    """An argparse type for NAME=VALUE (baton.watch.name_value)."""
    from baton.watch import name_value

    try:
        return name_value(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def check_entry(args: argparse.Namespace) -> FetchOptions | None:
    """Refuse an entry the watchlist would refuse (label length, threshold order, header names),
    before any network: the entry model holds the rules. Returns the entry's fetch options."""
    from baton.watch import fetch_options
    from pipeline.monitor_models import WatchEntry

    try:
        options = fetch_options(args.header, args.cookie, robots=not args.ignore_robots)
    except ValueError as error:
        raise BatonError(f"cannot watch {args.url!r}: {error}") from error
    try:
        WatchEntry(url=args.url, label=args.label, review_threshold=args.review,
                   block_threshold=args.block, added_at=datetime.now(UTC), options=options)
    except ValidationError as error:
        raise BatonError(f"cannot watch {args.url!r}: " + "; ".join(
            problem["msg"] for problem in error.errors())) from error
    return options


def run(args: argparse.Namespace) -> int:
    """Do the action on the deployed stack's watchlist."""
    from baton.watch import Watch, entries_table, read_watchlist_file, watchlist_table

    options = check_entry(args) if args.action == "add" else None
    lines = read_watchlist_file(args.file) if args.action == "import" else []
    targets.require_reachable(args.target)
    watch = Watch(watchlist_table(args.target, args.stack_name))
    if args.action == "add":
        entry, new = watch.add(args.url, args.label, args.review, args.block, options)
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
