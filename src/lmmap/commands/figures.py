"""Commands that embed and draw the map and the KL heatmap (the PCA curve: `analyze dimensionality`)."""

from __future__ import annotations

import argparse

import pandas as pd

from lmmap import figures
from lmmap.analysis.tsne_map import embed_map
from lmmap.commands import Step
from lmmap.embedding import effective_perplexity
from lmmap.errors import InputError
from lmmap.palette import read_colour_table
from lmmap.storage import load_npz


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("embed", help="t-SNE of the coordinates (rows ordered by date, name)")
    p.add_argument("--coordinates", required=True, help="the coordinates Q (npz)")
    p.add_argument("--models-table", required=True, help="the models table (CSV)")
    p.add_argument("--perplexity", type=float, required=True, help="t-SNE perplexity")
    p.add_argument("--max-iter", type=int, required=True, help="t-SNE iterations")
    p.add_argument("--seed", type=int, required=True, help="t-SNE random state")
    p.add_argument("--out", required=True, help="CSV of model_id, x, y and the model table columns")
    p.set_defaults(func=run_embed)

    p = subparsers.add_parser("plot-kl", help="clustered heatmap of the KL estimate")
    p.add_argument("--kl", required=True, help="the pairwise KL estimate (npz)")
    p.add_argument("--models-table", required=True, help="the models table (CSV)")
    p.add_argument("--group", required=True, help="models-table column for the colour strip")
    p.add_argument("--type-colours", help="TSV of fixed type colours (type, colour_rgba), e.g. the paper's")
    p.add_argument(
        "--max-models",
        type=int,
        default=figures.HEATMAP_MAX_MODELS,
        help="above this many models, draw --subset of them chosen by farthest-point sampling",
    )
    p.add_argument(
        "--subset",
        type=int,
        default=figures.HEATMAP_SUBSET,
        help="how many models the heatmap draws above --max-models",
    )
    p.add_argument("--out-stem", required=True, help="writes <stem>.png and <stem>.pdf")
    p.set_defaults(func=run_plot_kl)


def read_table(path: str, model_ids: list[str] | None = None) -> pd.DataFrame:
    """A CSV keyed by model id: ids are strings (ids such as `1` must not become numbers); every id
    of `model_ids` must have a row."""
    table = pd.read_csv(path, dtype={"model_id": str}, keep_default_na=False, na_values=[""])
    if "model_id" not in table.columns:
        raise InputError(path, "required column is missing", record="header", field="model_id")
    absent = sorted(set(model_ids or []) - set(table["model_id"]))
    if absent:
        raise InputError(path, f"{len(absent)} model(s) have no row: {absent[:5]}", field="model_id")
    return table


def run_embed(args: argparse.Namespace) -> int:
    step = Step("embed", args, {"coordinates": args.coordinates, "models": args.models_table})
    coords = load_npz(args.coordinates, required=("Q", "model_ids"))
    model_ids = coords["model_ids"].tolist()
    table = read_table(args.models_table, model_ids).set_index("model_id")
    created = table.loc[model_ids, "created"] if "created" in table else None
    xy = embed_map(coords["Q"], model_ids, created, args.perplexity, args.max_iter, args.seed)
    extra = {"perplexity_used": effective_perplexity(len(model_ids), args.perplexity)}
    step.csv(xy.join(table, on="model_id"), args.out, extra)
    return 0


def run_plot_kl(args: argparse.Namespace) -> int:
    step = Step("plot-kl", args, {"kl": args.kl, "models": args.models_table})
    kl = load_npz(args.kl, required=("KL", "model_ids"))
    labels = kl["model_ids"].tolist()
    table = read_table(args.models_table, labels).set_index("model_id")
    groups = table.loc[labels, args.group].astype(str).tolist()
    fixed = read_colour_table(args.type_colours) if args.group == "type" else None
    fig = figures.plot_kl_heatmap(kl["KL"], labels, groups, args.group, fixed, args.max_models, args.subset)
    shown = (
        labels
        if len(labels) <= args.max_models
        else [labels[i] for i in figures.farthest_point_subset(kl["KL"], args.subset)]
    )
    step.figure(fig, args.out_stem, {"n_models": len(labels), "models_shown": shown})
    return 0
