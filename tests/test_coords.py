import numpy as np
import pytest

from lmmap.coords import clip_matrix, double_centre, kl_estimate, squared_distances
from lmmap.embedding import components_needed, pca_cumulative_variance, tsne_embedding


@pytest.fixture
def L():
    rng = np.random.default_rng(0)
    return -200 + 30 * rng.standard_normal((9, 40)) + rng.standard_normal((9, 1)) * 50


def test_double_centring_zeroes_row_and_column_means(L):
    Q = double_centre(L)
    np.testing.assert_allclose(Q.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(Q.mean(axis=1), 0, atol=1e-10)


def test_column_centring_leaves_distances_unchanged(L):
    rows_centred = L - L.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(squared_distances(double_centre(L)), squared_distances(rows_centred), rtol=1e-9)


def test_row_centring_removes_a_models_overall_level(L):
    shifted = L.copy()
    shifted[3] += 123.0  # the same model, uniformly better on every text
    np.testing.assert_allclose(double_centre(shifted), double_centre(L), atol=1e-9)


def test_clipping_raises_only_the_bottom_quantile():
    L = np.arange(100, dtype=float).reshape(4, 25)
    clipped, value = clip_matrix(L, 0.1)
    assert value == pytest.approx(np.quantile(L, 0.1))
    assert (clipped >= value).all() and clipped.min() == value
    np.testing.assert_array_equal(clipped[value <= L], L[value <= L])
    assert (clipped == value).sum() == (value >= L).sum()


def test_kl_estimate_is_half_the_mean_squared_distance(L):
    Q = double_centre(L)
    kl = kl_estimate(Q)
    i, j = 2, 5
    assert kl[i, j] == pytest.approx(((Q[i] - Q[j]) ** 2).sum() / (2 * Q.shape[1]))
    assert np.allclose(kl, kl.T) and (np.diag(kl) == 0).all()


def test_pca_counts_components_of_a_planted_rank():
    rng = np.random.default_rng(1)
    Q = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 50)) * 10 + 1e-3 * rng.standard_normal((30, 50))
    cumulative = pca_cumulative_variance(Q)
    assert components_needed(cumulative, 0.999) == 3
    assert components_needed(np.array([0.5, 0.9, 1.0]), 0.9) == 2


def test_tsne_separates_two_planted_clusters():
    rng = np.random.default_rng(2)
    Q = np.vstack([rng.normal(0, 1, (10, 20)), rng.normal(8, 1, (10, 20))])
    xy = tsne_embedding(Q, perplexity=30, max_iter=500, seed=42)
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    cluster = np.repeat([0, 1], 10)
    assert (cluster[d.argmin(axis=1)] == cluster).all()  # every nearest neighbour is in its own cluster
    assert np.array_equal(xy, tsne_embedding(Q, perplexity=30, max_iter=500, seed=42))  # seeded


def test_farthest_point_subset_reaches_every_far_cluster_and_heatmap_draws_it():
    from lmmap import figures
    from lmmap.coords import kl_estimate

    rng = np.random.default_rng(5)
    centres = rng.normal(size=(6, 40)) * 50
    Q = np.repeat(centres, [200, 100, 50, 20, 5, 1], axis=0) + rng.normal(size=(376, 40))
    kl = kl_estimate(Q)
    cluster = np.repeat(np.arange(6), [200, 100, 50, 20, 5, 1])
    shown = figures.farthest_point_subset(kl, 12)
    assert len(set(shown)) == 12 and set(cluster[shown]) == set(range(6))
    assert (figures.farthest_point_subset(kl, 500) == np.arange(376)).all()
    labels = [f"m{i}" for i in range(376)]
    fig = figures.plot_kl_heatmap(kl, labels, [str(c) for c in cluster], max_models=100, subset=30)
    assert "30 of 376 models" in fig._suptitle.get_text()
    figures.plt.close(fig)
