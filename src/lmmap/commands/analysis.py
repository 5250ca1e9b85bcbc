"""`python -m lmmap analyze <analysis>`: the paper's figures and tables (see lmmap.analysis)."""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import pandas as pd

from lmmap.analysis import inputs, plots
from lmmap.commands import Step
from lmmap.errors import InputError
from lmmap.figures import plot_map
from lmmap.palette import category_colours, read_colour_table

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("analyze", help="the paper's analyses: maps, tables, validation")
    analyses = parser.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    for name, (helptext, add_arguments, func) in ANALYSES.items():
        sub = analyses.add_parser(name, help=helptext, description=helptext)
        add_arguments(sub)
        sub.set_defaults(func=func)


def _step(args: argparse.Namespace, analysis: str, **input_paths) -> Step:
    """The run of one analysis: every output's sidecar records these inputs and the arguments."""
    return Step(f"analyze {analysis}", args, input_paths, exclude=("analysis",))


def _data(args: argparse.Namespace, need_benchmarks: bool = False) -> inputs.AnalysisData:
    return inputs.AnalysisData.load(
        args.matrix,
        args.models_table,
        getattr(args, "coordinates", None),
        getattr(args, "benchmarks", None),
        need_benchmarks,
    )


def _common(p: argparse.ArgumentParser, coordinates=False, benchmarks=False, required_benchmarks=False):
    p.add_argument("--matrix", required=True, help="the log-likelihood matrix L (npz)")
    p.add_argument("--models-table", required=True, help="the models table (CSV)")
    if coordinates:
        p.add_argument("--coordinates", required=True, help="the coordinates Q (npz)")
    if benchmarks:
        p.add_argument(
            "--benchmarks",
            required=required_benchmarks,
            help="the benchmark scores (CSV: model_id, tasks 0-100, mean)",
        )


# ------------------------------------------------------------------------------------------ maps
def _args_maps(p):
    _common(p, coordinates=True, benchmarks=True)
    p.add_argument("--embedding", required=True, help="t-SNE coordinates CSV (model_id, x, y)")
    p.add_argument(
        "--variables",
        nargs="+",
        required=True,
        help="colouring variables, one map each (a models-table column works too)",
    )
    p.add_argument("--annotate", action="store_true", help="write model ids next to the points")
    p.add_argument("--type-colours", help="TSV of fixed type colours (type, colour_rgba), e.g. the paper's")
    p.add_argument("--out-dir", required=True, help="writes map_<variable>.{png,pdf} there")
    p.add_argument("--out-variables", help="CSV of every model's colouring variables")


def run_maps(args) -> int:
    from lmmap.analysis import tsne_map

    run, data = (
        _step(
            args,
            "maps",
            matrix=args.matrix,
            coordinates=args.coordinates,
            models=args.models_table,
            benchmarks=args.benchmarks,
            embedding=args.embedding,
        ),
        _data(args),
    )
    variables = tsne_map.map_variables(
        data.model_ids, data.Q, data.L, data.domains, data.models, data.benchmarks, data.tasks
    )
    embedding = inputs.read_csv(args.embedding, required=("x", "y"))
    columns = ["model_id", *(c for c in embedding.columns if c not in variables)]  # derived variables win
    points = embedding[columns].reset_index(drop=True).merge(variables, on="model_id", how="left")
    for variable in args.variables:
        if variable not in points or points[variable].isna().all():
            raise InputError(args.benchmarks or args.models_table, "no values to colour the map by", field=variable)
        fixed = read_colour_table(args.type_colours) if variable == "type" else None
        fig = plot_map(points, variable, annotate=args.annotate, colours=fixed, label=tsne_map.variable_label(variable))
        run.figure(fig, f"{args.out_dir}/map_{variable}")
    if args.out_variables:
        run.csv(variables, args.out_variables)
    return 0


