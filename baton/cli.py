"""The `baton` command line: one sub-command per verb, each a short function over baton's modules."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from baton.errors import BatonError
from baton.localcloud import DEFAULT_PORT, LocalCloud


def say(message: str) -> None:
    print(message, file=sys.stderr)


def cmd_up(args: argparse.Namespace) -> int:
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


def cmd_down(args: argparse.Namespace) -> int:
    cloud = LocalCloud(say=say)
    stopped = cloud.down()
    if stopped is None:
        print("The local cloud is not running; nothing to stop.")
    else:
        saved = " (state saved)" if stopped.persist else ""
        print(f"Stopped the local cloud at {stopped.endpoint} (pid {stopped.pid}){saved}.")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    cloud = LocalCloud(say=say)
    instance = cloud.running()
    if instance is None:
        print("The local cloud is not running. Start it with: baton up")
        return 3  # the LSB code for "not running", so scripts can tell
    print(f"running   {instance.endpoint}\n"
          f"pid       {instance.pid}\n"
          f"version   MiniStack {instance.version}\n"
          f"persist   {'yes' if instance.persist else 'no'}\n"
          f"state     {cloud.state_dir}\n"
          f"log       {cloud.log_file}")
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    ministack_python, lambda_python = LocalCloud(say=say).prepare()
    print(f"local cloud environment:   {ministack_python.parent.parent}")
    print(f"function runtime (Python): {lambda_python.parent.parent}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="baton",
        description="Run the scraper → transformer → moderator → store pipeline on an embedded "
                    "local cloud, LocalStack or AWS.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int], summary: str
            ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(handler=handler)
        return sub

    up = add("up", cmd_up, "start the embedded local cloud on 127.0.0.1 and wait until healthy")
    up.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s)")
    up.add_argument("--persist", action="store_true",
                    help="keep the cloud's state across down/up (saved on graceful stop)")
    add("down", cmd_down, "stop the embedded local cloud")
    add("status", cmd_status, "show whether the embedded local cloud runs, and where")
    add("setup", cmd_setup, "create the local cloud's environments ahead of time")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BatonError as error:
        say(f"baton {args.command}: error: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
