"""Resampling texts by importance (Oyama et al., "Likelihood Variance as Text Importance for Resampling
Texts to Map Language Models", EMNLP 2025 Findings, arXiv 2505.15428).

n texts are drawn with replacement from the N texts of a map with probabilities pi; each drawn text
gets the weight w = sqrt(count / (n * pi)), so that sum over drawn texts of w^2 * f(text) is an
unbiased estimate of the sum over all N texts of f(text). With f the squared coordinate difference of
two models, the resampled coordinates reproduce the map's squared distances ||q_i - q_j||^2.

- uniform: pi = 1/N.
- ls (length-squared): pi_s proportional to ||Q[:, s]||^2, the across-model variance of text s's
  log-likelihood: texts on which models disagree are drawn more often.
- kl: pi_s proportional to sqrt(sum_ij (q_is - q_js)^4), the allocation that minimises the summed
  variance of all K^2 resampled squared distances (hence of the KL estimates).
"""

from __future__ import annotations

import dataclasses

import numpy as np

METHODS = ("uniform", "ls", "kl")


def sampling_probabilities(Q: np.ndarray, method: str) -> np.ndarray:
    """pi over the N texts (columns of Q) for `method` (see the module docstring)."""
    K, N = Q.shape
    if method == "uniform":
        importance = np.ones(N)
    elif method == "ls":
        importance = np.einsum("ks,ks->s", Q, Q)
    elif method == "kl":
        # sum_ij (a_i - a_j)^4 = 2K m4 - 8 m1 m3 + 6 m2^2 with m_k = sum_i a_i^k: no K x K x N array
        m1, m2, m3, m4 = (np.sum(Q**k, axis=0) for k in (1, 2, 3, 4))
        importance = np.sqrt(np.maximum(2 * K * m4 - 8 * m1 * m3 + 6 * m2**2, 0.0))
    else:
        raise ValueError(f"unknown sampling method {method!r}; expected one of {', '.join(METHODS)}")
    total = importance.sum()
    if not total > 0:  # every model identical on every text: nothing to prefer
        return np.full(N, 1.0 / N)
    return importance / total


@dataclasses.dataclass(frozen=True)
class TextSample:
    """n draws merged into unique texts: column `indices` (sorted) with their `weights`."""

    indices: np.ndarray  # int [d], unique, increasing
    weights: np.ndarray  # float [d], sqrt(count / (n * pi))
    counts: np.ndarray  # int [d], how often each was drawn
    n_draws: int

    def __len__(self) -> int:
        return len(self.indices)


def draw_texts(probabilities: np.ndarray, n_draws: int, seed: int) -> TextSample:
    """Draw `n_draws` texts with replacement; duplicates merged into one column of weight sqrt(count) * w."""
    if n_draws < 1:
        raise ValueError(f"n_draws must be at least 1, got {n_draws}")
    rng = np.random.default_rng(seed)
    drawn = rng.choice(len(probabilities), size=n_draws, replace=True, p=probabilities)
    indices, counts = np.unique(drawn, return_counts=True)
    weights = np.sqrt(counts / (n_draws * probabilities[indices]))
    return TextSample(indices=indices, weights=weights, counts=counts, n_draws=n_draws)


def all_texts_once(n_texts: int) -> TextSample:
    """The sample that is the whole text set, each text once with weight 1: the map itself."""
    return TextSample(np.arange(n_texts), np.ones(n_texts), np.ones(n_texts, dtype=int), n_texts)


def resampled_coordinates(
    L_sub: np.ndarray, weights: np.ndarray, column_means: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of models on a weighted text sample, from their clipped log-likelihoods on it.

    L_sub [K, d] holds the columns of the sample. Each row loses its w^2-weighted mean, columns are
    scaled by w, and then the column means are removed: the map's own (`column_means`, for models
    added to an existing resampled map) or this matrix's. Returns (Y, column_means). With every text
    drawn once under uniform pi (w = 1), Y is the double-centred matrix Q."""
    w2 = weights**2
    row_means = (L_sub @ w2) / w2.sum()
    Y = (L_sub - row_means[:, None]) * weights
    if column_means is None:
        column_means = Y.mean(axis=0)
    Y -= column_means
    return Y, column_means


def relative_distance_error(D_full: np.ndarray, D_sample: np.ndarray) -> float:
    """||D_sample - D_full||_F / ||D_full||_F for two matrices of pairwise squared distances."""
    return float(np.linalg.norm(D_sample - D_full) / np.linalg.norm(D_full))
