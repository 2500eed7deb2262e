"""`baton build`: build the function zips and the dependency layer."""

from __future__ import annotations

import argparse

from baton import deploy
from baton.commands.common import add_target_options, existing_file

SUMMARY = "build the function zips and the dependency layer"


def add_template_option(parser: argparse.ArgumentParser) -> None:
    """Declare --template (build and deploy both read it)."""
    parser.add_argument("--template", type=existing_file, default=deploy.TEMPLATE,
                        help="the SAM template (default: the project's template.yaml)")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Declare `baton build` and its options."""
    parser = add_target_options(subparsers.add_parser("build", help=SUMMARY, description=SUMMARY))
    add_template_option(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Build every artifact the template names, and list them with their sizes."""
    template = deploy.load_template(args.template)
    built = deploy.build_all(template, deploy.ROOT / "build" / args.target, args.target == "aws")
    for (logical_id, _), artifact in built.items():
        print(f"{logical_id:<24} {artifact.stat().st_size / 1e6:7.2f} MB  {artifact}")
    return 0