# ------------------------------------------------------------------------------- dimensionality
def _args_dimensionality(p):
    p.add_argument("--coordinates", required=True, help="the coordinates Q (npz)")
    p.add_argument(
        "--levels",
        nargs="+",
        type=float,
        required=True,
        help="cumulative explained-variance levels to count components for",
    )
    p.add_argument("--out-stem", required=True, help="writes <stem>.{csv,md,tex,html}")
    p.add_argument("--figure-stem", help="the cumulative explained-variance curve, writes <stem>.{png,pdf}")
    p.add_argument("--out-curve", help="CSV of the curve, with the components reaching each level")


def run_dimensionality(args) -> int:
    from lmmap.analysis.dimensionality import dimensionality_table, variance_curve
    from lmmap.figures import plot_pca_variance

    run = _step(args, "dimensionality", coordinates=args.coordinates)
    table, cumulative = dimensionality_table(inputs.load_coordinates(args.coordinates)["Q"], args.levels)
    marks = dict(zip(table["variance_level"], table["components"]))
    extra = {"components": marks}
    run.table(table, args.out_stem, extra=extra)
    if args.out_curve:
        run.csv(variance_curve(cumulative, table), args.out_curve, extra)
    if args.figure_stem:
        run.figure(plot_pca_variance(cumulative, marks), args.figure_stem, extra)
    return 0


# ------------------------------------------------------------------------------- KL validation
def _args_kl(p):
    p.add_argument("--coordinates", required=True, help="the coordinates Q (npz)")
    p.add_argument("--texts", required=True, help="the reference text set (JSONL)")
    p.add_argument("--models", required=True, help="the model list (JSON of model specs)")
    p.add_argument("--model-ids", nargs="*", default=[], help="models to compare (default: all)")
    p.add_argument("--max-models", type=int, required=True, help="per tokenizer group")
    p.add_argument("--n-texts", type=int, required=True, help="reference texts for the token level")
    p.add_argument("--n-samples", type=int, required=True, help="sampled texts per model (text level)")
    p.add_argument("--sample-tokens", type=int, help="tokens per sample (default: mean reference length)")
    p.add_argument("--seed", type=int, required=True, help="seed of the text choice and the sampling")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--dtype", required=True, help="dtype the models are loaded in")
    p.add_argument("--out-stem", required=True, help="per-pair table")
    p.add_argument("--summary-stem", required=True, help="correlation table")
    p.add_argument("--figure-stem", required=True, help="log-log scatter, measured vs estimated KL")


def run_kl_validation(args) -> int:
    from lmmap.analysis.kl_validation import run_validation

    run = _step(args, "validate-kl", coordinates=args.coordinates, texts=args.texts, models=args.models)
    table, summary, info = run_validation(
        args.coordinates,
        args.texts,
        args.models,
        args.model_ids,
        args.max_models,
        args.n_texts,
        args.n_samples,
        args.sample_tokens,
        args.seed,
        args.device,
        args.dtype,
    )
    extra = {"models": info}
    run.table(table, args.out_stem, extra)
    run.table(summary, args.summary_stem, extra)
    run.figure(
        plots.kl_scatter(
            table, "kl_estimate", {"kl_token": "token-level KL", "kl_text": "text-level KL (Monte Carlo)"}
        ),
        args.figure_stem,
        extra,
    )
    return 0


