"""`python -m lmmap <step> ...`: every pipeline step as a documented command.

Each module in COMMANDS defines `register(subparsers)`, which adds its subcommand(s) and sets
`func` on the parser; the function receives the parsed arguments and returns an exit status.
COMMANDS also names each module's subcommands, so that running one step imports only its module:
a job that merges a matrix should not pay for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from lmmap import __version__
from lmmap.errors import InputError

COMMANDS = {
    "lmmap.commands.texts": ("demo-corpus", "prepare-texts"),
    "lmmap.commands.score": ("score", "score-many"),
    "lmmap.commands.download": ("download",),
    "lmmap.commands.matrix": ("export-models", "merge", "coordinates"),
    "lmmap.commands.figures": ("embed", "plot-map", "plot-pca", "plot-kl"),
    "lmmap.commands.zoo": ("zoo-data", "zoo-build", "zoo-lineage"),
    "lmmap.commands.tasks": ("build-task", "evaluate-tasks", "collect-benchmarks"),
    "lmmap.commands.analysis": ("analyze",),
    "lmmap.commands.paper": ("paper-convert",),
    "lmmap.commands.audit": ("audit",),
    "lmmap.commands.cluster": ("cluster-check",),
}


def modules_for(argv: list[str]) -> list[str]:
    """The command modules to import: the one owning the requested step, or all (for help)."""
    step = next((a for a in argv if not a.startswith("-")), None)
    owners = [module for module, steps in COMMANDS.items() if step in steps]
    return owners or list(COMMANDS)


def build_parser(modules: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmmap", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lmmap {__version__}")
    parser.add_argument("--log-level", default="INFO", help="logging level (default: INFO)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="STEP")
    for name in modules or COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(modules_for(argv)).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"lmmap {args.command}: error: {exc}", file=sys.stderr)
        return 2
