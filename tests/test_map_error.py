"""Measured map error of resampled text subsets, and the map's bootstrap uncertainty
(lmmap.analysis.resampling_error, lmmap.analysis.map_uncertainty, `analyze resampling-error|map-uncertainty`)."""

import numpy as np
import pandas as pd
import pytest

from lmmap.analysis import map_uncertainty as mu
from lmmap.analysis import resampling_error as re_
from lmmap.cli import main
from lmmap.coords import clip_matrix, double_centre
from lmmap.provenance import read_provenance
from lmmap.resampling import draw_texts, resampled_coordinates, sampling_probabilities
from lmmap.storage import load_npz, save_npz


def _matrix(K=12, N=300, informative=None, seed=0):
    """Log-likelihoods: text difficulty, model level, and model differences that vary by text
    (only on the first `informative` texts, when given: the rest carry no information)."""
    rng = np.random.default_rng(seed)
    spread = rng.gamma(1.0, 1.0, N)
    if informative is not None:
        spread[informative:] = 0.0
    differences = rng.normal(0, 1, (K, 3)) @ rng.normal(0, 1, (3, N)) * spread
    return rng.normal(-200, 40, N) + differences - rng.gamma(2, 5, (K, 1))


def test_resampling_q_gives_the_coordinates_of_resampling_the_clipped_matrix():
    clipped, _ = clip_matrix(_matrix(), 0.02)
    Q = double_centre(clipped)
    sample = draw_texts(sampling_probabilities(Q, "ls"), 120, seed=4)
    from_L, _ = resampled_coordinates(clipped[:, sample.indices], sample.weights)
    from_Q, _ = resampled_coordinates(Q[:, sample.indices], sample.weights)
    np.testing.assert_allclose(from_Q, from_L, atol=1e-8)


def test_draw_grid_always_holds_half_and_all_the_texts():
    assert re_.draw_grid(200, [0.1, 0.3]) == [20, 60, 100, 200]
    assert re_.draw_grid(10, [0.01]) == [1, 5, 10]


def test_ls_is_far_below_uniform_when_few_texts_tell_models_apart():
    # 30 of 300 texts separate the models: LS draws only those, uniform mostly wastes its draws
    Q = double_centre(_matrix(K=10, N=300, informative=30))
    measured = re_.measure_errors(Q, ["uniform", "ls"], [30, 150, 300], seeds=20)
    table = re_.error_table(measured, 300).set_index(["method", "n_draws"])
    for n in (30, 150, 300):
        assert table.loc[("ls", n), "error_mean"] < 0.5 * table.loc[("uniform", n), "error_mean"]
    uniform = table.loc["uniform", "error_mean"].to_numpy()
    assert np.all(np.diff(uniform) < 0)  # more draws, less error
    assert table.loc[("uniform", 300), "fraction_of_N"] == 1.0 and table.loc[("ls", 30), "seeds"] == 20
    assert (table["unique_texts"] <= table.index.get_level_values("n_draws")).all()


def test_matching_draws_read_off_a_hand_made_power_law():
    # uniform: 1/sqrt(n); ls: 1/sqrt(4n), i.e. ls with n draws matches uniform with 4n
    N = 400
    uniform = [("uniform", n, n * 0.8, 1 / np.sqrt(n)) for n in (25, 50, 100, 200, 400)]
    ls = [("ls", n, n * 0.5, 1 / np.sqrt(4 * n)) for n in (20, 30, 70, 160, 300)]  # targets between points
    rows = uniform + ls
    table = pd.DataFrame(rows, columns=["method", "n_draws", "unique_texts", "error_mean"])
    summary = re_.matching_draws(table, N).set_index(["reference", "method"])
    half, full = "uniform, n = 0.5 N", "uniform, n = 1 N"
    assert summary.loc[(half, "ls"), "n_draws"] == pytest.approx(50)
    assert summary.loc[(full, "ls"), "n_draws"] == pytest.approx(100)
    assert summary.loc[(full, "ls"), "unique_texts"] == pytest.approx(50)
    assert summary.loc[(full, "ls"), "unique_fraction_of_reference"] == pytest.approx(50 / 320)
    assert summary.loc[(full, "uniform"), "n_draws"] == pytest.approx(400)
    # an error below every measured one is not extrapolated
    table.loc[table["method"] == "ls", "error_mean"] *= 10
    assert np.isnan(re_.matching_draws(table, N).set_index(["reference", "method"]).loc[(full, "ls"), "n_draws"])


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_procrustes_recovers_a_known_rotation_reflection_translation_and_scale(scale):
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(20, 2))
    angle = np.radians(37)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    for flip in (np.eye(2), np.diag([1.0, -1.0])):
        moved = scale * reference @ rotation @ flip + np.array([5.0, -3.0])
        np.testing.assert_allclose(mu.procrustes_align(moved, reference), reference, atol=1e-10)
    moved = scale * reference @ rotation + np.array([5.0, -3.0])
    without_scale = mu.procrustes_align(moved, reference, scale=False)
    np.testing.assert_allclose(np.ptp(without_scale, axis=0) / np.ptp(reference, axis=0), scale, rtol=1e-10)


