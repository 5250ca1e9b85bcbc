"""`python -m lmmap <step> ...`: every pipeline step as a documented command.

Each module in COMMANDS defines `register(subparsers)`, which adds its subcommand(s) and sets
`func` on the parser; the function receives the parsed arguments and returns an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from lmmap import __version__
from lmmap.errors import InputError

COMMANDS = (
    "lmmap.commands.texts",
    "lmmap.commands.score",
    "lmmap.commands.matrix",
    "lmmap.commands.figures",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmmap", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lmmap {__version__}")
    parser.add_argument("--log-level", default="INFO", help="logging level (default: INFO)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="STEP")
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"lmmap {args.command}: error: {exc}", file=sys.stderr)
        return 2