# ---------------------------------------------------------------------------------- prediction
def _args_predict(p):
    _common(p, coordinates=True, benchmarks=True, required_benchmarks=True)
    p.add_argument(
        "--features",
        nargs="+",
        required=True,
        choices=["Q", "L"],
        help="Q, and L: the clipped matrix Q is built from (coordinates' clip_value)",
    )
    p.add_argument(
        "--cv",
        nargs="+",
        required=True,
        choices=["group", "kfold"],
        help="outer cross-validation: grouped by --group-by, and/or plain K-fold",
    )
    p.add_argument("--group-by", required=True, help="models-table column of the grouped CV")
    p.add_argument("--seeds", type=int, required=True, help="repetitions of the outer CV with shuffled folds")
    p.add_argument("--splits", type=int, required=True, help="outer folds")
    p.add_argument("--inner-splits", type=int, required=True, help="inner folds choosing the ridge alpha")
    p.add_argument(
        "--alphas",
        nargs=3,
        type=float,
        metavar=("LOG10_MIN", "LOG10_MAX", "N"),
        help="alpha grid of the benchmark targets (default: the paper's, 1 9 9)",
    )
    p.add_argument(
        "--mean-logp-alphas",
        nargs=3,
        type=float,
        metavar=("LOG10_MIN", "LOG10_MAX", "N"),
        help="alpha grid of the mean log-likelihood target, whose predictions are not clipped "
        "(default: the paper's, -4 4 9)",
    )
    p.add_argument(
        "--score-range",
        nargs=2,
        type=float,
        required=True,
        metavar=("MIN", "MAX"),
        help="benchmark predictions are clipped to this range",
    )
    p.add_argument(
        "--max-components",
        type=int,
        required=True,
        help="exact ridge while a feature matrix's rank bound min(K - 1, N) is at most this; above it, "
        "ridge on this many principal-component scores (randomized SVD, fixed seed)",
    )
    p.add_argument("--jobs", type=int, default=1, help="parallel workers over (features, CV, seed) runs")
    p.add_argument("--out-stem", required=True, help="summary table")
    p.add_argument("--predictions", required=True, help="CSV of every out-of-fold prediction")
    p.add_argument(
        "--figure-stem",
        required=True,
        help="scatter of features Q under K-fold CV (the findings' ridge finding; else the first "
        "features and CV): seed-averaged prediction vs true score",
    )


def run_predict(args) -> int:
    from lmmap.analysis import prediction

    run = _step(
        args,
        "predict",
        matrix=args.matrix,
        coordinates=args.coordinates,
        models=args.models_table,
        benchmarks=args.benchmarks,
    )
    data = _data(args, need_benchmarks=True)
    data.require_column(args.group_by, "to group the cross-validation by")
    features, targets, groups = prediction.prediction_inputs(data, args.features, args.group_by)
    summary, per_seed, predictions = prediction.run_prediction(
        features,
        targets,
        groups,
        args.cv,
        range(args.seeds),
        prediction.alpha_grid(*(args.alphas or prediction.TASK_ALPHAS)),
        args.splits,
        args.inner_splits,
        tuple(args.score_range),
        args.jobs,
        group_by=args.group_by,
        mean_logp_alphas=prediction.alpha_grid(*(args.mean_logp_alphas or prediction.MEAN_LOGP_ALPHAS)),
        max_components=args.max_components,
    )
    components = prediction.components_kept((len(targets), data.L.shape[1]), args.max_components)
    ridge = {"path": "exact" if components is None else "principal components", "components": components}
    extra = {"grouping": sorted(set(summary["grouping"])), "clip_value": data.clip_value, "ridge": ridge}
    run.table(summary, args.out_stem, extra)
    run.csv(predictions, args.predictions, {"ridge": ridge})
    averaged = prediction.seed_mean_predictions(predictions)
    features, cv = prediction.shown_run(args.features, args.cv)
    shown = averaged[(averaged["features"] == features) & (averaged["cv"] == cv)]
    cv_name = f"{args.splits}-fold CV" if cv == "kfold" else f"{args.splits}-fold CV grouped by {args.group_by}"
    title = f"Ridge prediction from {features}, out of fold ({cv_name}), predictions averaged over {args.seeds} seeds"
    run.figure(
        plots.prediction_scatter(
            shown, data.mean_loglik(), title, summary=summary[(summary["features"] == features) & (summary["cv"] == cv)]
        ),
        args.figure_stem,
        extra,
    )
    return 0


# ------------------------------------------------------------------------- perplexity baseline
def _args_baseline(p):
    _common(p, benchmarks=True, required_benchmarks=True)
    p.add_argument("--type-colours", help="TSV of fixed type colours (type, colour_rgba), e.g. the paper's")
    p.add_argument("--out-stem", required=True, help="writes <stem>.{csv,md,tex,html}")
    p.add_argument("--figure-stem", required=True, help="scatter per target, writes <stem>.{png,pdf}")