def _two_models(n_texts, seed):
    """Two models whose per-text difference is normal: KL = half the variance of the difference."""
    d = np.random.default_rng(seed).normal(0, 2.0, n_texts)
    return d, double_centre(np.vstack([d, np.zeros(n_texts)]))


def test_bootstrap_se_of_a_kl_estimate_is_the_se_of_a_mean_and_shrinks_as_one_over_sqrt_n():
    d, Q = _two_models(2000, seed=0)
    boot = mu.bootstrap_map(Q, replicates=400, seed=0)
    per_text = (d - d.mean()) ** 2 / 2  # KL = the mean over texts of this
    np.testing.assert_allclose(boot.kl[0, 1], per_text.mean(), rtol=1e-10)
    analytic = per_text.std(ddof=1) / np.sqrt(len(d))
    assert boot.kl_se[0, 1] == pytest.approx(analytic, rel=0.12)
    assert boot.kl_se[0, 0] == 0.0 and boot.positions is None
    _, Q4 = _two_models(8000, seed=0)
    ratio = boot.kl_se[0, 1] / mu.bootstrap_map(Q4, replicates=400, seed=0).kl_se[0, 1]
    assert ratio == pytest.approx(2.0, rel=0.15)


def test_positional_spread_recovers_a_known_covariance():
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(3, 2)) * 10
    angle = np.radians(30)
    axes = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    noise = rng.normal(size=(20000, 3, 2)) * np.array([2.0, 0.5]) @ axes.T
    spread = mu.positional_spread(reference + noise, reference)
    np.testing.assert_allclose(spread["sigma_major"], 2.0, rtol=0.03)
    np.testing.assert_allclose(spread["sigma_minor"], 0.5, rtol=0.03)
    np.testing.assert_allclose(spread["angle_deg"], 30.0, atol=1.5)
    np.testing.assert_allclose(spread["rms_displacement"], np.sqrt(2.0**2 + 0.5**2), rtol=0.03)


def test_bootstrapped_maps_are_aligned_to_the_reference():
    from lmmap.embedding import tsne_embedding

    Q = double_centre(_matrix(K=15, N=200, seed=3))
    reference = tsne_embedding(Q, perplexity=4, max_iter=500, seed=0)
    boot = mu.bootstrap_map(Q, replicates=3, seed=0, reference=reference, perplexity=4, max_iter=250)
    assert boot.positions.shape == (3, 15, 2)
    extent = np.sqrt(np.sum(reference.var(axis=0)))
    spread = mu.positional_spread(boot.positions, reference)
    assert spread["rms_displacement"].median() < 0.5 * extent  # the same map, not another one
    assert np.all(boot.unique_texts < 200) and np.all(boot.unique_texts > 100)


