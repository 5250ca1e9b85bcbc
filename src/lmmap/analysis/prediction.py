"""Predicting benchmark scores from the model coordinates (paper Tables 2, 7-9; Figs. 8, 18).

For each feature matrix (Q, and raw L for comparison), each outer cross-validation (GroupKFold by
model type, so no type is in both train and test, and plain KFold) and each seed, a ridge model per
target is fitted on the training fold, with alpha chosen on a log grid by an inner 5-fold CV, and
its test-fold predictions are clipped to the score range. Pearson and Spearman correlations of the
pooled out-of-fold predictions are then summarised as mean ± std over seeds.

Two exact shortcuts keep the paper-sized run (K = 1,018, N = 10,000) fast:
- the features are centred and replaced by their coordinates in the row space of X (a K x K
  matrix): ridge with an intercept gives identical predictions, because its solution always lies in
  the span of the (centred) training rows;
- all alphas and targets share one inner CV: each inner fold needs one eigendecomposition, and each
  target keeps the alpha with the lowest CV mean squared error, which is what
  `RidgeCV(alphas, cv=inner, scoring="neg_mean_squared_error")` chooses for it (a test checks this);
  the outer-fold model itself is sklearn's `Ridge` with those per-target alphas.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import pearsonr, spearmanr
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, KFold

log = logging.getLogger(__name__)
CV_KINDS = ("group", "kfold")


def alpha_grid(log10_min: float, log10_max: float, num: int) -> np.ndarray:
    return np.logspace(log10_min, log10_max, int(num))


def ridge_basis(X: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """Coordinates of the column-centred rows of X in their own span (K x rank): ridge-equivalent."""
    X = np.asarray(X, dtype=np.float64)
    centred = X - X.mean(axis=0)
    eigenvalues, vectors = np.linalg.eigh(centred @ centred.T)
    keep = eigenvalues > rtol * max(eigenvalues.max(), 0.0)
    return vectors[:, keep] * np.sqrt(eigenvalues[keep])


def select_alphas(X: np.ndarray, Y: np.ndarray, alphas: np.ndarray, inner_cv) -> np.ndarray:
    """Per target (column of Y), the alpha with the lowest inner-CV mean squared error.

    Each inner fit is ridge with an intercept in its dual form: one eigendecomposition of the centred
    training Gram matrix serves every alpha and every target (sklearn's Ridge refits per alpha).
    """
    squared_errors = np.zeros((len(alphas), Y.shape[1]))
    for train, valid in inner_cv.split(X):
        x_mean, y_mean = X[train].mean(axis=0), Y[train].mean(axis=0)
        X_train, X_valid = X[train] - x_mean, X[valid] - x_mean
        eigenvalues, vectors = np.linalg.eigh(X_train @ X_train.T)
        projected = vectors.T @ (Y[train] - y_mean)                   # [n, targets]
        kernel = (X_valid @ X_train.T) @ vectors                       # [valid, n]
        shrink = 1.0 / (np.clip(eigenvalues, 0.0, None)[None, :] + alphas[:, None])   # [alphas, n]
        predicted = kernel @ (shrink[:, :, None] * projected[None]) + y_mean   # [alphas, valid, targets]
        squared_errors += ((predicted - Y[valid]) ** 2).sum(axis=1)
    return alphas[squared_errors.argmin(axis=0)]


def outer_splitter(kind: str, n_splits: int, seed: int, groups: np.ndarray):
    if kind == "group":
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise ValueError("grouped cross-validation needs at least two model types")
        return GroupKFold(n_splits=min(n_splits, n_groups), shuffle=True, random_state=seed)
    if kind == "kfold":
        return KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    raise ValueError(f"unknown cross-validation '{kind}' (expected one of {CV_KINDS})")


def cross_validated_predictions(X: np.ndarray, Y: np.ndarray, groups: np.ndarray, kind: str, seed: int,
                                alphas: np.ndarray, n_splits: int = 5, inner_splits: int = 5,
                                score_range: tuple[float, float] = (0.0, 100.0)
                                ) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions [K, targets] and the alphas chosen in each outer fold [folds, targets]."""
    predicted = np.empty_like(Y, dtype=np.float64)
    chosen = []
    splitter = outer_splitter(kind, n_splits, seed, groups)
    for train, test in splitter.split(X, Y, groups if kind == "group" else None):
        inner = KFold(n_splits=min(inner_splits, len(train)), shuffle=True, random_state=seed)
        best = select_alphas(X[train], Y[train], alphas, inner)
        model = Ridge(alpha=best).fit(X[train], Y[train])
        predicted[test] = np.clip(model.predict(X[test]).reshape(len(test), -1), *score_range)
        chosen.append(best)
    return predicted, np.asarray(chosen)


def correlations(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    if np.ptp(y_pred) == 0 or np.ptp(y_true) == 0:
        return float("nan"), float("nan")
    return float(pearsonr(y_true, y_pred)[0]), float(spearmanr(y_true, y_pred)[0])


def _one_run(features: str, X: np.ndarray, Y: np.ndarray, groups, kind, seed, alphas, n_splits,
             inner_splits, score_range, targets, model_ids) -> tuple[list[dict], pd.DataFrame]:
    predicted, chosen = cross_validated_predictions(X, Y, groups, kind, seed, alphas, n_splits,
                                                    inner_splits, score_range)
    rows = []
    for t, target in enumerate(targets):
        pearson, spearman = correlations(Y[:, t], predicted[:, t])
        rows.append({"features": features, "cv": kind, "seed": seed, "target": target,
                     "pearson": pearson, "spearman": spearman,
                     "median_alpha": float(np.median(chosen[:, t]))})
    long = pd.DataFrame({
        "model_id": np.repeat(model_ids, len(targets)), "features": features, "cv": kind, "seed": seed,
        "target": np.tile(targets, len(model_ids)), "true": Y.ravel(), "predicted": predicted.ravel()})
    return rows, long


def run_prediction(features: dict[str, np.ndarray], targets: pd.DataFrame, groups: np.ndarray,
                   cv_kinds=CV_KINDS, seeds=range(5), alphas=None, n_splits: int = 5,
                   inner_splits: int = 5, score_range=(0.0, 100.0), n_jobs: int = 1
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """All configurations; returns (summary over seeds, per-seed correlations, all predictions).

    `targets` has one column per target and one row per model (index = model id, no NaN).
    """
    alphas = alpha_grid(0, 8, 17) if alphas is None else np.asarray(alphas, dtype=float)
    Y = targets.to_numpy(dtype=np.float64)
    names, model_ids = list(targets.columns), targets.index.to_numpy()
    bases = {name: ridge_basis(X) for name, X in features.items()}
    runs = Parallel(n_jobs=n_jobs)(
        delayed(_one_run)(name, bases[name], Y, np.asarray(groups), kind, int(seed), alphas, n_splits,
                          inner_splits, score_range, names, model_ids)
        for name, kind, seed in itertools.product(features, cv_kinds, seeds))
    per_seed = pd.DataFrame([row for rows, _ in runs for row in rows])
    predictions = pd.concat([long for _, long in runs], ignore_index=True)
    return summarise(per_seed, len(model_ids)), per_seed, predictions


def summarise(per_seed: pd.DataFrame, n_models: int) -> pd.DataFrame:
    grouped = per_seed.groupby(["features", "cv", "target"], sort=False)
    summary = grouped.agg(pearson_mean=("pearson", "mean"), pearson_std=("pearson", "std"),
                          spearman_mean=("spearman", "mean"), spearman_std=("spearman", "std"),
                          seeds=("seed", "nunique"), median_alpha=("median_alpha", "median"))
    return summary.reset_index().assign(n_models=n_models)


def baseline_correlations(mean_loglik: pd.Series, targets: pd.DataFrame) -> pd.DataFrame:
    """Perplexity baseline (paper Table 3): correlation of mean log-likelihood with each target."""
    rows = []
    for target in targets.columns:
        valid = targets[target].notna() & mean_loglik.notna()
        pearson, spearman = correlations(targets[target][valid].to_numpy(), mean_loglik[valid].to_numpy())
        rows.append({"target": target, "pearson": pearson, "spearman": spearman, "n_models": int(valid.sum())})
    return pd.DataFrame(rows)
