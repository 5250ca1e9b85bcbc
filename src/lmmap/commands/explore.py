"""Commands for exploring a map: the interactive HTML map and a model's nearest neighbours."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "interactive-map",
        help="the map as one self-contained HTML file (hover, colourings, search)",
        description="The t-SNE map as one HTML file that opens offline: hover a point "
        "for the model's details and nearest models, switch the colouring, "
        "find a model by name, zoom and pan.",
    )
    p.add_argument("--matrix", required=True, help="the log-likelihood matrix L (npz)")
    p.add_argument("--coordinates", required=True, help="the coordinates Q (npz)")
    p.add_argument("--models-table", required=True, help="the models table (CSV)")
    p.add_argument("--embedding", required=True, help="the t-SNE coordinates (CSV: model_id, x, y)")
    p.add_argument("--texts", required=True, help="reference texts (JSONL), for KL in bits per byte")
    p.add_argument("--benchmarks", help="the benchmark scores (CSV), when known")
    p.add_argument("--type-colours", help="TSV of type colours (type, colour_rgba), e.g. the paper's")
    p.add_argument(
        "--landmarks",
        nargs="*",
        default=[],
        help="model ids to label (none given: one per type, the largest or most central)",
    )
    p.add_argument("--max-landmarks", type=int, required=True, help="at most this many automatic landmarks")
    p.add_argument("--neighbours", type=int, required=True, help="nearest models listed in the hover text")
    p.add_argument("--out", required=True, help="the HTML file")
    p.set_defaults(func=run_interactive_map)

    p = subparsers.add_parser(
        "neighbours",
        help="a model's nearest models by estimated KL (nats and bits per byte)",
        description="Print the models nearest to MODEL on the map, by the KL divergence "
        "estimated from the coordinates: ||q_i - q_j||^2 / 2N nats per text, "
        "and in bits per byte of reference text.",
    )
    p.add_argument("model", metavar="MODEL", help="model id as in the map")
    p.add_argument("--map", required=True, help="the coordinates Q (npz)")
    p.add_argument("--texts", help="reference texts (JSONL), for bits per byte (skipped when not given or absent)")
    p.add_argument("-k", "--top", type=int, default=10, help="how many neighbours")
    p.add_argument("--format", choices=["table", "csv"], default="table", help="output format")
    p.set_defaults(func=run_neighbours)


def _text_bytes(path: str | None) -> float | None:
    from pathlib import Path

    from lmmap.neighbours import mean_text_bytes
    from lmmap.texts import load_text_set

    return mean_text_bytes(load_text_set(path).texts) if path and Path(path).exists() else None


def run_neighbours(args: argparse.Namespace) -> int:
    from lmmap.analysis.inputs import load_coordinates
    from lmmap.errors import InputError
    from lmmap.neighbours import nearest

    coords = load_coordinates(args.map)
    model_ids = coords["model_ids"].astype(str).tolist()
    if args.model not in model_ids:
        close = [m for m in model_ids if args.model.lower() in m.lower()][:5]
        raise InputError(
            args.map, "no such model" + (f" (did you mean: {', '.join(close)}?)" if close else ""), record=args.model
        )
    table = nearest(coords["Q"], model_ids, args.model, args.top, _text_bytes(args.texts))
    if args.format == "csv":
        print(table.to_csv(index=False), end="")
    else:
        print(f"Nearest models to {args.model} (estimated KL per text, {len(model_ids)} models mapped)")
        print(table.to_markdown(index=False, floatfmt=".4g"))
        if "kl_bits_per_byte" not in table:
            print(
                "(bits per byte need the reference texts: --texts"
                + (f", not found at {args.texts})" if args.texts else ")")
            )
    return 0


def run_interactive_map(args: argparse.Namespace) -> int:

    import pandas as pd

    from lmmap.analysis import inputs, interactive_map, tsne_map
    from lmmap.commands import Step
    from lmmap.coords import kl_estimate, nats_to_bits_per_byte
    from lmmap.neighbours import mean_text_bytes, nearest_all
    from lmmap.palette import read_colour_table
    from lmmap.storage import atomic_path
    from lmmap.texts import load_text_set
    from lmmap.workflow import MODELS_TABLE_COLUMNS

    used = {
        "matrix": args.matrix,
        "coordinates": args.coordinates,
        "models": args.models_table,
        "embedding": args.embedding,
        "texts": args.texts,
        "benchmarks": args.benchmarks,
        "type_colours": args.type_colours,
    }
    step = Step("interactive-map", args, used)
    data = inputs.AnalysisData.load(args.matrix, args.models_table, args.coordinates, args.benchmarks)
    variables = tsne_map.map_variables(
        data.model_ids, data.Q, data.L, data.domains, data.models, data.benchmarks, data.tasks
    )
    if "family" in data.models:
        variables["family"] = data.models["family"].to_numpy()
    if "created" in data.models:
        variables["created_date"] = (
            pd.to_datetime(data.models["created"], errors="coerce", utc=True).dt.strftime("%Y-%m-%d").to_numpy()
        )
    # the models table's other columns (a sheet's own extra columns, the paper's model data) as colourings
    own = [c for c in data.models.columns if c not in MODELS_TABLE_COLUMNS and c not in variables]
    for column in own:
        variables[column] = data.models[column].to_numpy()
    embedding = inputs.read_csv(args.embedding, required=("x", "y"))[["model_id", "x", "y"]]
    points = embedding.reset_index(drop=True).merge(variables, on="model_id", how="left")
    position = {model: i for i, model in enumerate(data.model_ids)}
    order = [position[m] for m in points["model_id"]]  # matrix rows in the embedding's order
    index, kl = nearest_all(data.Q, args.neighbours)
    bpb = nats_to_bits_per_byte(kl, mean_text_bytes(load_text_set(args.texts).texts))
    names = [[(data.model_ids[j], float(b)) for j, b in zip(index[i], bpb[i])] for i in order]
    candidates = dict.fromkeys(("type", "family", *tsne_map.VARIABLES, *own))
    shown = [v for v in candidates if v in points and points[v].notna().any()]
    landmarks = args.landmarks or interactive_map.default_landmarks(
        points, kl_estimate(data.Q[order]), args.max_landmarks
    )
    fig = interactive_map.build_figure(
        points,
        shown,
        names,
        landmarks,
        {"type": read_colour_table(args.type_colours)},
        title=f"Map of {len(points)} language models (t-SNE of log-likelihood vectors)",
    )
    with atomic_path(args.out) as tmp:
        interactive_map.write_html(fig, tmp)
    step.record(args.out, {"landmarks": landmarks, "variables": shown})
    return 0
