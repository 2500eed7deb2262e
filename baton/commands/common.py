"""What several commands share: the target options, argument types, the function lookup, `say`."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from baton import deploy, targets
from baton.localcloud import LocalCloud, probe_health

# Parameters a deploy to an emulator gets unless given: the sample site is local by nature.
EMULATOR_PARAMETERS = {"ScraperAllowedHosts": "127.0.0.1:8765,localhost:8765"}
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION_S = 3650 * 86400  # ten years: further back than any log retention, still a valid time


def say(message: str) -> None:
    """Tell the user something on stderr (stdout is for results, which may be piped)."""
    print(message, file=sys.stderr)


def add_target_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Declare --target and --stack-name, which every command acting on a stack takes."""
    parser.add_argument("--target", choices=targets.TARGETS, default="local",
                        help="where to act (default %(default)s)")
    parser.add_argument("--stack-name", type=stack_name, default=deploy.DEFAULT_STACK,
                        help="CloudFormation stack (default %(default)s)")
    parser.add_argument("--endpoint-url", metavar="URL",
                        help="the localstack or aws target's endpoint (default: "
                             "BATON_ENDPOINT_URL, else LOCALSTACK_HOST / the AWS default)")
    return parser


def ensure_target(target: str) -> None:
    """Start the local cloud for the `local` target if nothing answers there; check the target."""
    if target == "local" and probe_health(targets.local_port()) is None:
        say("The local cloud is not running; starting it (baton up)…")
        LocalCloud(say=say).up(port=targets.local_port())
    targets.require_reachable(target)


# Argument types: argparse turns their ArgumentTypeError into a usage message and exit 2, before
# anything is started or contacted.

def int_between(low: int, high: int) -> Callable[[str], int]:
    """An argparse type for a whole number from ``low`` to ``high`` inclusive."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def fraction(text: str) -> float:
    """An argparse type for a threshold: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def duration(text: str) -> float:
    """'10m', '2h', '30s', '1d' → seconds (an argparse type)."""
    match = re.fullmatch(r"(\d{1,9})([smhd])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 30s, 10m, 2h or 1d, got {text!r}")
    seconds = int(match[1]) * DURATION_UNITS[match[2]]
    if not 0 < seconds <= MAX_DURATION_S:
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {MAX_DURATION_S // 86400}d, got {text!r}")
    return seconds


def stack_name(text: str) -> str:
    """A CloudFormation stack name: a letter, then letters, digits and hyphens, at most 128."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,127}", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a stack name (a letter, then letters, digits or hyphens; at most 128)")
    return text


def non_empty(text: str) -> str:
    """An argparse type for a string that must say something."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def existing_file(text: str) -> Path:
    """An argparse type for a file that must exist and be readable (checked before any work)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(
            f"{text}: {'is a directory' if path.is_dir() else 'no such file'}")
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise argparse.ArgumentTypeError(f"{text}: {error.strerror}") from None
    return path


def http_url(text: str) -> str:
    """An argparse type for a URL the scraper can fetch (http or https, with a host)."""
    from pipeline.models import url_problem

    if (why := url_problem(text)) is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: {why}")
    return text