@pytest.fixture(scope="module")
def coordinates(tmp_path_factory):
    root = tmp_path_factory.mktemp("map")
    Q = double_centre(_matrix(K=14, N=120, seed=5))
    ids = [f"org/m{i:02d}" for i in range(14)]
    texts = {"text_ids": np.array([f"t{j}" for j in range(120)]), "domains": np.repeat(["a", "b"], 60)}
    save_npz(root / "coordinates.npz", Q=Q, model_ids=np.array(ids), clip_value=np.array(-500.0), **texts)
    xy = np.random.default_rng(0).normal(size=(14, 2)) * 5
    order = np.arange(14)[::-1]  # the map's rows in another order than the matrix's
    frame = pd.DataFrame({"model_id": np.array(ids)[order], "x": xy[:, 0], "y": xy[:, 1]})
    frame.assign(type=[f"t{i % 3}" for i in range(14)]).to_csv(root / "tsne.csv", index=False)
    return root


def test_resampling_error_command_writes_tables_figure_and_provenance(coordinates, tmp_path):
    out = tmp_path / "re"
    argv = ["analyze", "resampling-error", "--coordinates", str(coordinates / "coordinates.npz")]
    argv += ["--methods", "ls", "--fractions", "0.25", "--seeds", "4", "--out-stem", str(out / "errors")]
    assert main([*argv, "--summary-stem", str(out / "matching"), "--figure-stem", str(out / "errors")]) == 0
    table = pd.read_csv(out / "errors.csv")
    assert list(table["method"].unique()) == ["uniform", "ls"]  # uniform always: the reference
    assert sorted(table["n_draws"].unique()) == [30, 60, 120]
    assert len(pd.read_csv(out / "matching.csv")) == 4
    assert (out / "errors.png").exists() and read_provenance(out / "matching.md")["n_texts"] == 120


def test_map_uncertainty_command_follows_the_maps_row_order(coordinates, tmp_path):
    out = tmp_path / "mu"
    argv = ["analyze", "map-uncertainty", "--coordinates", str(coordinates / "coordinates.npz")]
    argv += ["--embedding", str(coordinates / "tsne.csv"), "--replicates", "3", "--max-iter", "250"]
    argv += ["--perplexity", "4", "--out-stem", str(out / "models"), "--pairs", str(out / "pairs.csv")]
    argv += ["--hue", "type", "--seed", "0"]
    assert main([*argv, "--kl-se", str(out / "kl_se.npz"), "--figure-stem", str(out / "ellipses")]) == 0
    table, tsne = pd.read_csv(out / "models.csv"), pd.read_csv(coordinates / "tsne.csv")
    assert table["model_id"].tolist() == tsne["model_id"].tolist()
    np.testing.assert_allclose(table[["x", "y"]], tsne[["x", "y"]])
    assert (table["sigma_major"] >= table["sigma_minor"]).all()
    stored = load_npz(out / "kl_se.npz")
    Q = load_npz(coordinates / "coordinates.npz")["Q"]
    first, last = tsne["model_id"].iloc[0], tsne["model_id"].iloc[-1]  # org/m13 and org/m00
    kl = np.sum((Q[13] - Q[0]) ** 2) / (2 * Q.shape[1])
    assert stored["KL"][0, -1] == pytest.approx(kl) and stored["model_ids"][0] == first
    pairs = pd.read_csv(out / "pairs.csv")
    assert len(pairs) == 14 * 13 // 2
    assert pairs.set_index(["model_a", "model_b"]).loc[(first, last), "kl"] == pytest.approx(kl)
    assert read_provenance(out / "kl_se.npz")["tsne_max_iter_per_replicate"] == 250
    assert (out / "ellipses.pdf").exists()


def test_map_uncertainty_refuses_a_map_of_other_models(coordinates, tmp_path, capsys):
    tsne = pd.read_csv(coordinates / "tsne.csv")
    tsne.loc[0, "model_id"] = "org/unknown"
    tsne.to_csv(tmp_path / "tsne.csv", index=False)
    argv = ["analyze", "map-uncertainty", "--coordinates", str(coordinates / "coordinates.npz")]
    argv += ["--embedding", str(tmp_path / "tsne.csv"), "--out-stem", str(tmp_path / "m"), "--pairs", "p.csv"]
    argv += ["--hue", "type", "--replicates", "3", "--max-iter", "250", "--perplexity", "4", "--seed", "0"]
    assert main([*argv, "--kl-se", str(tmp_path / "k.npz"), "--figure-stem", str(tmp_path / "f")]) != 0
    assert "models differ from the coordinates'" in capsys.readouterr().err
