"""The `python -m lmmap` subcommands: thin glue between the command line and the library."""

from __future__ import annotations

import argparse


def command_params(args: argparse.Namespace, exclude: tuple[str, ...] = ()) -> dict:
    """The parsed arguments of a command, as recorded in provenance (without dispatch fields and `exclude`)."""
    return {k: v for k, v in vars(args).items() if k not in ("func", "log_level", "command", *exclude)}


def positive_int(text: str) -> int:
    """argparse type for counts and lengths: a negative one would silently slice from the end."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value
