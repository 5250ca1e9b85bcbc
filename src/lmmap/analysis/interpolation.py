"""Weight interpolation (paper §6.3): models θ(α, β) = θ_base + α (θ_1 - θ_base) + β (θ_2 - θ_base)
on a grid (extrapolation included) are scored like any other model; their log-likelihood vectors are
compared with the same linear combination of the three endpoint vectors. The paper clips the grid's
log-likelihoods at -1400 (far extrapolations break down) and draws the weight space with the measured
lengths of θ_1 - θ_base and θ_2 - θ_base and the angle between them."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from lmmap.errors import InputError

ENDPOINTS = {(0.0, 0.0): "base", (1.0, 0.0): "fine-tune 1", (0.0, 1.0): "fine-tune 2"}
GEOMETRY_KEYS = ("norm1", "norm2", "angle_deg")


def grid_coordinates(grid: list[dict], model_ids: list[str], where: str) -> tuple[list[float], list[float]]:
    """(α, β) of each scored model from the grid's points ({alpha, beta, model_id}); every scored
    model must be on the grid (`where` names the grid in the error)."""
    points = {point["model_id"]: point for point in grid}
    missing = [m for m in model_ids if m not in points]
    if missing:
        raise InputError(where, "scored model is not on the grid", record=missing[0], field="model_id")
    return [points[m]["alpha"] for m in model_ids], [points[m]["beta"] for m in model_ids]


def read_geometry(path: str) -> dict[str, float]:
    """The measured weight-space triangle (`lmmap interpolate`'s info file): |θ_1 - θ_base|,
    |θ_2 - θ_base| and the angle between them."""
    with open(path, encoding="utf-8") as fh:
        geometry = json.load(fh)
    bad = [k for k in GEOMETRY_KEYS if not isinstance(geometry.get(k), (int, float))]
    if bad:
        raise InputError(path, "lacks a measured number", field=bad[0])
    return {k: geometry[k] for k in GEOMETRY_KEYS}


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


def _values(tensor) -> np.ndarray:
    """A weight tensor (torch, any dtype, or array-like) as float64 numpy."""
    if hasattr(tensor, "detach"):
        return tensor.detach().to("cpu").double().numpy()
    return np.asarray(tensor, dtype=np.float64)


def weight_geometry(base: dict, first: dict, second: dict) -> dict[str, float]:
    """||θ_1 - θ_base||, ||θ_2 - θ_base|| and the angle between the two (degrees), over every
    tensor of the state dicts; one tensor at a time, so 7B models need no second copy in memory."""
    d11 = d22 = d12 = 0.0
    for key, theta0 in base.items():
        theta0 = _values(theta0)
        d1, d2 = _values(first[key]) - theta0, _values(second[key]) - theta0
        d11, d22, d12 = d11 + float((d1 * d1).sum()), d22 + float((d2 * d2).sum()), d12 + float((d1 * d2).sum())
    cosine = d12 / math.sqrt(d11 * d22) if d11 > 0 and d22 > 0 else 0.0
    return {
        "norm1": math.sqrt(d11),
        "norm2": math.sqrt(d22),
        "angle_deg": math.degrees(math.acos(min(1.0, max(-1.0, cosine)))),
    }


def weight_plane(alphas, betas, geometry: dict[str, float]) -> np.ndarray:
    """Each grid point's position in the plane of θ_base, θ_1, θ_2 (θ_base at the origin, θ_1 on the
    x axis): α d_1 + β d_2 with |d_1|, |d_2| and their angle as measured. [points, 2]"""
    angle = math.radians(geometry["angle_deg"])
    alphas, betas = np.asarray(alphas, float), np.asarray(betas, float)
    return np.column_stack(
        [
            alphas * geometry["norm1"] + betas * geometry["norm2"] * math.cos(angle),
            betas * geometry["norm2"] * math.sin(angle),
        ]
    )


def interpolation_table(
    L: np.ndarray,
    model_ids: list[str],
    alphas,
    betas,
    clip_value: float | None = None,
    geometry: dict[str, float] | None = None,
) -> pd.DataFrame:
    """One row per grid model: α, β, actual and predicted mean log-likelihood, PC 1 and 2, after
    raising log-likelihoods below `clip_value` to it (the paper: -1400); with the measured
    `geometry`, the weight-space position `weight_x`, `weight_y`."""
    alphas, betas = np.asarray(alphas, float), np.asarray(betas, float)
    if clip_value is not None:
        L = np.maximum(L, clip_value)
    predicted = linear_prediction(L, alphas, betas)
    pcs = row_centred_pca(L)
    names = {row: name for name, row in endpoint_rows(alphas, betas).items()}
    table = pd.DataFrame(
        {
            "model_id": model_ids,
            "alpha": alphas,
            "beta": betas,
            "mean_loglik": L.mean(axis=1),
            "predicted_mean_loglik": predicted.mean(axis=1),
            "pc1": pcs[:, 0],
            "pc2": pcs[:, 1],
            "endpoint": [names.get(i, "") for i in range(len(model_ids))],
        }
    )
    if geometry is not None:
        table["weight_x"], table["weight_y"] = weight_plane(alphas, betas, geometry).T
    return table


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
    return pd.DataFrame(
        [
            {
                "n_points": len(table),
                "affine_r2": float(1.0 - residual / total) if total > 0 else float("nan"),
                "mean_gain_over_linear": float((inner["mean_loglik"] - inner["predicted_mean_loglik"]).mean()),
            }
        ]
    )
