"""Commands for growing a map: publish it as one directory, place new models on it, check placements."""

from __future__ import annotations

import argparse
import logging
import time

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "publish-map",
        help="publish a map as one directory that new models are placed on",
        description="Publish the map of the models created before --cut-date as one self-contained "
        "directory: coordinates, column means, clip value, t-SNE positions, ridge fits in text space "
        "with their cross-validation residuals, the leakage screen's fit, a weighted text sample "
        "(a text set new models may be scored on) and a manifest with every file's sha256.",
    )
    p.add_argument("--matrix", required=True, help="the log-likelihood matrix L (npz)")
    p.add_argument("--models-table", required=True, help="the models table (CSV)")
    p.add_argument("--texts", required=True, help="the matrix's text set (JSONL)")
    p.add_argument("--benchmarks", help="benchmark scores (model_id, tasks 0-100, mean): ridge and leakage fits")
    p.add_argument(
        "--cut-date", help="map only models created before this date, and undated ones (default: all models)"
    )
    p.add_argument("--clip-quantile", type=float, required=True, help="quantile of L clipped from below")
    p.add_argument("--perplexity", type=float, required=True, help="t-SNE perplexity")
    p.add_argument("--max-iter", type=int, required=True, help="t-SNE iterations")
    p.add_argument("--seed", type=int, required=True, help="t-SNE seed")
    p.add_argument("--sample-method", choices=("uniform", "ls", "kl"), required=True, help="text sampling")
    p.add_argument("--n-draws", type=int, required=True, help="texts drawn (with replacement) for the sample")
    p.add_argument("--sample-seed", type=int, required=True, help="seed of the text sample")
    p.add_argument(
        "--alphas", type=float, nargs=3, required=True, help="ridge alpha grid: log10 min, log10 max, number"
    )
    p.add_argument("--leakage-method", choices=("within", "global"), required=True, help="leakage screen")
    p.add_argument("--leakage-group-by", required=True, help="models-table column of the screen's groups")
    p.add_argument("--leakage-threshold", type=float, required=True, help="robust z above which a model is flagged")
    p.add_argument("--out-dir", required=True, help="the published map's directory")
    p.set_defaults(func=run_publish_map)

    p = subparsers.add_parser(
        "place",
        help="place new models on a published map: neighbours, predicted scores, leakage, position",
        description="For each score file (on the map's full text set or on its text sample): the "
        "nearest mapped models by estimated KL (nats per text and bits per byte), predicted benchmark "
        "scores with intervals from the cross-validation residuals, the leakage z when its benchmark "
        "scores are known, and its position on the map's t-SNE (optimised against the fixed map).",
    )
    p.add_argument("--map", required=True, help="the published map's directory (publish-map)")
    p.add_argument("--scores", required=True, nargs="+", help="score files (npz) of the new models")
    p.add_argument("--benchmarks", help="benchmark scores of the new models, for their leakage z")
    p.add_argument("--models-table", help="models table with the new models' groups (a by-group leakage screen)")
    p.add_argument("--neighbours", type=int, required=True, help="nearest mapped models listed per new model")
    p.add_argument("--level", type=float, required=True, help="coverage aimed at by the prediction intervals")
    p.add_argument("--out-table", required=True, help="table stem: writes .csv, .md, .tex and .html")
    p.add_argument("--out-figure", required=True, help="figure stem: writes .png and .pdf")
    p.set_defaults(func=run_place)

    p = subparsers.add_parser(
        "check-placement",
        help="check placed models against what is known of them (relatives, true scores)",
        description="For each placed model with known parents (the demo zoo's lineage): whether a "
        "parent or its base is among its nearest mapped models, and whether its true benchmark mean "
        "lies inside its predicted interval; <stem>_summary gives the shares.",
    )
    p.add_argument("--placement", required=True, help="the placement table (place --out-table, .csv)")
    p.add_argument("--lineage", required=True, help="lineage table (model_id, slug, kind, parents)")
    p.add_argument("--benchmarks", required=True, help="benchmark scores (model_id, mean)")
    p.add_argument("--top", type=int, required=True, help="a relative must be among this many nearest")
    p.add_argument("--out-stem", required=True, help="table stem: writes .csv, .md, .tex and .html")
    p.set_defaults(func=run_check_placement)


