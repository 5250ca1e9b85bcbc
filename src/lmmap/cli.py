"""`python -m lmmap <step> ...`: every pipeline step as a documented command.

Each module in COMMANDS defines `register(subparsers)`, which adds its subcommand(s) and sets
`func` on the parser; the function receives the parsed arguments and returns an exit status.
COMMANDS also names each module's subcommands, so that running one step imports only its module:
a job that merges a matrix should not pay for importing torch. SUMMARIES gives each step's one-line
help, so that `lmmap --help` lists every step without importing any command module (tests/test_cli.py
checks that they match the modules' own help).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from lmmap import __version__
from lmmap.errors import InputError
from lmmap.logs import quiet_progress_bars

COMMANDS = {
    "lmmap.commands.texts": ("demo-corpus", "prepare-texts"),
    "lmmap.commands.score": ("score", "score-many"),
    "lmmap.commands.download": ("download",),
    "lmmap.commands.matrix": ("export-models", "merge", "coordinates"),
    "lmmap.commands.figures": ("embed", "plot-kl"),
    "lmmap.commands.zoo": ("zoo-data", "build-zoo", "zoo-lineage"),
    "lmmap.commands.interpolate": ("interpolate",),
    "lmmap.commands.tasks": ("build-task", "evaluate-tasks", "collect-benchmarks", "import-lm-eval"),
    "lmmap.commands.analysis": ("analyze",),
    "lmmap.commands.explore": ("interactive-map", "neighbours"),
    "lmmap.commands.growth": ("publish-map", "place", "check-placement"),
    "lmmap.commands.paper": ("convert-paper-data",),
    "lmmap.commands.audit": ("audit",),
    "lmmap.commands.cluster": ("cluster-check",),
    "lmmap.commands.readme": ("quote-findings",),
}

SUMMARIES = {
    "demo-corpus": "collect the demo corpus from files on this machine",
    "prepare-texts": "build the reference text set (JSONL + sha256)",
    "score": "score one model on a text set",
    "score-many": "score several models one after another in one process",
    "download": "fetch a Hugging Face model into the local cache",
    "export-models": "write the list of models to map (sheet + demo zoo)",
    "merge": "merge per-model score files into the K×N matrix",
    "coordinates": "clip and double-centre L into coordinates Q",
    "embed": "t-SNE of the coordinates (rows ordered by date, name)",
    "plot-kl": "clustered heatmap of the KL estimate",
    "zoo-data": "train the zoo tokenizer and tokenise its training chunks",
    "build-zoo": "build zoo models (bases, fine-tunes, merges, variants) from recipes",
    "zoo-lineage": "tabulate the zoo's models: kind, parents, domain, format, contamination",
    "interpolate": "merge three models' weights at one (alpha, beta) point, shard by shard",
    "build-task": "build one multiple-choice task from held-out corpus chunks",
    "evaluate-tasks": "evaluate models on tasks (each model loaded once for all tasks)",
    "collect-benchmarks": "merge evaluation results into the leaderboard table",
    "import-lm-eval": "import lm-evaluation-harness results files into the scores table",
    "analyze": "the paper's analyses: maps, tables, validation",
    "interactive-map": "the map as one self-contained HTML file (hover, colourings, search)",
    "neighbours": "a model's nearest models by estimated KL (nats and bits per byte)",
    "publish-map": "publish a map as one directory that new models are placed on",
    "place": "place new models on a published map: neighbours, predicted scores, leakage, position",
    "check-placement": "check placed models against what is known of them (relatives, true scores)",
    "convert-paper-data": "convert the paper's released data (pickles) once into npz/csv",
    "audit": "check that result files still match everything they were made from",
    "cluster-check": "check that every job of a planned SLURM run fits its partition",
    "quote-findings": "quote a run's findings table into the README's findings block",
}


class HelpFormatter(argparse.HelpFormatter):
    """The one help formatter of every lmmap command: an option's default is printed once, after its
    help, and only where it says something (not None, False or empty, and not when the help already
    states its default in words, e.g. "(default: all)")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default is argparse.SUPPRESS
            or default is None
            or default is False
            or default == []
            or default == ""
            or not action.option_strings
        ):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that always uses HelpFormatter (subcommand parsers are made of this class too)."""

    def __init__(self, *args, **kwargs):
        kwargs["formatter_class"] = HelpFormatter
        super().__init__(*args, **kwargs)


def modules_for(argv: list[str]) -> list[str]:
    """The command modules to import: the one owning the requested step; none without a step (help)."""
    step = next((a for a in argv if any(a in steps for steps in COMMANDS.values())), None)
    return [module for module, steps in COMMANDS.items() if step in steps]


def build_parser(modules: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the steps of `modules` (default: all) registered by their modules; every other
    step only listed, by its summary, so that help costs no imports (a step without one is imported)."""
    parser = Parser(prog="lmmap", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lmmap {__version__}")
    parser.add_argument("--log-level", default="INFO", help="logging level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="STEP")
    imported = list(COMMANDS) if modules is None else modules
    for name, steps in COMMANDS.items():
        if name in imported or not all(step in SUMMARIES for step in steps):
            importlib.import_module(name).register(subparsers)
        else:
            for step in steps:
                subparsers.add_parser(step, help=SUMMARIES[step], add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quiet_progress_bars()  # before a command module imports the Hugging Face libraries
    args = build_parser(modules_for(argv)).parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"lmmap {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that cannot be read or written (a directory, no permission, ...)
        if exc.filename is None:
            raise
        print(f"lmmap {args.command}: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
