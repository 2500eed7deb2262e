"""`baton ui`: see runs, their timelines, comparisons and the monitor in a local browser page."""

from __future__ import annotations

import argparse
import webbrowser

from baton import targets
from baton.commands.common import add_target_options, int_between, say
from baton.ui.server import DEFAULT_PORT, serve

SUMMARY = "see runs in a browser: timelines, pipeline graph, compare, monitor, cost"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton ui` and its options."""
    parser = add_target_options(subparsers.add_parser("ui", help=SUMMARY, description=SUMMARY))
    parser.add_argument("--port", type=int_between(0, 65535), default=DEFAULT_PORT,
                        help="port on 127.0.0.1, 0 for any free one (default %(default)s)")
    parser.add_argument("--open", action="store_true", help="open it in the default browser")
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve the UI in the foreground until interrupted."""
    targets.require_reachable(args.target)
    server = serve(args.target, args.stack_name, args.port, verbose=True)
    print(f"baton ui: {server.url} (Ctrl-C to stop)", flush=True)
    if args.open:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        say("stopped")
    finally:
        server.server_close()
    return 0
