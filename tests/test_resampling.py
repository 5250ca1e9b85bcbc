"""Text resampling: probabilities, weights and the resampled coordinates (lmmap.resampling)."""

import numpy as np
import pytest

from lmmap.coords import double_centre, squared_distances
from lmmap.resampling import (
    all_texts_once,
    draw_texts,
    relative_distance_error,
    resampled_coordinates,
    sampling_probabilities,
)


def _matrix(K=12, N=300, seed=0):
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(-200, 40, N)
    spread = rng.gamma(1.0, 1.0, N)  # texts differ in how much models disagree on them
    return difficulty + rng.normal(0, 1, (K, 3)) @ rng.normal(0, 1, (3, N)) * spread - rng.gamma(2, 5, (K, 1))


def test_all_texts_once_with_uniform_probabilities_gives_the_map_exactly():
    L = _matrix()
    sample = all_texts_once(L.shape[1])
    Y, _ = resampled_coordinates(L[:, sample.indices], sample.weights)
    np.testing.assert_allclose(Y, double_centre(L), atol=1e-10)
    # the same through the general weights: pi uniform, n = N, each text drawn once
    pi = sampling_probabilities(double_centre(L), "uniform")
    weights = np.sqrt(1 / (L.shape[1] * pi))
    np.testing.assert_allclose(resampled_coordinates(L, weights)[0], double_centre(L), atol=1e-10)


def test_ls_probabilities_are_the_column_variances_across_models():
    Q = double_centre(_matrix())
    pi = sampling_probabilities(Q, "ls")
    np.testing.assert_allclose(pi, Q.var(axis=0) / Q.var(axis=0).sum())


def test_kl_probabilities_follow_the_fourth_moment_of_pairwise_differences():
    Q = double_centre(_matrix(K=6, N=40))
    brute = np.sqrt(((Q[:, None, :] - Q[None, :, :]) ** 4).sum(axis=(0, 1)))
    np.testing.assert_allclose(sampling_probabilities(Q, "kl"), brute / brute.sum())


def test_duplicates_are_merged_with_weight_sqrt_count():
    pi = np.array([0.7, 0.1, 0.1, 0.1])
    sample = draw_texts(pi, 50, seed=3)
    assert sample.counts.sum() == 50 and len(np.unique(sample.indices)) == len(sample)
    np.testing.assert_allclose(sample.weights, np.sqrt(sample.counts / (50 * pi[sample.indices])))


def test_resampled_distances_are_unbiased_and_ls_beats_uniform():
    L = _matrix(K=10, N=400, seed=1)
    Q = double_centre(L)
    D = squared_distances(Q)
    errors = {}
    for method in ("uniform", "ls", "kl"):
        pi = sampling_probabilities(Q, method)
        draws = [draw_texts(pi, 100, seed) for seed in range(200)]
        mats = [squared_distances(resampled_coordinates(L[:, s.indices], s.weights)[0]) for s in draws]
        assert relative_distance_error(D, np.mean(mats, axis=0)) < 0.05  # unbiased on average
        errors[method] = np.mean([relative_distance_error(D, m) for m in mats])
    assert errors["ls"] < errors["uniform"] and errors["kl"] < errors["uniform"]


def test_models_added_with_the_maps_column_means_sit_where_they_would_in_the_map():
    L = _matrix(K=9, N=200)
    sample = draw_texts(sampling_probabilities(double_centre(L), "ls"), 80, seed=0)
    Y_all, _ = resampled_coordinates(L[:, sample.indices], sample.weights)
    Y_map, means = resampled_coordinates(L[:-2, sample.indices], sample.weights)
    Y_new, _ = resampled_coordinates(L[-2:, sample.indices], sample.weights, column_means=means)
    # distances among the map's models and from the new ones are those of a joint resampling
    joint = squared_distances(Y_all)
    np.testing.assert_allclose(squared_distances(np.vstack([Y_map, Y_new])), joint, rtol=1e-9, atol=1e-6)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown sampling method"):
        sampling_probabilities(np.zeros((2, 3)), "entropy")
