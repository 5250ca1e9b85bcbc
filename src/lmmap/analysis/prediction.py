"""Predicting benchmark scores from the model coordinates (paper Tables 2, 7-9; Figs. 8, 18).

For each feature matrix (Q, and L for comparison, both from the same clipped matrix), each outer
cross-validation (GroupKFold by model type, so no type is in both train and test, and plain KFold) and
each seed, a ridge model per target is fitted on the training fold, with alpha chosen on a log grid by
an inner 5-fold CV, as `RidgeCV(alphas, cv=5)` does: an unshuffled split of the training rows in their
given order, and the alpha with the best mean R² over the inner folds. Task predictions are clipped to
the score range; the model's mean log-likelihood (`mean_logp`) has its own alpha grid and no clipping.
Pearson and Spearman correlations of the pooled out-of-fold predictions are summarised as mean ± std
(ddof 0) over seeds, and also computed once for the predictions averaged over the seeds.

Two exact shortcuts keep the paper-sized run (K = 1,018, N = 10,000) fast:
- the features are centred and replaced by their coordinates in the row space of X (a K x K
  matrix): ridge with an intercept gives identical predictions, because its solution always lies in
  the span of the (centred) training rows;
- all alphas and targets share one inner CV: each inner fold needs one eigendecomposition, and each
  target keeps the alpha of its own grid with the best mean R², which is what
  `RidgeCV(alphas, cv=KFold(5))` chooses for it (a test checks this); the outer-fold model itself is
  sklearn's `Ridge` with those per-target alphas.
"""

from __future__ import annotations

import dataclasses
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
MEAN_LOGP = "mean_logp"
TASK_ALPHAS = (1, 9, 9)         # log10 min, log10 max, number: 1e1 ... 1e9 (the paper's task targets)
MEAN_LOGP_ALPHAS = (-4, 4, 9)   # 1e-4 ... 1e4 (the paper's mean log-likelihood target)


def alpha_grid(log10_min: float, log10_max: float, num: int) -> np.ndarray:
    return np.logspace(log10_min, log10_max, int(num))


@dataclasses.dataclass(frozen=True)
class TargetSettings:
    """Per target (column of Y): its alpha grid and whether predictions are clipped to the score range."""
    alphas: list[np.ndarray]
    clipped: np.ndarray

    @classmethod
    def for_targets(cls, names, task_alphas, mean_logp_alphas=None) -> "TargetSettings":
        """Task grid and clipping for every target but `mean_logp` (its own grid, unclipped)."""
        task_alphas = np.asarray(task_alphas, dtype=float)
        mean_logp_alphas = alpha_grid(*MEAN_LOGP_ALPHAS) if mean_logp_alphas is None else mean_logp_alphas
        is_mean_logp = np.array([name == MEAN_LOGP for name in names])
        return cls([np.asarray(mean_logp_alphas, float) if m else task_alphas for m in is_mean_logp], ~is_mean_logp)