def run_baseline(args) -> int:
    from lmmap.analysis.prediction import baseline_correlations

    run = _step(args, "perplexity-baseline", matrix=args.matrix, models=args.models_table, benchmarks=args.benchmarks)
    data = _data(args, need_benchmarks=True)
    targets = data.benchmarks.set_index("model_id")[[*data.tasks, "mean"]]
    table = baseline_correlations(data.mean_loglik(), targets)
    run.table(table, args.out_stem)
    types = data.models.set_index("model_id")["type"].astype(str)
    colours = read_colour_table(args.type_colours)
    run.figure(plots.baseline_scatter(data.mean_loglik(), targets, types, table, colours), args.figure_stem)
    return 0


# ------------------------------------------------------------------------------------- leakage
def _args_leakage(p):
    _common(p, benchmarks=True, required_benchmarks=True)
    p.add_argument("--embedding", required=True, help="t-SNE coordinates CSV (model_id, x, y)")
    p.add_argument(
        "--method",
        required=True,
        choices=["within", "global"],
        help="within: on every task score, centred per --group-by group; global: one line on the "
        "benchmark mean (docs/leakage.md)",
    )
    p.add_argument("--group-by", required=True, help="models-table column of the groups (method within)")
    p.add_argument("--type-colours", help="TSV of fixed type colours (type, colour_rgba), e.g. the paper's")
    p.add_argument("--threshold", type=float, required=True, help="flag robust z-scores above this")
    p.add_argument("--show", type=int, required=True, help="table rows: flagged models, at least this many")
    p.add_argument("--known", help="CSV by model_id with what is known about each model (e.g. the zoo lineage)")
    p.add_argument(
        "--known-columns",
        nargs="*",
        default=["kind", "reference_fraction"],
        help="columns of --known to add to the table (ground truth for the screen)",
    )
    p.add_argument("--out-stem", required=True, help="writes <stem>.{csv,md,tex,html}")
    p.add_argument("--figure-stem", required=True, help="scatter against the benchmark mean")
    p.add_argument("--map-stem", required=True, help="the t-SNE map with the flagged models marked")


def run_leakage(args) -> int:
    from lmmap.analysis import leakage, tsne_map

    run = _step(
        args,
        "leakage",
        matrix=args.matrix,
        models=args.models_table,
        benchmarks=args.benchmarks,
        embedding=args.embedding,
        known=args.known,
    )
    data = _data(args, need_benchmarks=True)
    data.require_column(args.group_by, "to group the leakage screen by")
    screen, fit, n_screened = leakage.screen_models(data, args.group_by, args.threshold, args.method)
    if args.known:
        known = inputs.read_csv(args.known, required=tuple(args.known_columns))[args.known_columns]
        screen = screen.merge(known, left_on="model_id", right_index=True, how="left")
    flagged = screen.loc[screen["flagged"], "model_id"].tolist()
    extra = {
        "flagged": flagged,
        "method": args.method,
        "screened": n_screened,
        "fit": {"coefficients": fit.coef_.tolist(), "intercept": float(fit.intercept_)},
    }
    shown = screen.head(max(args.show, len(flagged)))
    run.table(shown, args.out_stem, extra, display=leakage.readable(shown))
    line = None
    if args.method == "global":
        xs = np.linspace(screen["benchmark_mean"].min(), screen["benchmark_mean"].max(), 50)
        line = (xs, fit.predict(xs[:, None]))
    # the palette of every model's type: the scatter shows only the scored models
    colours = category_colours(data.models["type"].astype(str), read_colour_table(args.type_colours))
    run.figure(plots.leakage_scatter(screen, line, colours), args.figure_stem, extra)
    points = inputs.read_csv(args.embedding, required=("x", "y", "type")).reset_index(drop=True)
    fig = plot_map(
        points,
        "type",
        title=f"Model map: {len(flagged)} model(s) flagged by the leakage screen",
        colours=colours,
        label=tsne_map.variable_label("type"),
        highlight=flagged,
    )
    run.figure(fig, args.map_stem, extra)
    return 0


