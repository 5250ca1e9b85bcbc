"""Commands that merge scores into the K×N matrix and turn it into model coordinates."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lmmap.commands import Step
from lmmap.coords import clip_matrix, double_centre, kl_estimate
from lmmap.errors import InputError
from lmmap.matrix import matrix_arrays, merge_scores, missing_models
from lmmap.provenance import read_provenance
from lmmap.sheet import sheet_extras
from lmmap.storage import load_npz, read_json
from lmmap.texts import load_text_set
from lmmap.workflow import model_specs

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export-models", help="write the list of models to map (sheet + demo zoo)")
    p.add_argument("--sheet", help="model sheet TSV")
    p.add_argument("--zoo", required=True, help="the config's zoo section, as JSON")
    p.add_argument("--zoo-dir", help="where the zoo's models are built (needed with an enabled --zoo)")
    p.add_argument("--out", required=True, help="models JSON to write")
    p.set_defaults(func=run_export_models)

    p = subparsers.add_parser("merge", help="merge per-model score files into the K×N matrix")
    p.add_argument("--texts", required=True, help="the text set every score must belong to")
    p.add_argument("--models", required=True, help="models JSON (from the workflow's model list)")
    p.add_argument("--scores", nargs="+", required=True, help="score files, one per model")
    p.add_argument("--out", required=True, help="matrix npz to write")
    p.add_argument("--out-table", required=True, help="models CSV to write")
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="map the models that have scores; score files that do not exist and models of "
        "--models without scores are listed in the provenance (default: an error)",
    )
    p.set_defaults(func=run_merge)

    p = subparsers.add_parser("coordinates", help="clip and double-centre L into coordinates Q")
    p.add_argument("--matrix", required=True, help="the log-likelihood matrix L (npz)")
    p.add_argument(
        "--clip-quantile",
        type=float,
        required=True,
        help="log-likelihoods below this quantile of L are raised to it before centring",
    )
    p.add_argument("--out", required=True, help="coordinates npz to write")
    p.add_argument("--out-kl", required=True, help="KL estimate npz to write")
    p.set_defaults(func=run_coordinates)


def run_export_models(args: argparse.Namespace) -> int:
    step = Step("export-models", args, {"sheet": args.sheet})
    zoo = json.loads(args.zoo)
    if zoo.get("enabled") and not args.zoo_dir:
        raise InputError("--zoo-dir", "an enabled zoo needs the directory its models are built in")
    specs = model_specs({"models": args.sheet, "zoo": zoo}, args.zoo_dir)
    extras = sheet_extras(args.sheet)[1] if args.sheet else {}
    # the sheet's own extra columns ride along: the models table keeps them, maps can colour by them
    models = [{**extras.get(spec.model_id, {}), **spec.as_dict()} for spec in specs]
    step.json(args.out, {"models": models}, extra={"n_models": len(specs)})
    return 0


def model_table(models: list[dict], model_ids: list[str], L: np.ndarray, score_paths: list[str]) -> pd.DataFrame:
    """One row per model in matrix order: the sheet fields, parameters counted at load time and
    the mean log-likelihood over the text set."""
    by_id = {m["model_id"]: m for m in models}
    rows = []
    for model_id, row, path in zip(model_ids, L, score_paths):
        loaded = read_provenance(path).get("model", {})
        rows.append(
            {
                **by_id.get(model_id, {"model_id": model_id}),
                "n_params": loaded.get("n_params"),
                "mean_loglik": float(row.mean()),
            }
        )
    return pd.DataFrame(rows)


def read_models_json(path: str) -> list[dict]:
    """The workflow's model list: {"models": [{"model_id": str, ...}, ...]}."""
    record = read_json(path)
    models = record.get("models") if isinstance(record, dict) else None
    if not isinstance(models, list):
        raise InputError(path, "expected an object with a list `models`", field="models")
    for k, model in enumerate(models):
        if not isinstance(model, dict) or not isinstance(model.get("model_id"), str):
            raise InputError(path, "model_id missing or not a string", record=k, field="model_id")
    return models


def run_merge(args: argparse.Namespace) -> int:
    text_set = load_text_set(args.texts)
    models = read_models_json(args.models)
    score_paths = [p for p in args.scores if not args.allow_missing or Path(p).is_file()]
    L, model_ids = merge_scores(score_paths, text_set)
    absent = missing_models([m["model_id"] for m in models], model_ids, args.models, args.allow_missing)
    if absent:
        log.warning("building the map without %d model(s) that have no scores: %s", len(absent), absent)
    table = model_table(models, model_ids, L, score_paths)  # reads every sidecar before anything is written
    inputs = {"texts": args.texts, "models": args.models, **{f"scores:{m}": p for m, p in zip(model_ids, score_paths)}}
    step = Step("merge", args, inputs)
    extra = {
        "text_set_sha256": text_set.sha256,
        "shape": list(L.shape),
        "allow_missing": args.allow_missing,
        "missing_models": absent,
    }
    step.npz(args.out, extra, **matrix_arrays(L, model_ids, text_set))
    step.csv(table, args.out_table, extra)
    return 0


def run_coordinates(args: argparse.Namespace) -> int:
    step = Step("coordinates", args, {"matrix": args.matrix})
    matrix = load_npz(args.matrix, required=("L", "model_ids", "text_ids", "domains"))
    clipped, clip_value = clip_matrix(matrix["L"], args.clip_quantile)
    Q = double_centre(clipped)
    ids = {k: matrix[k] for k in ("model_ids", "text_ids", "domains")}
    extra = {"clip_value": clip_value}
    step.npz(args.out, extra, Q=Q, clip_value=np.array(clip_value), **ids)
    step.npz(args.out_kl, extra, KL=kl_estimate(Q), model_ids=matrix["model_ids"])
    return 0
