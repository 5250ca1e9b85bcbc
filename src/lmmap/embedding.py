"""Low-dimensional views of the model coordinates Q: t-SNE map and PCA variance."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE


def effective_perplexity(n_models: int, perplexity: float) -> float:
    """t-SNE needs perplexity < number of points; small demos get the largest valid value."""
    return float(min(perplexity, max(1.0, (n_models - 1) / 3)))


def tsne_embedding(
    Q: np.ndarray, perplexity: float, max_iter: int, seed: int, init: np.ndarray | None = None
) -> np.ndarray:
    """2-D t-SNE of the rows of Q with squared Euclidean distances and PCA initialisation, or, to
    refine an existing map (`init`, one row per row of Q), starting from it without early
    exaggeration: that phase only gathers clusters from a random start, and would disturb the map."""
    tsne = TSNE(
        n_components=2,
        perplexity=effective_perplexity(len(Q), perplexity),
        max_iter=max_iter,
        init="pca" if init is None else np.asarray(init, dtype=np.float64),
        early_exaggeration=12.0 if init is None else 1.0,
        metric="sqeuclidean",
        random_state=seed,
    )
    return tsne.fit_transform(np.asarray(Q, dtype=np.float64))


GRAM_PCA_ABOVE = 2000  # min(K, N) above which the variances come from the smaller Gram matrix


def pca_cumulative_variance(Q: np.ndarray, gram_above: int = GRAM_PCA_ABOVE) -> np.ndarray:
    """Cumulative explained-variance ratio of PCA on the rows of Q (one value per component).

    Up to `gram_above` models (or texts) this is scikit-learn's PCA (a full SVD). Above, the same
    variances are the eigenvalues of the centred Gram matrix in the smaller dimension (K x K, or N x N
    when there are more models than texts), computed without eigenvectors: exact (not randomized),
    equal to the SVD's up to rounding, and at K = N = 10,000 minutes faster and a third of the memory.
    """
    Q = np.asarray(Q)
    if min(Q.shape) <= gram_above:
        return np.cumsum(PCA().fit(Q).explained_variance_ratio_)
    from scipy.linalg import eigvalsh

    from lmmap.analysis.prediction import centred_gram

    if Q.shape[0] <= Q.shape[1]:
        gram = centred_gram(Q)
    else:  # more models than texts: the N x N scatter matrix of the centred rows, block by block
        mean = Q.mean(axis=0, dtype=np.float64)
        gram = np.zeros((Q.shape[1], Q.shape[1]))
        for start in range(0, len(Q), 2048):
            block = Q[start : start + 2048] - mean
            gram += block.T @ block
    variances = np.clip(eigvalsh(gram, overwrite_a=True, check_finite=False), 0.0, None)[::-1]
    del gram
    return np.cumsum(variances) / variances.sum()


def components_needed(cumulative: np.ndarray, level: float) -> int:
    """The smallest number of components whose cumulative explained variance reaches `level`."""
    return int(np.searchsorted(cumulative, level - 1e-12) + 1)
