"""`python -m lmmap convert-paper-data`: the paper's released pickles -> the pipeline's npz/csv files."""

from __future__ import annotations

import argparse
import time

from lmmap.analysis import paper_data
from lmmap.analysis.outputs import publish_csv
from lmmap.commands import command_params
from lmmap.provenance import write_provenance
from lmmap.storage import save_npz
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
    p.add_argument("--out-matrix", required=True, help="results/matrix/loglik.npz")
    p.add_argument("--out-models", required=True, help="results/matrix/models.csv")
    p.add_argument("--out-benchmarks", required=True, help="results/benchmarks/scores.csv")
    p.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    started = time.time()
    text_set = load_text_set(args.texts)
    matrix, models, benchmarks = paper_data.convert(
        args.loglik, args.model_data, text_set, args.allow_pickle, args.types
    )
    inputs = {"loglik": args.loglik, "model_data": args.model_data, "texts": args.texts}
    if args.types:
        inputs["types"] = args.types
    params = command_params(args)
    save_npz(args.out_matrix, **matrix)
    write_provenance(
        args.out_matrix, "convert-paper-data", inputs, params, started=started, extra={"shape": list(matrix["L"].shape)}
    )
    publish_csv(models, args.out_models, "convert-paper-data", inputs, params, started)
    publish_csv(benchmarks, args.out_benchmarks, "convert-paper-data", inputs, params, started)
    return 0
