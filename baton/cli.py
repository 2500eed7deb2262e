"""The `baton` command line: the parser assembled from one module per verb (baton/commands/)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Sequence

from botocore.exceptions import EndpointConnectionError

from baton import targets
from baton.commands import (
    alerts,
    build,
    check,
    deploy,
    destroy,
    down,
    executions,
    history,
    invoke,
    logs,
    monitor,
    redrive,
    run,
    setup,
    site,
    status,
    ui,
    up,
    watch,
)
from baton.commands.common import say
from baton.errors import BatonError

# In the order `baton --help` lists them.
COMMANDS = (up, down, status, setup, build, deploy, invoke, logs, destroy, run, redrive, executions,
            history, check, ui, watch, monitor, alerts, site)
DEBUG_VARIABLE = "BATON_DEBUG"


def build_parser() -> argparse.ArgumentParser:
    """The `baton` parser: each command module declares its own sub-command."""
    parser = argparse.ArgumentParser(
        prog="baton",
        description="Run the scraper → transformer → moderator → store pipeline on an embedded "
                    "local cloud, LocalStack or AWS.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers).set_defaults(handler=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; a failure is one clear message and a non-zero exit code."""
    # The CLI shares code with the functions; their Powertools logs are for CloudWatch, not for
    # the user's terminal (nor for --json output).
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "endpoint_url", None):
            targets.use_endpoint_url(args.target, args.endpoint_url)
        return int(args.handler(args))
    except BatonError as error:
        say(f"baton {args.command}: error: {error}")
        return error.exit_code
    except EndpointConnectionError as error:
        target = getattr(args, "target", "local")
        say(f"baton {args.command}: error: could not connect to {error.kwargs.get('endpoint_url')} "
            f"({target}). " + ("Start it with: baton up" if target == "local" else
                               "Start LocalStack (localstack start -d), or point baton at it with "
                               "--endpoint-url / BATON_ENDPOINT_URL"
                               if target == "localstack" else "Check your network and region."))
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except Exception as error:  # a bug or an unforeseen failure: one line, the trace on request
        if os.environ.get(DEBUG_VARIABLE):
            traceback.print_exc()
        else:
            say(f"baton {args.command}: unexpected error: {type(error).__name__}: {error} "
                f"(run again with {DEBUG_VARIABLE}=1 to see the traceback)")
        return 1


def entry() -> None:
    """The `baton` executable. Piped into `head`, it stops quietly when the reader goes (the
    signal is set here, not in main(), which tests call in-process)."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())


if __name__ == "__main__":
    entry()
