"""Predicting benchmark scores from the model coordinates (paper Tables 2, 7-9; Figs. 8, 18).

For each feature matrix (Q, and L for comparison, both from the same clipped matrix), each outer
cross-validation (GroupKFold by model type, so no type is in both train and test, and plain KFold) and
each seed, a ridge model per target is fitted on the training fold, with alpha chosen on a log grid by
an inner 5-fold CV, as `RidgeCV(alphas, cv=5)` does: an unshuffled split of the training rows in their
given order, and the alpha with the best mean R² over the inner folds. Task predictions are clipped to
the score range; the model's mean log-likelihood (`mean_logp`) has its own alpha grid and no clipping.
Pearson and Spearman correlations of the pooled out-of-fold predictions are summarised as mean ± std
(ddof 0) over seeds, and also computed once for the predictions averaged over the seeds.

Exact shortcuts keep the exact path fast (up to about K = 3,000 in minutes):
- each feature matrix is prepared once (`RidgeSystem`): its centred Gram matrix (K x K) when there are
  at least as many features as models (the dual form: ridge with an intercept depends on the features
  only through it), else the centred features themselves (the primal form); every fold slices it and
  re-centres on its own training rows, so no fold touches the N texts again;
- all alphas and targets share one inner CV: each inner fold needs one eigendecomposition, in the
  smaller of the fold's two dimensions, and each target keeps the alpha of its own grid with the best
  mean R², which is what `RidgeCV(alphas, cv=KFold(5))` chooses for it (tests check this against
  scikit-learn in both shapes); the outer-fold fit is one Cholesky solve per distinct chosen alpha.
  In the primal form a fold's scatter matrix is the stored one less that of the rows it leaves out.

Above `max_components` (of the rank bound min(K - 1, p) of a feature matrix; the config's default is
1,024, so the paper's 1,018 models stay exact; None, the functions' default, never leaves the exact
path) each fold's exact eigendecomposition grows with K^3. There the feature
matrix is replaced, once and on all rows, by its top principal-component scores (randomized SVD with a
fixed seed) and the same nested CV runs in that r-dimensional primal form: one r x r eigendecomposition
per training set. That is exactly `RidgeCV(alphas, cv=KFold(5))` on those scores (tested), and an
approximation of ridge on the full features measured in docs/performance.md.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.linalg import LinAlgError, eigh, lstsq, solve
from scipy.stats import pearsonr, spearmanr
from sklearn.model_selection import GroupKFold, KFold
from sklearn.utils.extmath import randomized_svd

log = logging.getLogger(__name__)
CV_KINDS = ("group", "kfold")
MEAN_LOGP = "mean_logp"
TASK_ALPHAS = (1, 9, 9)  # log10 min, log10 max, number: 1e1 ... 1e9 (the paper's task targets)
MEAN_LOGP_ALPHAS = (-4, 4, 9)  # 1e-4 ... 1e4 (the paper's mean log-likelihood target)
NULL_RTOL = 1e-12  # eigenvalues below this fraction of the largest are zero variance


def alpha_grid(log10_min: float, log10_max: float, num: int) -> np.ndarray:
    return np.logspace(log10_min, log10_max, int(num))


@dataclasses.dataclass(frozen=True)
class TargetSettings:
    """Per target (column of Y): its alpha grid and whether predictions are clipped to the score range."""

    alphas: list[np.ndarray]
    clipped: np.ndarray

    @classmethod
    def for_targets(cls, names, task_alphas, mean_logp_alphas=None) -> TargetSettings:
        """Task grid and clipping for every target but `mean_logp` (its own grid, unclipped)."""
        task_alphas = np.asarray(task_alphas, dtype=float)
        mean_logp_alphas = alpha_grid(*MEAN_LOGP_ALPHAS) if mean_logp_alphas is None else mean_logp_alphas
        is_mean_logp = np.array([name == MEAN_LOGP for name in names])
        return cls([np.asarray(mean_logp_alphas, float) if m else task_alphas for m in is_mean_logp], ~is_mean_logp)


def centred_gram(X: np.ndarray, block: int = 2048) -> np.ndarray:
    """(X - mean) (X - mean)^T in float64, centred block by block (no centred copy of X is held)."""
    X = np.asarray(X)
    mean = X.mean(axis=0, dtype=np.float64)
    K = len(X)
    gram = np.empty((K, K))
    starts = range(0, K, block)
    for i in starts:
        left = X[i : i + block] - mean
        for j in starts:
            if j < i:
                continue
            right = left if j == i else X[j : j + block] - mean
            gram[i : i + block, j : j + block] = left @ right.T
            if j != i:
                gram[j : j + block, i : i + block] = gram[i : i + block, j : j + block].T
    return gram


def components_kept(shape: tuple[int, int], max_components: int | None) -> int | None:
    """The principal components the ridge keeps for a K x p feature matrix: None (all of them, the exact
    path) when its rank bound min(K - 1, p) is at most `max_components` (None: no limit)."""
    if max_components is None or min(shape[0] - 1, shape[1]) <= max_components:
        return None
    return int(max_components)


def principal_scores(X: np.ndarray, n_components: int, n_iter: int = 4, random_state: int = 0) -> np.ndarray:
    """The top `n_components` principal-component scores (K x r) of the rows of X (centred on all rows),
    by randomized SVD with `n_iter` power iterations and a fixed seed, so every run gets the same scores."""
    centred = np.asarray(X, dtype=np.float64) - np.asarray(X).mean(axis=0, dtype=np.float64)
    U, S, _ = randomized_svd(centred, n_components, n_iter=n_iter, random_state=random_state)
    return U * S


@dataclasses.dataclass(frozen=True)
class RidgeSystem:
    """A feature matrix prepared once for every fold: its centred Gram matrix (K x K, the dual form, used
    when there are at least as many features as models) or the centred features themselves (K x p, the
    primal form, when p < K) with their scatter matrix and column sums. Either gives ridge with an
    intercept exactly on any subset of rows: each fold is re-centred on its own training rows, in the
    smaller of its two dimensions. Above `max_components` (see `components_kept`) the features are
    replaced by their top principal-component scores (`components` of them) in the primal form."""

    gram: np.ndarray | None = None
    features: np.ndarray | None = None
    scatter: np.ndarray | None = None  # features^T features (p x p), primal form only
    sums: np.ndarray | None = None  # column sums of the features, primal form only
    components: int | None = None  # principal components kept (None: the exact path)

    @classmethod
    def from_features(cls, X: np.ndarray, max_components: int | None = None) -> RidgeSystem:
        X = np.asarray(X)
        components = components_kept(X.shape, max_components)
        if components is not None:
            return cls.primal(principal_scores(X, components), components)
        if X.shape[1] >= X.shape[0]:
            return cls(gram=centred_gram(X))
        return cls.primal(np.asarray(X - X.mean(axis=0), dtype=np.float64))

    @classmethod
    def primal(cls, features: np.ndarray, components: int | None = None) -> RidgeSystem:
        return cls(features=features, scatter=features.T @ features, sums=features.sum(axis=0), components=components)

    def __len__(self) -> int:
        return len(self.gram if self.gram is not None else self.features)

    def moments(self, rows: np.ndarray, parent: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Primal form: the scatter matrix X^T X and the column sums of the rows `rows`. They are the
        moments of `parent` (rows, scatter, sums: a superset of `rows`; default all rows) less those of
        the parent's other rows when these are fewer (the features are centred on all rows, so the
        difference loses little to rounding)."""
        parent_rows, scatter, sums = parent or (np.arange(len(self)), self.scatter, self.sums)
        rest = np.setdiff1d(parent_rows, rows, assume_unique=True)
        if len(rest) < len(rows):
            left_out = self.features[rest]
            return scatter - left_out.T @ left_out, sums - left_out.sum(axis=0)
        kept = self.features[rows]
        return kept.T @ kept, kept.sum(axis=0)

    def parent(self, rows: np.ndarray) -> tuple | None:
        """The moments of `rows` for `moments` to downdate per fold (None in the dual form)."""
        return None if self.gram is not None else (rows, *self.moments(rows))

    def centred_blocks(self, train: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The Gram matrix of the training rows and of `other` against them, as if the features had
        been centred on the training rows' mean (copies: the stored Gram matrix stays as it is)."""
        block = self.gram[np.ix_(train, train)]
        row_means = block.mean(axis=1)
        total = row_means.mean()
        block -= row_means[:, None]
        block -= row_means[None, :]
        block += total
        cross = self.gram[np.ix_(other, train)]
        cross -= cross.mean(axis=1, keepdims=True)
        cross -= row_means[None, :]
        cross += total
        return block, cross

    def centred_covariance(self, train: np.ndarray, parent: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Primal form: the scatter matrix of the training rows centred on their own mean, and that mean."""
        scatter, sums = self.moments(train, parent)
        mean = sums / len(train)
        return scatter - np.outer(sums, mean), mean

    def fold(self, train: np.ndarray, other: np.ndarray, centred: np.ndarray, parent: tuple | None = None) -> tuple:
        """For training rows `train` (centred on their own mean) with centred targets `centred` and rows
        `other`: the eigenvalues of the training rows' Gram matrix in the smaller dimension, `other`'s
        coordinates in its eigenbasis and the targets' projection on it."""
        if self.gram is not None:
            block, cross = self.centred_blocks(train, other)
            eigenvalues, vectors = eigh(block, overwrite_a=True, check_finite=False, driver="evd")
            return eigenvalues, cross @ vectors, vectors.T @ centred
        covariance, mean = self.centred_covariance(train, parent)
        eigenvalues, vectors = eigh(covariance, overwrite_a=True, check_finite=False, driver="evd")
        # the centred targets sum to zero, so the uncentred training rows project them as the centred would
        projected = vectors.T @ (self.features[train].T @ centred)
        return eigenvalues, (self.features[other] - mean) @ vectors, projected

    def solve_fold(self, train, other, Y_train: np.ndarray, alphas: np.ndarray, parent: tuple | None = None):
        """Predictions for rows `other` [alphas, rows, targets] of ridge fitted on `train` for every
        alpha of `alphas` and every column of `Y_train`, from one eigendecomposition (`parent`: see
        `moments`)."""
        y_mean = Y_train.mean(axis=0)
        eigenvalues, coords, projected = self.fold(train, other, Y_train - y_mean, parent)
        shrink = 1.0 / (np.clip(eigenvalues, 0.0, None)[None, :] + np.asarray(alphas, float)[:, None])
        # directions of (numerically) zero variance carry nothing but rounding: drop them
        shrink[:, eigenvalues <= NULL_RTOL * max(eigenvalues.max(), 0.0)] = 0.0
        return coords @ (shrink[:, :, None] * projected[None]) + y_mean


def select_alphas(X, Y: np.ndarray, alphas: list[np.ndarray], inner_cv) -> np.ndarray:
    """Per target (column of Y), the alpha of its grid `alphas[t]` with the best mean inner-CV R².

    `X` is a feature matrix or a `RidgeSystem` of these rows. Each inner fit is ridge with an
    intercept: one eigendecomposition per inner fold (of the centred training rows' Gram matrix, in
    the smaller of its two dimensions) serves every alpha of every grid and every target (sklearn
    refits per alpha and target). Ties go to the first alpha of the grid, as in `RidgeCV`.
    """
    system = X if isinstance(X, RidgeSystem) else RidgeSystem.from_features(X)
    return _select_alphas(system, np.arange(len(system)), Y, alphas, inner_cv)


def _select_alphas(
    system: RidgeSystem, rows: np.ndarray, Y: np.ndarray, alphas: list[np.ndarray], inner_cv
) -> np.ndarray:
    """`select_alphas` on the rows `rows` of `system` (Y holds those rows' targets, in that order)."""
    union = np.unique(np.concatenate(alphas))
    r2_sum, n_folds = np.zeros((len(union), Y.shape[1])), 0
    parent = system.parent(rows)
    for train, valid in inner_cv.split(rows):
        predicted = system.solve_fold(rows[train], rows[valid], Y[train], union, parent)  # [alphas, valid, targets]
        residual = ((predicted - Y[valid]) ** 2).sum(axis=1)
        total = ((Y[valid] - Y[valid].mean(axis=0)) ** 2).sum(axis=0)
        r2_sum += 1.0 - residual / np.where(total > 0, total, np.nan)
        n_folds += 1
    chosen = np.empty(Y.shape[1])
    for t, grid in enumerate(alphas):
        scores = r2_sum[np.searchsorted(union, grid), t] / n_folds
        chosen[t] = grid[np.nanargmax(scores) if np.isfinite(scores).any() else 0]
    return chosen


def fit_predict(
    system: RidgeSystem, train: np.ndarray, test: np.ndarray, Y_train: np.ndarray, alphas: np.ndarray
) -> np.ndarray:
    """Ridge with an intercept fitted on `train` with alpha `alphas[t]` for target t, predicted for `test`
    (what sklearn's `Ridge(alpha=alphas)` predicts): one Cholesky solve per distinct alpha."""
    y_mean = Y_train.mean(axis=0)
    centred = Y_train - y_mean
    predicted = np.empty((len(test), Y_train.shape[1]))
    if system.gram is not None:
        block, cross = system.centred_blocks(train, test)
        # the centred Gram matrix has the constant vector in its null space, and the dual coefficients
        # are orthogonal to it: adding it back with unit weight changes no solution, only the conditioning
        block += np.trace(block) / len(block) / len(block)
        left, right = cross, None
    else:
        block, mean = system.centred_covariance(train)
        left, right = system.features[test] - mean, system.features[train].T  # centred targets: see `fold`
    for alpha in np.unique(alphas):
        targets = np.flatnonzero(alphas == alpha)
        rhs = centred[:, targets] if right is None else right @ centred[:, targets]
        system_matrix = block + alpha * np.eye(len(block))
        try:
            coef = solve(system_matrix, rhs, assume_a="pos", overwrite_a=True, check_finite=False)
        except LinAlgError:  # not numerically positive definite: least squares, as sklearn falls back to
            coef = lstsq(block + alpha * np.eye(len(block)), rhs, check_finite=False)[0]
        predicted[:, targets] = left @ coef
    return predicted + y_mean


def outer_splitter(kind: str, n_splits: int, seed: int, groups: np.ndarray):
    if kind == "group":
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise ValueError("grouped cross-validation needs at least two model types")
        return GroupKFold(n_splits=min(n_splits, n_groups), shuffle=True, random_state=seed)
    if kind == "kfold":
        return KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    raise ValueError(f"unknown cross-validation '{kind}' (expected one of {CV_KINDS})")


def cross_validated_predictions(
    X,
    Y: np.ndarray,
    groups: np.ndarray,
    kind: str,
    seed: int,
    settings: TargetSettings,
    n_splits: int = 5,
    inner_splits: int = 5,
    score_range: tuple[float, float] = (0.0, 100.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions [K, targets] and the alphas chosen in each outer fold [folds, targets].
    `X` is the feature matrix or its `RidgeSystem` (prepared once, shared by all configurations)."""
    system = X if isinstance(X, RidgeSystem) else RidgeSystem.from_features(X)
    predicted = np.empty_like(Y, dtype=np.float64)
    chosen = []
    splitter = outer_splitter(kind, n_splits, seed, groups)
    rows = np.arange(len(system))
    for train, test in splitter.split(rows, Y, groups if kind == "group" else None):
        inner = KFold(n_splits=min(inner_splits, len(train)))  # unshuffled, training rows in order
        best = _select_alphas(system, train, Y[train], settings.alphas, inner)
        fold = fit_predict(system, train, test, Y[train], best)
        predicted[test] = np.where(settings.clipped, np.clip(fold, *score_range), fold)
        chosen.append(best)
    return predicted, np.asarray(chosen)


def correlations(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    if np.ptp(y_pred) == 0 or np.ptp(y_true) == 0:
        return float("nan"), float("nan")
    return float(pearsonr(y_true, y_pred)[0]), float(spearmanr(y_true, y_pred)[0])


def _one_run(
    features: str,
    X: np.ndarray,
    Y: np.ndarray,
    groups,
    kind,
    seed,
    settings,
    n_splits,
    inner_splits,
    score_range,
    targets,
    model_ids,
) -> tuple[list[dict], pd.DataFrame]:
    predicted, chosen = cross_validated_predictions(
        X, Y, groups, kind, seed, settings, n_splits, inner_splits, score_range
    )
    rows = []
    for t, target in enumerate(targets):
        pearson, spearman = correlations(Y[:, t], predicted[:, t])
        rows.append(
            {
                "features": features,
                "cv": kind,
                "seed": seed,
                "target": target,
                "pearson": pearson,
                "spearman": spearman,
                "median_alpha": float(np.median(chosen[:, t])),
            }
        )
    long = pd.DataFrame(
        {
            "model_id": np.repeat(model_ids, len(targets)),
            "features": features,
            "cv": kind,
            "seed": seed,
            "target": np.tile(targets, len(model_ids)),
            "true": Y.ravel(),
            "predicted": predicted.ravel(),
        }
    )
    return rows, long


def prediction_inputs(data, features: list[str], group_by: str) -> tuple[dict, pd.DataFrame, np.ndarray]:
    """From `data` (lmmap.analysis.inputs.AnalysisData), for the models with every benchmark score: the
    feature matrices named in `features` (Q, and L clipped as for Q), the targets (tasks, their mean and
    the mean log-likelihood, by model id) and each model's CV group (models-table column `group_by`)."""
    targets = data.targets().assign(**{MEAN_LOGP: data.mean_loglik()})
    rows = [data.model_ids.index(m) for m in targets.index]
    matrices = {"Q": lambda: data.Q[rows], "L": lambda: data.clipped_L()[rows]}
    groups = data.models[group_by].fillna("unknown").astype(str).to_numpy()[rows]
    return {name: matrices[name]() for name in features}, targets, groups


def run_prediction(
    features: dict[str, np.ndarray],
    targets: pd.DataFrame,
    groups: np.ndarray,
    cv_kinds=CV_KINDS,
    seeds=range(5),
    alphas=None,
    n_splits: int = 5,
    inner_splits: int = 5,
    score_range=(0.0, 100.0),
    n_jobs: int = 1,
    mean_logp_alphas=None,
    group_by: str = "group",
    max_components: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """All configurations; returns (summary over seeds, per-seed correlations, all predictions).

    `targets` has one column per target and one row per model (index = model id, no NaN), in the
    row order the inner CV splits; a column named `mean_logp` gets `mean_logp_alphas` and no clipping.
    `group_by` only names the grouping in the summary's `grouping` column. A feature matrix whose rank
    bound exceeds `max_components` is replaced by that many principal-component scores (`components_kept`).
    """
    alphas = alpha_grid(*TASK_ALPHAS) if alphas is None else np.asarray(alphas, dtype=float)
    Y = targets.to_numpy(dtype=np.float64)
    names, model_ids = list(targets.columns), targets.index.to_numpy()
    settings = TargetSettings.for_targets(names, alphas, mean_logp_alphas)
    bases = {name: RidgeSystem.from_features(X, max_components) for name, X in features.items()}
    runs = Parallel(n_jobs=n_jobs)(
        delayed(_one_run)(
            name,
            bases[name],
            Y,
            np.asarray(groups),
            kind,
            int(seed),
            settings,
            n_splits,
            inner_splits,
            score_range,
            names,
            model_ids,
        )
        for name, kind, seed in itertools.product(features, cv_kinds, seeds)
    )
    per_seed = pd.DataFrame([row for rows, _ in runs for row in rows])
    predictions = pd.concat([long for _, long in runs], ignore_index=True)
    grouping = {"group": f"{group_by} ({len(np.unique(groups))} groups)", "kfold": "none"}
    summary = summarise(per_seed, predictions, len(model_ids))
    summary.insert(2, "grouping", summary["cv"].map(grouping))
    return summary, per_seed, predictions


def seed_mean_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """Each model's prediction averaged over the seeds, per features, CV and target (Figs. 8, 18)."""
    keys = ["features", "cv", "target", "model_id"]
    return (
        predictions.groupby(keys, sort=False).agg(true=("true", "first"), predicted=("predicted", "mean")).reset_index()
    )


def shown_run(features: list[str], cvs: list[str]) -> tuple[str, str]:
    """The (features, CV) of the prediction scatter: the findings table's ridge finding (Q under
    plain K-fold) where it was run, else the first of each."""
    return ("Q" if "Q" in features else features[0]), ("kfold" if "kfold" in cvs else cvs[0])


def summarise(per_seed: pd.DataFrame, predictions: pd.DataFrame, n_models: int) -> pd.DataFrame:
    """Mean and spread (np.std, ddof 0, as the paper's ±) over seeds, and the correlations of the
    seed-averaged predictions."""

    def std(values):
        return float(np.std(values))

    grouped = per_seed.groupby(["features", "cv", "target"], sort=False)
    summary = grouped.agg(
        pearson_mean=("pearson", "mean"),
        pearson_std=("pearson", std),
        spearman_mean=("spearman", "mean"),
        spearman_std=("spearman", std),
        seeds=("seed", "nunique"),
        median_alpha=("median_alpha", "median"),
    ).reset_index()
    averaged = (
        seed_mean_predictions(predictions)
        .groupby(["features", "cv", "target"], sort=False)
        .apply(
            lambda part: pd.Series(
                correlations(part["true"].to_numpy(), part["predicted"].to_numpy()),
                index=["pearson_of_mean", "spearman_of_mean"],
            ),
            include_groups=False,
        )
    )
    summary = summary.merge(averaged.reset_index(), on=["features", "cv", "target"], how="left")
    order = [
        "features",
        "cv",
        "target",
        "pearson_mean",
        "pearson_std",
        "pearson_of_mean",
        "spearman_mean",
        "spearman_std",
        "spearman_of_mean",
        "seeds",
        "median_alpha",
    ]
    return summary[order].assign(n_models=n_models)


def baseline_correlations(mean_loglik: pd.Series, targets: pd.DataFrame) -> pd.DataFrame:
    """Perplexity baseline (paper Table 3): correlation of mean log-likelihood with each target."""
    rows = []
    for target in targets.columns:
        valid = targets[target].notna() & mean_loglik.notna()
        pearson, spearman = correlations(targets[target][valid].to_numpy(), mean_loglik[valid].to_numpy())
        rows.append({"target": target, "pearson": pearson, "spearman": spearman, "n_models": int(valid.sum())})
    return pd.DataFrame(rows)
