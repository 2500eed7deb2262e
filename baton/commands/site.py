"""`baton site`: serve the sample site on 127.0.0.1 for demos and tests."""

from __future__ import annotations

import argparse

from baton.commands.common import int_between
from baton.errors import BatonError

SUMMARY = "serve the sample site on 127.0.0.1 for demos and tests"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton site` and its options."""
    parser = subparsers.add_parser("site", help=SUMMARY, description=SUMMARY)
    parser.add_argument("--port", type=int_between(0, 65535), default=8765,
                        help="port, 0 for any free one (default %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve the sample site in the foreground until interrupted."""
    from baton import site

    try:
        return site.main(["--port", str(args.port)] + (["--quiet"] if args.quiet else []))
    except OSError as error:  # the port is taken, or not ours to bind
        raise BatonError(f"cannot serve on 127.0.0.1:{args.port}: {error.strerror or error}") \
            from error
