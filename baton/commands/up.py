"""`baton up`: start the embedded local cloud on 127.0.0.1 and wait until healthy."""

from __future__ import annotations

import argparse

from baton.commands.common import int_between, say
from baton.localcloud import DEFAULT_PORT, LocalCloud

SUMMARY = "start the embedded local cloud on 127.0.0.1 and wait until healthy"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton up` and its options."""
    parser = subparsers.add_parser("up", help=SUMMARY, description=SUMMARY)
    parser.add_argument("--port", type=int_between(1, 65535), default=DEFAULT_PORT,
                        help="port (default %(default)s)")
    parser.add_argument("--persist", action="store_true",
                        help="keep the cloud's state across down/up (saved on graceful stop)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Start the local cloud unless it runs already; say where it is."""
    cloud = LocalCloud(say=say)
    instance, started = cloud.up(port=args.port, persist=args.persist)
    if not started:
        print(f"The local cloud is already running at {instance.endpoint} (pid {instance.pid}).")
        if instance.port != args.port:
            print(f"Note: it listens on port {instance.port}, not {args.port}; `baton down` first "
                  "to move it.")
        return 0
    persisted = f", state kept in {cloud.state_dir}" if instance.persist else ""
    print(f"The local cloud is up at {instance.endpoint} (MiniStack {instance.version}, "
          f"pid {instance.pid}{persisted}).")
    print(f"Log: {cloud.log_file}")
    return 0