# ------------------------------------------------------------------------------- interpolation
def _args_interpolation(p):
    p.add_argument("--texts", required=True, help="the reference text set (JSONL)")
    p.add_argument("--grid", required=True, help='JSON text: a list of {"alpha", "beta", "model_id"}')
    p.add_argument("--scores", nargs="+", required=True, help="score npz of every grid model")
    p.add_argument("--name", required=True, help="the grid's name (figure title)")
    p.add_argument("--out-matrix", required=True, help="merged grid matrix (npz)")
    p.add_argument("--out-stem", required=True, help="per-grid-point table, writes <stem>.{csv,md,tex,html}")
    p.add_argument("--summary-stem", required=True, help="one-row summary: affine fit of the grid in PCA")
    p.add_argument("--figure-stem", required=True, help="weight space, PCA plane and mean log-likelihood")
    clip = p.add_mutually_exclusive_group()
    clip.add_argument("--clip-value", type=float, help="raise log-likelihoods below this to it (the paper: -1400)")
    clip.add_argument(
        "--map-coordinates",
        help="the map's coordinates npz: clip with its stored clip value, as when models are "
        "appended to an existing map (not a quantile recomputed on the grid)",
    )
    p.add_argument(
        "--geometry",
        help='JSON file {"norm1", "norm2", "angle_deg"} measured on the weights '
        "(lmmap.analysis.interpolation.weight_geometry): the weight-space panel",
    )


def run_interpolation(args) -> int:
    from lmmap.analysis.interpolation import grid_coordinates, grid_summary, interpolation_table, read_geometry
    from lmmap.coords import stored_clip_value
    from lmmap.matrix import matrix_arrays, merge_scores
    from lmmap.texts import load_text_set

    run = _step(
        args,
        "interpolation",
        texts=args.texts,
        map_coordinates=args.map_coordinates,
        **{f"score:{i}": path for i, path in enumerate(args.scores)},
    )
    text_set = load_text_set(args.texts)
    L, model_ids = merge_scores(args.scores, text_set)
    alphas, betas = grid_coordinates(json.loads(args.grid), model_ids, args.grid)
    run.npz(args.out_matrix, **matrix_arrays(L, model_ids, text_set), alpha=np.array(alphas), beta=np.array(betas))
    geometry = None
    if args.geometry:
        run.inputs["geometry"] = args.geometry
        geometry = read_geometry(args.geometry)
    clip_value = stored_clip_value(args.map_coordinates) if args.map_coordinates else args.clip_value
    extra = {
        "clip_value": clip_value,
        "clip_source": "map" if args.map_coordinates else ("fixed" if clip_value is not None else "none"),
        "n_clipped": int((clip_value > L).sum()) if clip_value is not None else 0,
        "geometry": geometry,
    }
    table = interpolation_table(L, model_ids, alphas, betas, clip_value, geometry)
    run.table(table, args.out_stem, extra)
    summary = grid_summary(table).assign(clip_value=clip_value, n_clipped=extra["n_clipped"])
    for key, value in (extra["geometry"] or {}).items():  # the measured weight-space triangle
        summary[key] = value
    run.table(summary, args.summary_stem, extra)
    title = args.name + (f" (clipped at {clip_value:.1f})" if clip_value is not None else "")
    run.figure(plots.interpolation_figure(table, title), args.figure_stem, extra)
    return 0


# ---------------------------------------------------------------------------------- model list
def _args_model_list(p):
    _common(p, benchmarks=True)
    p.add_argument("--out-stem", required=True, help="writes <stem>.{csv,md,tex,html}")


def run_model_list(args) -> int:
    from lmmap.analysis.model_list import model_list, readable_model_list

    run = _step(args, "model-list", matrix=args.matrix, models=args.models_table, benchmarks=args.benchmarks)
    data = _data(args)
    table = model_list(data.model_ids, data.L, data.models, data.benchmarks)
    run.table(table, args.out_stem, display=readable_model_list(table))
    return 0


