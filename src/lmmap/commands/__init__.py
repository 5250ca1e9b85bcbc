"""The `python -m lmmap` subcommands: thin glue between the command line and the library."""

from __future__ import annotations

import argparse


def command_params(args: argparse.Namespace) -> dict:
    """The parsed arguments of a command, as recorded in provenance (without dispatch fields)."""
    return {k: v for k, v in vars(args).items() if k not in ("func", "log_level", "command")}
