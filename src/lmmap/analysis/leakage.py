"""Leakage screen: models whose log-likelihood on the reference texts is far higher than their
benchmark scores predict may have seen those texts (or similar ones) in training.

Two methods, both robust (Huber fit, residuals divided by 1.4826 x MAD, the modified z-score), so
the suspects themselves barely move the fit; models above the threshold are flagged:
- "within" (default): mean log-likelihood on every task score, after centring both on the median of
  the model's group (its family: tokenizer and training data set a family's log-likelihood level far
  more than its benchmark scores do). Groups smaller than `min_group` share one pooled centre.
- "global": one line of mean log-likelihood on the benchmark mean over all models.
On planted data at the paper's size (docs/leakage.md: 29 families, an excess of 5 model-noise SDs)
"within" at 3.0 flags 83% of the planted models and 0.2% of the others, "global" at 3.5 none of
them. The same fit per domain says which domains drive a model's excess.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import median_abs_deviation
from sklearn.linear_model import HuberRegressor

METHODS = ("within", "global")
MIN_GROUP = 3


def centre_on_groups(values: np.ndarray, groups: np.ndarray, min_group: int = MIN_GROUP) -> np.ndarray:
    """`values` [K, d] minus the column medians of each row's group; groups with fewer than
    `min_group` rows are centred together on their pooled median."""
    groups = pd.Series(np.asarray(groups).astype(str))
    pooled = groups.map(groups.value_counts()).to_numpy() < min_group
    key = np.where(pooled, "\0pooled", groups.to_numpy())
    frame = pd.DataFrame(np.asarray(values, float).reshape(len(groups), -1))
    return frame.to_numpy() - frame.groupby(key).transform("median").to_numpy()


def robust_residuals(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, HuberRegressor]:
    """Residuals of y on X (one column per predictor) under a Huber fit, in y's units and divided by
    the robust scale, and the fit; with `groups`, X and y are first centred per group."""
    y = np.asarray(y, float)
    X = np.asarray(X, float).reshape(len(y), -1)
    if groups is not None:
        X, y = centre_on_groups(X, groups), centre_on_groups(y, groups)[:, 0]
    fit = HuberRegressor(max_iter=1000).fit(X, y)
    residual = y - fit.predict(X)
    scale = median_abs_deviation(residual, scale="normal")
    return residual, residual / (scale if scale > 0 else 1.0), fit


def leakage_screen(
    frame: pd.DataFrame,
    domain_loglik: pd.DataFrame,
    threshold: float,
    *,
    method: str,
    top_domains: int = 3,
    predictors: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, HuberRegressor]:
    """`frame` has model_id, type, group, mean_loglik, benchmark_mean (no NaN); `domain_loglik` has
    one column per domain (mean log-likelihood over its texts) and `predictors` one column per task
    score ("within" only), rows aligned with `frame`.

    Returns every model sorted by z (descending) with `residual` (nats per text), `residual_z`,
    `flagged`, one `z:<domain>` column per domain and `top_domains` (the domains with the largest z),
    and the overall fit.
    """
    if method not in METHODS:
        raise ValueError(f"unknown leakage method '{method}' (expected one of {METHODS})")
    if method == "within":
        X, groups = predictors.to_numpy(dtype=float), frame["group"].to_numpy()
    else:
        X, groups = frame[["benchmark_mean"]].to_numpy(dtype=float), None
    residual, z, fit = robust_residuals(X, frame["mean_loglik"].to_numpy(), groups)
    columns = [c for c in ("model_id", "type", "group", "mean_loglik", "benchmark_mean") if c in frame]
    screen = frame[columns].reset_index(drop=True)
    screen["residual"], screen["residual_z"], screen["flagged"] = residual, z, z > threshold
    per_domain = pd.DataFrame(
        {
            f"z:{domain}": robust_residuals(X, values.to_numpy(), groups)[1]
            for domain, values in domain_loglik.reset_index(drop=True).items()
        }
    )
    screen["top_domains"] = [
        ", ".join(f"{name[2:]} ({value:.1f})" for name, value in row.nlargest(top_domains).items())
        for _, row in per_domain.iterrows()
    ]
    screen = pd.concat([screen, per_domain], axis=1)
    return screen.sort_values("residual_z", ascending=False, kind="stable").reset_index(drop=True), fit


def screen_models(data, group_by: str, threshold: float, method: str) -> tuple[pd.DataFrame, HuberRegressor, int]:
    """`leakage_screen` over the models of `data` (lmmap.analysis.inputs.AnalysisData) that have every
    benchmark score, grouped by the models-table column `group_by`: the screen, the fit and how many
    models were screened."""
    from lmmap.analysis.tsne_map import domain_means

    frame = pd.DataFrame(
        {
            "model_id": data.model_ids,
            "type": data.models["type"].astype(str).to_numpy(),
            "group": data.models[group_by].fillna("unknown").astype(str).to_numpy(),
            "mean_loglik": data.L.mean(axis=1),
            "benchmark_mean": data.benchmarks["mean"].to_numpy(),
        }
    )
    tasks = data.benchmarks[data.tasks].reset_index(drop=True)
    scored = (frame["benchmark_mean"].notna() & tasks.notna().all(axis=1)).to_numpy()
    per_domain = domain_means(data.L, data.domains)[scored]
    screen, fit = leakage_screen(frame[scored], per_domain, threshold, method=method, predictors=tasks[scored])
    return screen, fit, int(scored.sum())


def readable(screen: pd.DataFrame) -> pd.DataFrame:
    """The screen as people read it: flagged as "yes" or blank, log-likelihoods and residuals to 2
    decimals, z-scores and scores to 1 (the CSV keeps full precision)."""
    shown = screen.copy()
    shown["flagged"] = ["yes" if f else "" for f in screen["flagged"]]
    for column in shown.columns:
        if column == "flagged" or not pd.api.types.is_float_dtype(screen[column]):
            continue
        decimals = 2 if column in ("mean_loglik", "residual") else 1
        shown[column] = screen[column].map(lambda v, d=decimals: "" if pd.isna(v) else f"{v:.{d}f}")
    return shown