# ------------------------------------------------------------------------------------ findings
def _args_findings(p):
    p.add_argument("--kl-estimate", required=True, help="pairwise KL estimate (coords/kl_estimate.npz)")
    p.add_argument("--lineage", help="the demo zoo's lineage table (kind, family, parents)")
    p.add_argument("--kl-summary", help="kl_validation/summary.csv")
    p.add_argument("--ridge", help="prediction/ridge.csv (needs --baseline)")
    p.add_argument("--baseline", help="baseline/loglik_correlation.csv")
    p.add_argument("--leakage", help="leakage/leakage.csv")
    p.add_argument("--grid-summaries", nargs="*", default=[], help="interpolation/<grid>_summary.csv")
    p.add_argument("--out-stem", required=True, help="writes <stem>.{csv,md,tex,html}")


def run_findings(args) -> int:
    from pathlib import Path

    from lmmap.analysis import findings as f

    run = _step(
        args,
        "findings",
        kl_estimate=args.kl_estimate,
        lineage=args.lineage,
        kl_summary=args.kl_summary,
        ridge=args.ridge,
        baseline=args.baseline,
        leakage=args.leakage,
        **{f"grid:{Path(p).stem}": p for p in args.grid_summaries},
    )
    kl = inputs.load_kl_estimate(args.kl_estimate)
    rows = f.lineage_findings(kl, pd.read_csv(args.lineage, keep_default_na=False)) if args.lineage else []
    if args.kl_summary:
        rows.append(f.kl_finding(pd.read_csv(args.kl_summary)))
    if args.ridge:
        if not args.baseline:
            raise InputError(args.ridge, "the ridge finding needs --baseline (mean log-likelihood correlations)")
        rows += f.prediction_finding(pd.read_csv(args.ridge), pd.read_csv(args.baseline))
    if args.leakage:
        rows += f.leakage_finding(pd.read_csv(args.leakage))
    rows += f.grid_findings({Path(p).stem.removesuffix("_summary"): pd.read_csv(p) for p in args.grid_summaries})
    frame, shown = f.table(rows)
    run.table(frame, args.out_stem, display=shown)
    return 0


# ------------------------------------------------------------------------------ resampling error
def _args_resampling_error(p):
    p.add_argument("--coordinates", required=True, help="the coordinates Q (npz)")
    p.add_argument(
        "--methods",
        nargs="+",
        required=True,
        choices=["uniform", "ls", "kl"],
        help="text sampling probabilities (uniform is always measured: the summary's reference)",
    )
    p.add_argument(
        "--fractions",
        nargs="+",
        type=float,
        required=True,
        help="numbers of draws as fractions of the N texts (N/2 and N are always added)",
    )
    p.add_argument("--seeds", type=int, required=True, help="samples per method and number of draws")
    p.add_argument("--out-stem", required=True, help="error per method and draws: <stem>.{csv,md,tex,html}")
    p.add_argument("--summary-stem", required=True, help="draws matching uniform's error at N/2 and N")
    p.add_argument("--figure-stem", required=True, help="error against unique texts: <stem>.{png,pdf}")


def run_resampling_error(args) -> int:
    from lmmap.analysis import resampling_error

    run = _step(args, "resampling-error", coordinates=args.coordinates)
    Q = inputs.load_coordinates(args.coordinates)["Q"]
    methods = ["uniform", *(m for m in args.methods if m != "uniform")]
    draws = resampling_error.draw_grid(Q.shape[1], args.fractions)
    measured = resampling_error.measure_errors(Q, methods, draws, args.seeds)
    table = resampling_error.error_table(measured, Q.shape[1])
    summary = resampling_error.matching_draws(table, Q.shape[1])
    extra = {"n_models": Q.shape[0], "n_texts": Q.shape[1], "interpolation": "log-log on the measured mean curve"}
    run.table(table, args.out_stem, extra)
    run.table(summary, args.summary_stem, extra)
    run.figure(resampling_error.error_figure(table, *Q.shape, args.seeds), args.figure_stem, extra)
    return 0


