"""The model map (paper Fig. 1) and the same map coloured by every variable of the paper.

The t-SNE itself is `lmmap.embedding.tsne_embedding`; this module orders the rows the paper's way,
derives the colouring variables and draws one map per variable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmmap.embedding import tsne_embedding

VARIABLES = ("type", "best_domain", "mean_loglik", "benchmark_mean", "best_task", "size", "created")
TITLES = {
    "type": "model type",
    "best_domain": "domain where the model is relatively best",
    "mean_loglik": "mean log-likelihood per text",
    "benchmark_mean": "benchmark mean score",
    "best_task": "task where the model is relatively best",
    "size": "model size (parameters, log scale)",
    "created": "creation date",
}


def map_order(model_ids: list[str], created: pd.Series | None) -> np.ndarray:
    """Row order (creation date, then name), undated models last; t-SNE depends on row order."""
    dates = pd.to_datetime(created, errors="coerce", utc=True) if created is not None else None
    frame = pd.DataFrame({"name": model_ids, "date": dates.to_numpy() if dates is not None else pd.NaT})
    return frame.sort_values(["date", "name"], na_position="last", kind="stable").index.to_numpy()


def embed_map(
    Q: np.ndarray,
    model_ids: list[str],
    created: pd.Series | None,
    perplexity: float,
    max_iter: int,
    seed: int,
) -> pd.DataFrame:
    """t-SNE coordinates `x`, `y` of each model, computed on rows in (date, name) order."""
    order = map_order(model_ids, created)
    xy = tsne_embedding(Q[order], perplexity=perplexity, max_iter=max_iter, seed=seed)
    return pd.DataFrame({"model_id": np.asarray(model_ids)[order], "x": xy[:, 0], "y": xy[:, 1]})


def best_domain(Q: np.ndarray, domains: np.ndarray) -> np.ndarray:
    """Per model, the domain with the highest mean of Q over its texts (Q is already centred)."""
    domains = np.asarray(domains).astype(str)
    names = np.unique(domains)
    means = np.stack([Q[:, domains == d].mean(axis=1) for d in names], axis=1)
    return names[means.argmax(axis=1)]


def domain_means(L: np.ndarray, domains: np.ndarray) -> pd.DataFrame:
    """Mean of each row of L (or Q) over the texts of each domain: a K x (number of domains) frame."""
    domains = np.asarray(domains).astype(str)
    names = np.unique(domains)
    return pd.DataFrame({d: L[:, domains == d].mean(axis=1) for d in names})


def best_task(scores: pd.DataFrame) -> pd.Series:
    """Per model, the task where it scores highest relative to the other models (column-centred)."""
    centred = scores - scores.mean(axis=0)
    scored = scores.notna().any(axis=1)
    best = pd.Series(None, index=scores.index, dtype=object)
    best[scored] = centred[scored].fillna(-np.inf).idxmax(axis=1)
    return best


def decimal_year(created: pd.Series) -> pd.Series:
    dates = pd.to_datetime(created, errors="coerce", utc=True)
    return dates.dt.year + (dates.dt.day_of_year - 1) / 365.25


def map_variables(
    model_ids: list[str],
    Q: np.ndarray,
    L: np.ndarray,
    domains: np.ndarray,
    models: pd.DataFrame,
    benchmarks: pd.DataFrame | None,
    tasks: list[str],
) -> pd.DataFrame:
    """One row per model (in matrix order) with every colouring variable of the paper's maps.

    `models` and `benchmarks` must already be aligned to `model_ids` (benchmarks may hold NaN).
    """
    frame = pd.DataFrame({"model_id": model_ids})
    frame["type"] = models["type"].fillna("unknown").astype(str).to_numpy()
    frame["best_domain"] = best_domain(Q, domains)
    frame["mean_loglik"] = L.mean(axis=1)
    no_sizes = pd.Series(np.nan, index=models.index)  # a table without sizes colours no size map
    n_params = pd.to_numeric(models.get("n_params", models.get("size", no_sizes)), errors="coerce")
    frame["size"] = np.log10(n_params.where(n_params > 0)).to_numpy()
    frame["created"] = decimal_year(models["created"]).to_numpy() if "created" in models else np.nan
    if benchmarks is not None:
        frame["benchmark_mean"] = benchmarks["mean"].to_numpy()
        frame["best_task"] = best_task(benchmarks[tasks]).to_numpy() if tasks else None
    return frame


def variable_label(variable: str) -> str:
    """How a map names a colouring variable (legend and colour-bar title)."""
    return TITLES.get(variable, variable)