def ridge_basis(X: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    """Coordinates of the column-centred rows of X in their own span (K x rank): ridge-equivalent."""
    X = np.asarray(X, dtype=np.float64)
    centred = X - X.mean(axis=0)
    eigenvalues, vectors = np.linalg.eigh(centred @ centred.T)
    keep = eigenvalues > rtol * max(eigenvalues.max(), 0.0)
    return vectors[:, keep] * np.sqrt(eigenvalues[keep])


def select_alphas(X: np.ndarray, Y: np.ndarray, alphas: list[np.ndarray], inner_cv) -> np.ndarray:
    """Per target (column of Y), the alpha of its grid `alphas[t]` with the best mean inner-CV R².

    Each inner fit is ridge with an intercept in its dual form: one eigendecomposition of the centred
    training Gram matrix serves every alpha of every grid and every target (sklearn refits per alpha).
    Ties go to the first alpha of the grid, as in `RidgeCV`.
    """
    union = np.unique(np.concatenate(alphas))
    r2_sum, n_folds = np.zeros((len(union), Y.shape[1])), 0
    for train, valid in inner_cv.split(X):
        x_mean, y_mean = X[train].mean(axis=0), Y[train].mean(axis=0)
        X_train, X_valid = X[train] - x_mean, X[valid] - x_mean
        eigenvalues, vectors = np.linalg.eigh(X_train @ X_train.T)
        projected = vectors.T @ (Y[train] - y_mean)                   # [n, targets]
        kernel = (X_valid @ X_train.T) @ vectors                       # [valid, n]
        shrink = 1.0 / (np.clip(eigenvalues, 0.0, None)[None, :] + union[:, None])   # [alphas, n]
        predicted = kernel @ (shrink[:, :, None] * projected[None]) + y_mean   # [alphas, valid, targets]
        residual = ((predicted - Y[valid]) ** 2).sum(axis=1)
        total = ((Y[valid] - Y[valid].mean(axis=0)) ** 2).sum(axis=0)
        r2_sum += 1.0 - residual / np.where(total > 0, total, np.nan)
        n_folds += 1
    chosen = np.empty(Y.shape[1])
    for t, grid in enumerate(alphas):
        scores = r2_sum[np.searchsorted(union, grid), t] / n_folds
        chosen[t] = grid[np.nanargmax(scores) if np.isfinite(scores).any() else 0]
    return chosen


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
                                settings: TargetSettings, n_splits: int = 5, inner_splits: int = 5,
                                score_range: tuple[float, float] = (0.0, 100.0)
                                ) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions [K, targets] and the alphas chosen in each outer fold [folds, targets]."""
    predicted = np.empty_like(Y, dtype=np.float64)
    chosen = []
    splitter = outer_splitter(kind, n_splits, seed, groups)
    for train, test in splitter.split(X, Y, groups if kind == "group" else None):
        inner = KFold(n_splits=min(inner_splits, len(train)))   # unshuffled, training rows in order
        best = select_alphas(X[train], Y[train], settings.alphas, inner)
        fold = Ridge(alpha=best).fit(X[train], Y[train]).predict(X[test]).reshape(len(test), -1)
        predicted[test] = np.where(settings.clipped, np.clip(fold, *score_range), fold)
        chosen.append(best)
    return predicted, np.asarray(chosen)


def correlations(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    if np.ptp(y_pred) == 0 or np.ptp(y_true) == 0:
        return float("nan"), float("nan")
    return float(pearsonr(y_true, y_pred)[0]), float(spearmanr(y_true, y_pred)[0])


def _one_run(features: str, X: np.ndarray, Y: np.ndarray, groups, kind, seed, settings, n_splits,
             inner_splits, score_range, targets, model_ids) -> tuple[list[dict], pd.DataFrame]:
    predicted, chosen = cross_validated_predictions(X, Y, groups, kind, seed, settings, n_splits,
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
                   inner_splits: int = 5, score_range=(0.0, 100.0), n_jobs: int = 1,
                   mean_logp_alphas=None, group_by: str = "group"
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """All configurations; returns (summary over seeds, per-seed correlations, all predictions).

    `targets` has one column per target and one row per model (index = model id, no NaN), in the
    row order the inner CV splits; a column named `mean_logp` gets `mean_logp_alphas` and no clipping.
    `group_by` only names the grouping in the summary's `grouping` column.
    """
    alphas = alpha_grid(*TASK_ALPHAS) if alphas is None else np.asarray(alphas, dtype=float)
    Y = targets.to_numpy(dtype=np.float64)
    names, model_ids = list(targets.columns), targets.index.to_numpy()
    settings = TargetSettings.for_targets(names, alphas, mean_logp_alphas)
    bases = {name: ridge_basis(X) for name, X in features.items()}
    runs = Parallel(n_jobs=n_jobs)(
        delayed(_one_run)(name, bases[name], Y, np.asarray(groups), kind, int(seed), settings, n_splits,
                          inner_splits, score_range, names, model_ids)
        for name, kind, seed in itertools.product(features, cv_kinds, seeds))
    per_seed = pd.DataFrame([row for rows, _ in runs for row in rows])
    predictions = pd.concat([long for _, long in runs], ignore_index=True)
    grouping = {"group": f"{group_by} ({len(np.unique(groups))} groups)", "kfold": "none"}
    summary = summarise(per_seed, predictions, len(model_ids))
    summary.insert(2, "grouping", summary["cv"].map(grouping))
    return summary, per_seed, predictions


def seed_mean_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """Each model's prediction averaged over the seeds, per features, CV and target (Figs. 8, 18)."""
    keys = ["features", "cv", "target", "model_id"]
    return predictions.groupby(keys, sort=False).agg(true=("true", "first"), predicted=("predicted", "mean")
                                                     ).reset_index()


def summarise(per_seed: pd.DataFrame, predictions: pd.DataFrame, n_models: int) -> pd.DataFrame:
    """Mean and spread (np.std, ddof 0, as the paper's ±) over seeds, and the correlations of the
    seed-averaged predictions."""
    def std(values):
        return float(np.std(values))
    grouped = per_seed.groupby(["features", "cv", "target"], sort=False)
    summary = grouped.agg(pearson_mean=("pearson", "mean"), pearson_std=("pearson", std),
                          spearman_mean=("spearman", "mean"), spearman_std=("spearman", std),
                          seeds=("seed", "nunique"), median_alpha=("median_alpha", "median")).reset_index()
    averaged = seed_mean_predictions(predictions).groupby(["features", "cv", "target"], sort=False).apply(
        lambda part: pd.Series(correlations(part["true"].to_numpy(), part["predicted"].to_numpy()),
                               index=["pearson_of_mean", "spearman_of_mean"]), include_groups=False)
    summary = summary.merge(averaged.reset_index(), on=["features", "cv", "target"], how="left")
    order = ["features", "cv", "target", "pearson_mean", "pearson_std", "pearson_of_mean", "spearman_mean",
             "spearman_std", "spearman_of_mean", "seeds", "median_alpha"]
    return summary[order].assign(n_models=n_models)


def baseline_correlations(mean_loglik: pd.Series, targets: pd.DataFrame) -> pd.DataFrame:
    """Perplexity baseline (paper Table 3): correlation of mean log-likelihood with each target."""
    rows = []
    for target in targets.columns:
        valid = targets[target].notna() & mean_loglik.notna()
        pearson, spearman = correlations(targets[target][valid].to_numpy(), mean_loglik[valid].to_numpy())
        rows.append({"target": target, "pearson": pearson, "spearman": spearman, "n_models": int(valid.sum())})
    return pd.DataFrame(rows)