def run_publish_map(args: argparse.Namespace) -> int:
    from lmmap import growth
    from lmmap.analysis import inputs
    from lmmap.commands import Step
    from lmmap.errors import InputError
    from lmmap.sheet import created_on_or_after
    from lmmap.texts import load_text_set

    run = Step(
        "publish-map",
        args,
        {"matrix": args.matrix, "models": args.models_table, "texts": args.texts, "benchmarks": args.benchmarks},
    )
    matrix = inputs.load_matrix(args.matrix)
    model_ids = matrix["model_ids"].astype(str).tolist()
    text_set = load_text_set(args.texts)
    if str(matrix["text_set_sha256"]) != text_set.sha256:
        raise InputError(args.texts, "is not the matrix's text set", field="text_set_sha256")
    models = inputs.align(inputs.read_models(args.models_table), model_ids, args.models_table)
    mapped = ~created_on_or_after(models["created"], args.cut_date)  # undated models stay mapped
    if mapped.sum() < 4:
        raise InputError("--cut-date", f"leaves {mapped.sum()} model(s) on the map; at least 4 are needed")
    benchmarks = None
    if args.benchmarks:
        benchmarks = inputs.read_benchmarks(args.benchmarks).set_index("model_id").reindex(model_ids)
    settings = growth.MapSettings(
        clip_quantile=args.clip_quantile,
        perplexity=args.perplexity,
        max_iter=args.max_iter,
        tsne_seed=args.seed,
        sample_method=args.sample_method,
        n_draws=args.n_draws,
        sample_seed=args.sample_seed,
        leakage_method=args.leakage_method,
        leakage_group_by=args.leakage_group_by,
        leakage_threshold=args.leakage_threshold,
        alphas=(args.alphas[0], args.alphas[1], int(args.alphas[2])),
    )
    ids = [m for m, keep in zip(model_ids, mapped) if keep]
    pmap = growth.build_map(matrix["L"][mapped], ids, text_set, models, benchmarks, settings)
    growth.publish_map(args.out_dir, pmap, text_set, run.name, run.inputs, run.params)
    log.info(
        "published %d of %d models (%d later ones left to place); text sample: %d draws, %d unique texts; %.1f s",
        len(ids), len(model_ids), len(model_ids) - len(ids), args.n_draws, len(pmap.sample), time.time() - run.started,
    )  # fmt: skip
    return 0


def run_place(args: argparse.Namespace) -> int:
    from lmmap import growth
    from lmmap.analysis import inputs
    from lmmap.commands import Step
    from lmmap.figures import plot_placement

    run = Step("place", args, {"map": f"{args.map}/manifest.json", "benchmarks": args.benchmarks})
    pmap = growth.load_map(args.map)
    new = [growth.read_new_scores(path) for path in args.scores]
    placed = growth.place_models(pmap, new, args.level)
    benchmarks = inputs.read_benchmarks(args.benchmarks).set_index("model_id") if args.benchmarks else None
    groups = None
    if args.models_table:
        table = inputs.read_csv(args.models_table, required=(pmap.leakage.get("group_by") or "type",))
        groups = table[pmap.leakage.get("group_by") or "type"].astype(str).to_dict()
    frame = growth.placement_table(pmap, placed, args.neighbours, benchmarks, groups)
    run.inputs |= {f"scores:{s.model_id}": s.path for s in new}
    extra = {"placement": "t-SNE objective minimised over each new point with the map fixed", "level": args.level}
    run.table(frame, args.out_table, extra)
    run.figure(plot_placement(pmap, frame), args.out_figure)
    log.info("placed %d model(s) in %.2f s", len(new), time.time() - run.started)
    return 0


def run_check_placement(args: argparse.Namespace) -> int:
    from lmmap import growth
    from lmmap.analysis import inputs
    from lmmap.commands import Step

    run = Step(
        "check-placement",
        args,
        {"placement": args.placement, "lineage": args.lineage, "benchmarks": args.benchmarks},
    )
    placement = inputs.read_csv(args.placement, required=("neighbour_1",))
    lineage = inputs.read_csv(args.lineage, required=("slug", "kind", "parents"))
    benchmarks = inputs.read_benchmarks(args.benchmarks).set_index("model_id")
    checked, summary = growth.check_placement(placement, lineage, benchmarks["mean"], args.top)
    run.table(checked, args.out_stem)
    run.table(summary, f"{args.out_stem}_summary")
    log.info("%s", summary.to_dict("records"))
    return 0
