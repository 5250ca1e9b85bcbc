"""Weight interpolation (paper §6.3): models θ(α, β) = θ_base + α (θ_1 - θ_base) + β (θ_2 - θ_base)
on a grid (extrapolation included) are scored like any other model; their log-likelihood vectors are
compared with the same linear combination of the three endpoint vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

ENDPOINTS = {(0.0, 0.0): "base", (1.0, 0.0): "fine-tune 1", (0.0, 1.0): "fine-tune 2"}


def endpoint_rows(alphas: np.ndarray, betas: np.ndarray) -> dict[str, int]:
    """Row index of each endpoint in the grid; all three must be there."""
    rows = {}
    for (a, b), name in ENDPOINTS.items():
        hits = np.flatnonzero(np.isclose(alphas, a) & np.isclose(betas, b))
        if not hits.size:
            raise ValueError(f"the interpolation grid lacks the {name} endpoint (alpha={a}, beta={b})")
        rows[name] = int(hits[0])
    return rows


def linear_prediction(L: np.ndarray, alphas: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """ℓ_base + α (ℓ_1 - ℓ_base) + β (ℓ_2 - ℓ_base) for every grid point: [points, N]."""
    rows = endpoint_rows(alphas, betas)
    base, first, second = L[rows["base"]], L[rows["fine-tune 1"]], L[rows["fine-tune 2"]]
    return base + np.outer(alphas, first - base) + np.outer(betas, second - base)


def row_centred_pca(L: np.ndarray, n_components: int = 2) -> np.ndarray:
    """PCA scores of L with each row's mean removed (the overall level of each model)."""
    centred = L - L.mean(axis=1, keepdims=True)
    n_components = min(n_components, *centred.shape)
    scores = PCA(n_components=n_components).fit_transform(centred)
    return np.pad(scores, ((0, 0), (0, 2 - n_components))) if n_components < 2 else scores


def interpolation_table(L: np.ndarray, model_ids: list[str], alphas, betas) -> pd.DataFrame:
    """One row per grid model: α, β, actual and predicted mean log-likelihood, PC 1 and 2."""
    alphas, betas = np.asarray(alphas, float), np.asarray(betas, float)
    predicted = linear_prediction(L, alphas, betas)
    pcs = row_centred_pca(L)
    names = {row: name for name, row in endpoint_rows(alphas, betas).items()}
    return pd.DataFrame({
        "model_id": model_ids, "alpha": alphas, "beta": betas,
        "mean_loglik": L.mean(axis=1), "predicted_mean_loglik": predicted.mean(axis=1),
        "pc1": pcs[:, 0], "pc2": pcs[:, 1],
        "endpoint": [names.get(i, "") for i in range(len(model_ids))],
    })


def grid_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Does the grid keep its structure in log-likelihood space? One row: R² of the best affine map
    from (α, β) to (PC1, PC2) of row-centred L (1: the PCA plane shows the weight grid up to an
    affine distortion), and the mean log-likelihood gained over the linear prediction off the
    endpoints (positive: interpolated models beat the mixture of their endpoints' scores)."""
    design = np.column_stack([np.ones(len(table)), table["alpha"], table["beta"]])
    pcs = table[["pc1", "pc2"]].to_numpy()
    coef, *_ = np.linalg.lstsq(design, pcs, rcond=None)
    residual = ((pcs - design @ coef) ** 2).sum()
    total = ((pcs - pcs.mean(axis=0)) ** 2).sum()
    inner = table[table["endpoint"] == ""]
    return pd.DataFrame([{
        "n_points": len(table),
        "affine_r2": float(1.0 - residual / total) if total > 0 else float("nan"),
        "mean_gain_over_linear": float((inner["mean_loglik"] - inner["predicted_mean_loglik"]).mean()),
    }])
