"""The `python -m lmmap` subcommands: thin glue between the command line and the library."""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from pathlib import Path


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


class Step:
    """One command run: what it read and its parameters, recorded in the provenance sidecar of every
    output it writes. Every command writes its outputs through one of these methods."""

    def __init__(self, name: str, args: argparse.Namespace, inputs: Mapping | None = None, exclude=()):
        self.name, self.started = name, time.time()
        self.inputs = {k: v for k, v in (inputs or {}).items() if v}
        self.params = command_params(args, exclude)

    def record(self, path: str | Path, extra: Mapping | None = None) -> None:
        """The sidecar of an output already written (a model directory's files, a figure set)."""
        from lmmap.provenance import write_provenance

        write_provenance(path, self.name, self.inputs, self.params, extra, self.started)

    def npz(self, path: str | Path, extra: Mapping | None = None, **arrays) -> None:
        from lmmap.storage import save_npz

        save_npz(path, **arrays)
        self.record(path, extra)

    def json(self, path: str | Path, data, extra: Mapping | None = None) -> None:
        from lmmap.storage import write_json

        write_json(path, data)
        self.record(path, extra)

    def csv(self, frame, path: str | Path, extra: Mapping | None = None, float_format: str | None = None) -> None:
        from lmmap.analysis.outputs import publish_csv

        publish_csv(frame, path, self.name, self.inputs, self.params, self.started, extra, float_format)

    def table(self, frame, stem: str | Path, extra: Mapping | None = None, display=None) -> None:
        """<stem>.{csv,md,tex,html}: the CSV for programs, the others for people (lmmap.analysis.outputs)."""
        from lmmap.analysis.outputs import publish_table

        publish_table(frame, stem, self.name, self.inputs, self.params, self.started, extra, display=display)

    def figure(self, fig, stem: str | Path, extra: Mapping | None = None) -> None:
        """<stem>.png and <stem>.pdf."""
        from lmmap.analysis.outputs import publish_figure

        publish_figure(fig, stem, self.name, self.inputs, self.params, self.started, extra)
