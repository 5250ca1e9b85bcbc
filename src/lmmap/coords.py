"""From the log-likelihood matrix L to model coordinates Q.

Q is L with its lowest values clipped (a global quantile) and then double-centred: row means
removed (each model's overall log-likelihood level), then column means (each text's difficulty).
Then ||q_i - q_j||^2 / N approximates 2 KL(p_i, p_j) (Oyama et al., 2025).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics.pairwise import euclidean_distances


def clip_matrix(L: np.ndarray, quantile: float) -> tuple[np.ndarray, float]:
    """Raise every value below the global `quantile` of L to that quantile; return (clipped, value)."""
    value = float(np.quantile(L, quantile))
    return np.maximum(L, value), value


def stored_clip_value(coordinates_path) -> float:
    """The clip value a map's coordinates were built with (`coordinates` stores it in its npz)."""
    from lmmap.errors import InputError
    from lmmap.storage import load_npz

    value = float(load_npz(coordinates_path, required=("clip_value",))["clip_value"])
    if not math.isfinite(value):
        raise InputError(coordinates_path, f"stores a clip value that is not finite ({value})", field="clip_value")
    return value


def append_clip(L_new: np.ndarray, clip_value: float) -> np.ndarray:
    """Clip models added to an existing map with the map's own threshold (the authors' `append`):
    the quantile is not recomputed, so the added rows do not move the map's clipping, and a row
    clipped here is clipped exactly as it would have been in the map."""
    return np.maximum(L_new, clip_value)


def double_centre(L: np.ndarray) -> np.ndarray:
    """Subtract each row's mean, then each column's mean."""
    centred = L - L.mean(axis=1, keepdims=True)
    centred -= centred.mean(axis=0, keepdims=True)  # in place: one copy of L, not two
    return centred


def squared_distances(Q: np.ndarray) -> np.ndarray:
    """Pairwise ||q_i - q_j||^2, via the Gram matrix (one K x K array), clamped at zero, zero diagonal."""
    return euclidean_distances(Q, squared=True)


def kl_estimate(Q: np.ndarray) -> np.ndarray:
    """The symmetric KL estimate KL(p_i, p_j) ≈ ||q_i - q_j||^2 / (2N), per text."""
    d2 = squared_distances(Q)
    d2 /= 2.0 * Q.shape[1]
    return d2


def nats_to_bits_per_byte(kl_nats_per_text, mean_text_bytes: float):
    """KL per text in nats -> bits per byte of text. (For ||q_i - q_j||^2 / N, which is 2 KL, the
    divisor is 2 * mean bytes * ln 2.)"""
    return np.asarray(kl_nats_per_text, dtype=float) / (mean_text_bytes * math.log(2))