# ------------------------------------------------------------------------------ map uncertainty
def _args_map_uncertainty(p):
    p.add_argument("--coordinates", required=True, help="the coordinates Q (npz)")
    p.add_argument("--embedding", required=True, help="the reference t-SNE map (model_id, x, y, colour columns)")
    p.add_argument("--hue", required=True, help="embedding column colouring the points and ellipses")
    p.add_argument("--type-colours", help="TSV of fixed type colours (type, colour_rgba), e.g. the paper's")
    p.add_argument("--replicates", type=int, required=True, help="bootstrap draws of the texts")
    p.add_argument("--max-iter", type=int, required=True, help="t-SNE iterations per replicate (at least 250)")
    p.add_argument("--perplexity", type=float, required=True, help="t-SNE perplexity (the map's)")
    p.add_argument("--seed", type=int, required=True, help="seed of the first replicate (then +1 per replicate)")
    p.add_argument("--out-stem", required=True, help="per-model spread: <stem>.{csv,md,tex,html}")
    p.add_argument("--pairs", required=True, help="CSV: KL estimate and its standard error per model pair")
    p.add_argument("--kl-se", required=True, help="npz: KL, KL_se [K, K], model_ids")
    p.add_argument("--figure-stem", required=True, help="map with 1-sigma ellipses: <stem>.{png,pdf}")


def run_map_uncertainty(args) -> int:
    from lmmap.analysis import map_uncertainty

    run = _step(args, "map-uncertainty", coordinates=args.coordinates, embedding=args.embedding)
    points = inputs.read_csv(args.embedding, required=("model_id", "x", "y"))
    if args.hue not in points:
        raise InputError(args.embedding, "no such column to colour the map by", field=args.hue)
    model_ids = points["model_id"].astype(str).tolist()
    Q = inputs.coordinates_in_order(args.coordinates, model_ids, args.embedding)
    reference = points[["x", "y"]].to_numpy(dtype=float)
    boot = map_uncertainty.bootstrap_map(Q, args.replicates, args.seed, reference, args.perplexity, args.max_iter)
    extra = {
        "replicates": args.replicates,
        "tsne_max_iter_per_replicate": args.max_iter,
        "mean_unique_texts": float(boot.unique_texts.mean()),
    }
    table = map_uncertainty.model_table(model_ids, reference, boot)
    run.table(table, args.out_stem, extra)
    run.csv(map_uncertainty.pair_table(model_ids, boot), args.pairs)
    run.npz(args.kl_se, extra, KL=boot.kl, KL_se=boot.kl_se, model_ids=np.asarray(model_ids))
    fixed = read_colour_table(args.type_colours) if args.hue == "type" else None
    shown = table.assign(**{args.hue: points[args.hue].to_numpy()})
    run.figure(
        map_uncertainty.ellipse_figure(shown, args.hue, args.replicates, args.max_iter, fixed), args.figure_stem, extra
    )
    return 0


ANALYSES = {
    "maps": (
        "the t-SNE map, one figure per colouring (models-table columns and derived variables)",
        _args_maps,
        run_maps,
    ),
    "dimensionality": ("PCA components reaching each variance level", _args_dimensionality, run_dimensionality),
    "validate-kl": ("KL measured from the models against the coordinate estimate", _args_kl, run_kl_validation),
    "predict": ("ridge prediction of benchmark scores from Q and from L", _args_predict, run_predict),
    "perplexity-baseline": ("correlation of mean log-likelihood with each benchmark", _args_baseline, run_baseline),
    "leakage": ("flag models whose log-likelihood exceeds what their benchmark predicts", _args_leakage, run_leakage),
    "interpolation": (
        "weight-interpolation grid: weight space, PCA and linear prediction",
        _args_interpolation,
        run_interpolation,
    ),
    "model-list": ("the model list (paper Appendix L)", _args_model_list, run_model_list),
    "findings": ("the paper's findings checked on this run's outputs", _args_findings, run_findings),
    "resampling-error": (
        "map error of text subsets drawn uniformly, by likelihood variance (LS) and by KL",
        _args_resampling_error,
        run_resampling_error,
    ),
    "map-uncertainty": (
        "bootstrap over texts: each model's 1-sigma ellipse on the map, KL standard errors",
        _args_map_uncertainty,
        run_map_uncertainty,
    ),
}
