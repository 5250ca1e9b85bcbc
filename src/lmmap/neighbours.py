"""Each model's nearest models on the map, by the KL divergence estimated from the coordinates.

KL(p_i, p_j) ≈ ||q_i - q_j||^2 / (2N) nats per text (lmmap.coords), reported also in bits per byte of
text: divided by the reference texts' mean length in UTF-8 bytes and by ln 2, so that maps built on
different text sets compare.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmmap.coords import kl_estimate, nats_to_bits_per_byte


def mean_text_bytes(texts: list[str]) -> float:
    return float(np.mean([len(t.encode("utf-8")) for t in texts]))


def kl_from(Q: np.ndarray, i: int) -> np.ndarray:
    """The KL estimate from model `i` to every model: one pass over Q, no K x K matrix."""
    diff = Q - Q[i]
    return np.einsum("ij,ij->i", diff, diff) / (2.0 * Q.shape[1])


def nearest(
    Q: np.ndarray, model_ids: list[str], model: str, k: int = 10, text_bytes: float | None = None
) -> pd.DataFrame:
    """The `k` models nearest to `model`: rank, model_id, kl_nats (per text) and kl_bits_per_byte."""
    i = model_ids.index(model)
    kl = kl_from(Q, i)
    kl[i] = np.inf
    order = np.argsort(kl, kind="stable")[:k]
    table = pd.DataFrame(
        {"rank": np.arange(1, len(order) + 1), "model_id": np.asarray(model_ids)[order], "kl_nats": kl[order]}
    )
    if text_bytes:
        table["kl_bits_per_byte"] = nats_to_bits_per_byte(kl[order], text_bytes)
    return table


def nearest_all(Q: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(indices, KL in nats) of every model's `k` nearest other models, each K x k, nearest first."""
    kl = kl_estimate(Q)
    np.fill_diagonal(kl, np.inf)
    k = min(k, len(Q) - 1)
    order = np.argsort(kl, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(kl, order, axis=1)
