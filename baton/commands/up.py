"""`baton up`: start the embedded local cloud on 127.0.0.1 and wait until healthy."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from baton.commands.common import int_between, say
from baton.localcloud import DEFAULT_PORT, MAX_CONCURRENCY, MAX_WORKER_IDLE_S, LocalCloud

SUMMARY = "start the embedded local cloud on 127.0.0.1 and wait until healthy"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton up` and its options."""
    parser = subparsers.add_parser("up", help=SUMMARY, description=SUMMARY)
    parser.add_argument("--port", type=int_between(1, 65535), default=DEFAULT_PORT,
                        help="port (default %(default)s)")
    parser.add_argument("--persist", action="store_true",
                        help="keep the cloud's state across down/up (saved on graceful stop)")
    parser.add_argument("--concurrency", type=int_between(1, MAX_CONCURRENCY), metavar="N",
                        help="the account concurrency limit: invocations running at once (warm "
                             "workers are capped at three times it; default: "
                             "BATON_LAMBDA_CONCURRENCY, else sized to this machine)")
    parser.add_argument("--worker-idle", type=seconds_up_to(MAX_WORKER_IDLE_S), metavar="S",
                        help="seconds an extra warm worker may stay idle before it is stopped "
                             "(default: BATON_WORKER_IDLE_S, else 30)")
    return parser


def seconds_up_to(high: float) -> Callable[[str], float]:
    """An argparse type for a number of seconds above 0 and at most ``high``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
        if not 0 < value <= high:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be more than 0 and at most {high:.0f}, got {text}")
        return value

    return parse


def run(args: argparse.Namespace) -> int:
    """Start the local cloud unless it runs already; say where it is."""
    cloud = LocalCloud(say=say)
    instance, started = cloud.up(port=args.port, persist=args.persist, concurrency=args.concurrency,
                                 worker_idle=args.worker_idle)
    if not started:
        print(f"The local cloud is already running at {instance.endpoint} (pid {instance.pid}).")
        if args.concurrency is not None or args.worker_idle is not None:
            print("Note: --concurrency and --worker-idle apply when it starts; `baton down` first "
                  "to change them.")
        if instance.port != args.port:
            print(f"Note: it listens on port {instance.port}, not {args.port}; `baton down` first "
                  "to move it.")
        return 0
    persisted = f", state kept in {cloud.state_dir}" if instance.persist else ""
    print(f"The local cloud is up at {instance.endpoint} (MiniStack {instance.version}, "
          f"pid {instance.pid}{persisted}).")
    print(f"Log: {cloud.log_file}")
    return 0
