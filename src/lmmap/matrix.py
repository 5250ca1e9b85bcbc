"""Merging per-model score files into the K×N log-likelihood matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmmap.errors import InputError
from lmmap.provenance import read_provenance, sidecar_path
from lmmap.storage import load_npz
from lmmap.texts import TextSet

# fp32 log-softmax can round a certain token's log-prob just above 0; more than this is an error
POSITIVE_TOLERANCE = 1e-3
SCORE_ARRAYS = ("loglik", "n_tokens", "truncated", "text_ids", "text_set_sha256", "model_id")


def load_scores(path: str | Path, text_set: TextSet) -> dict[str, np.ndarray]:
    """Load one model's score file and check it belongs to `text_set` and is complete and finite."""
    scores = load_npz(path, required=SCORE_ARRAYS)
    model = str(scores["model_id"])
    if not sidecar_path(path).is_file():
        raise InputError(
            path, f"model '{model}' has no provenance sidecar {sidecar_path(path).name}: its scoring did not finish"
        )
    if not isinstance(read_provenance(path), dict):
        raise InputError(sidecar_path(path), "not a provenance record: not a JSON object")
    if str(scores["text_set_sha256"]) != text_set.sha256:
        raise InputError(
            path,
            f"model '{model}' was scored on a different text set "
            f"(sha256 {str(scores['text_set_sha256'])[:12]}…, expected {text_set.sha256[:12]}…)",
            field="text_set_sha256",
        )
    loglik = scores["loglik"]
    if loglik.dtype.kind != "f":  # strings, complex numbers, objects: not log-likelihoods
        raise InputError(path, f"model '{model}': log-likelihoods stored as {loglik.dtype}, not floats", field="loglik")
    if loglik.shape != (len(text_set),):
        raise InputError(
            path, f"model '{model}' has {loglik.shape} scores, expected ({len(text_set)},)", field="loglik"
        )
    if scores["text_ids"].tolist() != text_set.ids:
        raise InputError(path, f"model '{model}': text ids differ from the text set", field="text_ids")
    bad = np.flatnonzero(~np.isfinite(loglik))
    if bad.size:
        raise InputError(
            path,
            f"model '{model}' has {bad.size} non-finite score(s), first at text '{text_set.ids[bad[0]]}'",
            record=int(bad[0]),
            field="loglik",
        )
    positive = np.flatnonzero(loglik > POSITIVE_TOLERANCE)
    if positive.size:  # a sum of log-probabilities is never above 0
        raise InputError(
            path,
            f"model '{model}' has {positive.size} positive log-likelihood(s), first "
            f"{loglik[positive[0]]:g} at text '{text_set.ids[positive[0]]}'",
            record=int(positive[0]),
            field="loglik",
        )
    return scores


def matrix_arrays(L: np.ndarray, model_ids: list[str], text_set: TextSet) -> dict[str, np.ndarray]:
    """The arrays of a matrix file (docs/architecture.md, Matrix): L and its row and column labels."""
    return {
        "L": L,
        "model_ids": np.array(model_ids),
        "text_ids": np.array(text_set.ids),
        "domains": np.array(text_set.domains),
        "text_set_sha256": np.array(text_set.sha256),
    }


def merge_scores(score_paths: list[str | Path], text_set: TextSet) -> tuple[np.ndarray, list[str]]:
    """Stack the score files into L [K, N] (float64) with the model ids in the given order.

    Every file is checked before anything is refused, so one run names every bad file at once."""
    rows, model_ids, problems = [], [], []
    for path in score_paths:
        try:
            scores = load_scores(path, text_set)
        except InputError as exc:
            problems.append(exc)
            continue
        rows.append(scores["loglik"].astype(np.float64))
        model_ids.append(str(scores["model_id"]))
    if len(problems) == 1:
        raise problems[0]
    if problems:
        listing = "\n".join(f"  - {exc}" for exc in problems)
        raise InputError(problems[0].path, f"{len(problems)} score files cannot be merged:\n{listing}")
    duplicated = sorted({m for m in model_ids if model_ids.count(m) > 1})
    if duplicated:
        raise InputError(score_paths[0], f"model(s) appear twice in the merge: {duplicated}", field="model_id")
    return np.vstack(rows), model_ids


def missing_models(
    expected: list[str], merged: list[str], source: str | Path, allow_missing: bool = False
) -> list[str]:
    """The expected models without scores, in sheet order. Unless `allow_missing`, any is an error
    that names every one of them (a map silently lacking models would mislead)."""
    absent = [m for m in expected if m not in set(merged)]
    if absent and not allow_missing:
        raise InputError(
            source,
            f"{len(absent)} of {len(expected)} models have no scores: {absent}; "
            "rerun their scoring, or list them in the config's `merge: {exclude: [...]}` to map the others "
            "(the merge then runs with allow_missing)",
            field="model_id",
        )
    return absent
