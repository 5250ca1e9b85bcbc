"""`python -m lmmap convert-paper-data`: the paper's released pickles -> the pipeline's npz/csv files."""

from __future__ import annotations

import argparse

from lmmap.analysis import paper_data
from lmmap.commands import Step
from lmmap.texts import load_text_set


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert-paper-data", help="convert the paper's released data (pickles) once into npz/csv"
    )
    p.add_argument("--loglik", required=True, help="raw_log-likelihood_1018.pkl")
    p.add_argument("--model-data", required=True, help="model-data-1018.pkl")
    p.add_argument("--texts", required=True, help="the text set prepared from texts-10k-pile.jsonl")
    p.add_argument("--types", help="model sheet TSV whose `type` column gives each model's type")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="required: unpickling can execute code, so only do it for files you trust",
    )
    p.add_argument("--out-matrix", required=True, help="the log-likelihood matrix L (npz) to write")
    p.add_argument("--out-models", required=True, help="the models table (CSV) to write")
    p.add_argument("--out-benchmarks", required=True, help="the benchmark scores (CSV) to write")
    p.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    inputs = {"loglik": args.loglik, "model_data": args.model_data, "texts": args.texts, "types": args.types}
    step = Step("convert-paper-data", args, inputs)
    text_set = load_text_set(args.texts)
    matrix, models, benchmarks = paper_data.convert(
        args.loglik, args.model_data, text_set, args.allow_pickle, args.types
    )
    step.npz(args.out_matrix, {"shape": list(matrix["L"].shape)}, **matrix)
    step.csv(models, args.out_models)
    step.csv(benchmarks, args.out_benchmarks)
    return 0
