"""`baton deploy`: build, upload and deploy template.yaml."""

from __future__ import annotations

import argparse
import time

from baton import deploy
from baton.commands.build import add_template_option
from baton.commands.common import EMULATOR_PARAMETERS, add_target_options, ensure_target, say
from baton.errors import BatonError

SUMMARY = "build, upload and deploy template.yaml"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton deploy` and its options."""
    parser = add_target_options(subparsers.add_parser("deploy", help=SUMMARY, description=SUMMARY))
    add_template_option(parser)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a template parameter (repeatable)")
    return parser


def parse_parameters(pairs: list[str]) -> dict[str, str]:
    """--param KEY=VALUE pairs as a dict; a BatonError for a pair without a key or '='."""
    parameters = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise BatonError(f"--param takes KEY=VALUE, got {pair!r}")
        parameters[key] = value
    return parameters


def run(args: argparse.Namespace) -> int:
    """Deploy the template to the target (starting the local cloud if needed); print the outputs."""
    parameters = parse_parameters(args.param)  # before the local cloud is started for nothing
    ensure_target(args.target)
    started = time.monotonic()
    result = deploy.deploy(args.target, args.stack_name, parameters, args.template, say=say,
                           create_defaults=EMULATOR_PARAMETERS if args.target != "aws" else None)
    took = time.monotonic() - started
    print(f"Stack {result.stack} on {args.target}: "
          f"{'deployed' if result.changed else 'no changes'} ({took:.1f} s)")
    for key, value in sorted(result.outputs.items()):
        print(f"  {key:<28} {value}")
    return 0
