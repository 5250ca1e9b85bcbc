"""Low-dimensional views of the model coordinates Q: t-SNE map and PCA variance."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE


def effective_perplexity(n_models: int, perplexity: float) -> float:
    """t-SNE needs perplexity < number of points; small demos get the largest valid value."""
    return float(min(perplexity, max(1.0, (n_models - 1) / 3)))


def tsne_embedding(Q: np.ndarray, perplexity: float = 30.0, max_iter: int = 1000,
                   seed: int = 42) -> np.ndarray:
    """2-D t-SNE of the rows of Q with squared Euclidean distances and PCA initialisation."""
    tsne = TSNE(n_components=2, perplexity=effective_perplexity(len(Q), perplexity), max_iter=max_iter,
                init="pca", metric="sqeuclidean", random_state=seed)
    return tsne.fit_transform(np.asarray(Q, dtype=np.float64))


def pca_cumulative_variance(Q: np.ndarray) -> np.ndarray:
    """Cumulative explained-variance ratio of PCA on the rows of Q (one value per component)."""
    return np.cumsum(PCA().fit(Q).explained_variance_ratio_)


def components_needed(cumulative: np.ndarray, level: float) -> int:
    """The smallest number of components whose cumulative explained variance reaches `level`."""
    return int(np.searchsorted(cumulative, level - 1e-12) + 1)
