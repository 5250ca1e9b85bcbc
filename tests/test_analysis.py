"""Analyses on synthetic data with planted answers: dimensions, best domain/task, ridge prediction,
leakage, interpolation, the model list and the published output files."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from lmmap.analysis import interpolation, leakage, model_list, plots, prediction, tsne_map
from lmmap.analysis.dimensionality import dimensionality_table
from lmmap.analysis.outputs import publish_table
from lmmap.coords import double_centre
from lmmap.provenance import read_provenance


def planted_rank(variances, n_rows=60, n_cols=300, seed=0):
    """A double-centred matrix whose PCA variance ratios are exactly `variances` (normalised)."""
    rng = np.random.default_rng(seed)
    r = len(variances)
    scores = rng.standard_normal((n_rows, r))
    left = np.linalg.qr(scores - scores.mean(axis=0))[0]  # centred columns: PCA sees them as they are
    right = np.linalg.qr(rng.standard_normal((n_cols, r)))[0][:, :r]
    return (left * np.sqrt(variances)) @ right.T


def test_dimensionality_counts_components_of_planted_spectrum():
    variances = np.array([50, 25, 10, 6, 4, 3, 2], dtype=float)  # cumulative: .5 .75 .85 .91 .95 .98 1
    table, cumulative = dimensionality_table(planted_rank(variances), [0.9, 0.95, 0.99])
    assert table["components"].tolist() == [4, 5, 7]
    np.testing.assert_allclose(cumulative[:7], np.cumsum(variances) / variances.sum(), atol=1e-10)


def test_best_domain_finds_planted_strength():
    rng = np.random.default_rng(1)
    domains = np.repeat(["code", "law", "prose"], 20)
    L = rng.normal(size=(3, 60))
    for model, domain in enumerate(["law", "prose", "code"]):
        L[model, domains == domain] += 5.0
    assert tsne_map.best_domain(double_centre(L), domains).tolist() == ["law", "prose", "code"]


def test_best_task_is_relative_to_other_models():
    scores = pd.DataFrame({"easy": [90.0, 80.0, 70.0], "hard": [20.0, 35.0, np.nan]})
    # model 0 is best at "easy" in absolute and relative terms; model 1 is relatively best at "hard"
    assert tsne_map.best_task(scores).tolist() == ["easy", "hard", "easy"]
    unscored = tsne_map.best_task(pd.DataFrame({"a": [np.nan, 1.0]}))
    assert pd.isna(unscored[0]) and unscored[1] == "a"


def test_map_order_sorts_by_date_then_name_with_undated_last():
    ids = ["b", "a", "c", "d"]
    created = pd.Series(["2024-01-01", "2024-01-01", None, "2023-05-01"])
    assert [ids[i] for i in tsne_map.map_order(ids, created)] == ["d", "a", "b", "c"]


def test_shared_inner_cv_chooses_what_ridgecv_chooses():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 20))
    Y = np.column_stack([X @ rng.normal(size=20) + s * rng.normal(size=50) for s in (0.1, 3.0, 30.0)])
    grids = [np.logspace(-2, 4, 13), np.logspace(-2, 4, 13), np.logspace(1, 9, 9)]
    chosen = prediction.select_alphas(X, Y, grids, KFold(5))
    for t, grid in enumerate(grids):  # RidgeCV(cv=5): unshuffled 5-fold, best mean R²
        assert chosen[t] == pytest.approx(RidgeCV(alphas=grid, cv=5).fit(X, Y[:, t]).alpha_)
    assert chosen[0] < chosen[1]  # noisier target, stronger regularisation


def test_out_of_fold_predictions_are_ridgecv_on_the_training_rows_in_order(planted_benchmark):
    """The paper's fit per outer fold: RidgeCV(alphas, cv=5) on the raw features; the fast path on
    the reduced basis must pick the same alphas and give the same predictions."""
    L, _, targets, groups = planted_benchmark
    Y = targets.assign(mean_logp=L.mean(axis=1)).to_numpy()
    settings = prediction.TargetSettings.for_targets([*targets.columns, "mean_logp"], np.logspace(1, 9, 9))
    predicted, chosen = prediction.cross_validated_predictions(L, Y, groups, "group", 3, settings)
    splitter = prediction.outer_splitter("group", 5, 3, groups)
    for fold, (train, test) in enumerate(splitter.split(L, Y, groups)):
        for t, grid in enumerate(settings.alphas):
            reference = RidgeCV(alphas=grid, cv=5).fit(L[train], Y[train, t])
            assert chosen[fold, t] == pytest.approx(reference.alpha_)
            expected = reference.predict(L[test])
            expected = np.clip(expected, 0, 100) if t < targets.shape[1] else expected
            np.testing.assert_allclose(predicted[test, t], expected, rtol=1e-6, atol=1e-6)


def test_grouped_cv_never_shares_a_type_between_train_and_test():
    groups = np.repeat(["a", "b", "c", "d", "e", "f"], 5)
    splitter = prediction.outer_splitter("group", 5, seed=0, groups=groups)
    for train, test in splitter.split(groups, groups, groups):
        assert not set(groups[train]) & set(groups[test])


@pytest.fixture
def planted_benchmark():
    """Scores that are a linear function of a few coordinate directions (plus small noise)."""
    rng = np.random.default_rng(4)
    K, N = 80, 400
    latent = rng.normal(size=(K, 3))
    L = -300 + latent @ rng.normal(size=(3, N)) * 4 + rng.normal(size=(K, N)) + rng.normal(size=(K, 1)) * 20
    Q = double_centre(L)
    weights = {"t1": [8, 0, 0], "t2": [0, 6, 3], "t3": [3, -3, 5]}
    targets = pd.DataFrame(
        {t: 50 + latent @ np.array(w, float) + rng.normal(size=K) for t, w in weights.items()},
        index=[f"m{i}" for i in range(K)],
    )
    targets["mean"] = targets.mean(axis=1)
    groups = np.array([f"type{i % 8}" for i in range(K)])
    return L, Q, targets, groups


def test_ridge_prediction_recovers_planted_scores(planted_benchmark):
    L, Q, targets, groups = planted_benchmark
    summary, per_seed, predictions = prediction.run_prediction(
        {"Q": Q, "L": L}, targets, groups, seeds=range(2), alphas=np.logspace(0, 6, 4), score_range=(0, 100)
    )
    assert len(summary) == 2 * 2 * 4 and set(per_seed["seed"]) == {0, 1}
    assert (summary["pearson_mean"] > 0.95).all(), summary
    assert predictions["predicted"].between(0, 100).all()
    assert len(predictions) == 2 * 2 * 2 * 4 * len(targets)
    assert set(summary["grouping"]) == {"group (8 groups)", "none"}


def test_mean_logp_target_has_its_own_alphas_and_is_not_clipped(planted_benchmark):
    L, Q, targets, groups = planted_benchmark
    with_logp = targets.assign(mean_logp=L.mean(axis=1))  # about -300: clipping would make it 0
    summary, _, predictions = prediction.run_prediction({"Q": Q}, with_logp, groups, seeds=range(1))
    logp = predictions[predictions["target"] == "mean_logp"]
    assert (logp["predicted"] < -100).all()
    medians = summary.set_index(["cv", "target"])["median_alpha"]
    assert all(1e-4 <= medians[cv, "mean_logp"] <= 1e4 for cv in ("group", "kfold"))
    assert all(medians[cv, "t1"] >= 10 for cv in ("group", "kfold"))  # the task grid starts at 1e1


def test_spread_is_population_std_and_seed_mean_is_correlated(planted_benchmark):
    _, Q, targets, groups = planted_benchmark
    summary, per_seed, predictions = prediction.run_prediction(
        {"Q": Q}, targets, groups, cv_kinds=["kfold"], seeds=range(3)
    )
    row = summary.set_index("target").loc["t2"]
    values = per_seed.loc[per_seed["target"] == "t2", "pearson"]
    assert row["pearson_std"] == pytest.approx(np.std(values))  # ddof 0, as the paper's ±
    averaged = predictions[predictions["target"] == "t2"].groupby("model_id")["predicted"].mean()
    expected = np.corrcoef(targets.loc[averaged.index, "t2"], averaged)[0, 1]
    assert row["pearson_of_mean"] == pytest.approx(expected)


def test_prediction_scatter_puts_seed_mean_on_x_and_truth_on_y_and_states_the_tables_r(planted_benchmark):
    _, Q, targets, groups = planted_benchmark
    summary, _, predictions = prediction.run_prediction(
        {"Q": Q}, targets[["t1"]], groups, cv_kinds=["kfold"], seeds=range(2)
    )
    averaged = prediction.seed_mean_predictions(predictions)
    colour = pd.Series(np.arange(len(targets), dtype=float), index=targets.index)
    fig = plots.prediction_scatter(averaged, colour, "t", summary=summary)
    points = fig.axes[0].collections[0]
    np.testing.assert_allclose(points.get_offsets()[:, 0], averaged["predicted"])
    np.testing.assert_allclose(points.get_offsets()[:, 1], averaged["true"])
    assert points.get_cmap().name == "gnuplot_r"
    row = summary.set_index("target").loc["t1"]
    assert f"r = {row['pearson_mean']:.3f} ± {row['pearson_std']:.3f}" in fig.axes[0].get_title()


def test_predictions_are_clipped_to_the_score_range(planted_benchmark):
    _, Q, targets, groups = planted_benchmark
    settings = prediction.TargetSettings.for_targets(targets.columns, [1.0])
    predicted, _ = prediction.cross_validated_predictions(
        Q, targets.to_numpy(), groups, "kfold", 0, settings, score_range=(45.0, 55.0)
    )
    assert predicted.min() >= 45.0 and predicted.max() <= 55.0 and (predicted == 55.0).any()


def test_baseline_correlation_matches_numpy():
    rng = np.random.default_rng(5)
    mean_loglik = pd.Series(rng.normal(size=30))
    targets = pd.DataFrame({"a": mean_loglik * 2 + rng.normal(size=30), "b": rng.normal(size=30)})
    table = prediction.baseline_correlations(mean_loglik, targets)
    assert table.loc[0, "pearson"] == pytest.approx(np.corrcoef(mean_loglik, targets["a"])[0, 1])
    assert table.loc[0, "pearson"] > 0.8 > abs(table.loc[1, "pearson"])


def test_leakage_screen_flags_planted_model_and_its_domain():
    rng = np.random.default_rng(6)
    K = 60
    bench = rng.uniform(20, 80, size=K)
    domains = ["code", "law", "news", "wiki"]
    per_domain = pd.DataFrame({d: -500 + 3 * bench + rng.normal(scale=2.0, size=K) for d in domains})
    per_domain.loc[17, "news"] += 80.0  # model 17 saw the news texts
    frame = pd.DataFrame(
        {
            "model_id": [f"m{i}" for i in range(K)],
            "type": "t",
            "group": "t",
            "mean_loglik": per_domain.mean(axis=1),
            "benchmark_mean": bench,
        }
    )
    for method in leakage.METHODS:
        screen, _ = leakage.leakage_screen(
            frame, per_domain, threshold=4.0, method=method, predictors=frame[["benchmark_mean"]]
        )
        assert screen.loc[screen["flagged"], "model_id"].tolist() == ["m17"]
        assert screen.loc[0, "top_domains"].startswith("news")
        assert screen.loc[0, "z:news"] > 10


@pytest.mark.parametrize("seed", [0, 1])
def test_default_leakage_screen_meets_its_targets_on_planted_data(seed):
    """At the paper's size, planted models with a constant excess of 5 model-noise SDs: the default
    (within families on the task scores, 3.0) flags at least 75% of them and at most 1% of the others;
    the one-line screen at its former default flags few of them."""
    from lmmap.analysis.planted import planted_leakage, screen_metrics

    data = planted_leakage(K=1018, n_texts=200, excess=25.0, seed=seed)
    frame = data.frame()
    z = {}
    for method in leakage.METHODS:
        screen, _ = leakage.leakage_screen(
            frame, data.domain_means().iloc[:, :1], 3.0, method=method, predictors=data.tasks
        )
        z[method] = screen.set_index("model_id").loc[frame["model_id"], "residual_z"].to_numpy()
    default = screen_metrics(z["within"], data.leaked, [3.0]).iloc[0]
    assert default["recall"] >= 0.75 and default["false_flag_rate"] <= 0.01, default
    assert default["auc"] > 0.97
    assert screen_metrics(z["global"], data.leaked, [3.5]).iloc[0]["recall"] < 0.5


def test_small_groups_share_a_pooled_centre():
    values = np.array([1.0, 2.0, 3.0, 10.0, 20.0])
    centred = leakage.centre_on_groups(values, np.array(["a", "a", "a", "b", "c"]))[:, 0]
    np.testing.assert_allclose(centred, [-1.0, 0.0, 1.0, -5.0, 5.0])  # b and c: one pooled median, 15


def test_interpolation_prediction_is_exact_for_linear_log_likelihoods():
    rng = np.random.default_rng(7)
    base, first, second = rng.normal(size=(3, 50))
    grid = [(a, b) for a in np.linspace(0, 1, 6) for b in np.linspace(0, 1, 6)]
    alphas, betas = np.array(grid).T
    L = base + np.outer(alphas, first - base) + np.outer(betas, second - base)
    L_noisy = L + np.outer(alphas * betas, rng.normal(size=50))  # curvature the prediction misses
    table = interpolation.interpolation_table(L, [f"g{i}" for i in range(36)], alphas, betas)
    np.testing.assert_allclose(table["predicted_mean_loglik"], table["mean_loglik"], atol=1e-12)
    assert sorted(table.loc[table["endpoint"] != "", "endpoint"]) == ["base", "fine-tune 1", "fine-tune 2"]
    # the grid is an affine image of (alpha, beta): PCA coordinates are affine in them too
    summary = interpolation.grid_summary(table).iloc[0]
    assert summary["affine_r2"] == pytest.approx(1.0, abs=1e-12) and summary["n_points"] == 36
    assert summary["mean_gain_over_linear"] == pytest.approx(0.0, abs=1e-12)
    noisy = interpolation.interpolation_table(L_noisy, [f"g{i}" for i in range(36)], alphas, betas)
    assert not np.allclose(noisy["predicted_mean_loglik"], noisy["mean_loglik"])
    assert interpolation.grid_summary(noisy).iloc[0]["mean_gain_over_linear"] != pytest.approx(0.0, abs=1e-6)
    shuffled = interpolation.interpolation_table(L[rng.permutation(36)], [f"g{i}" for i in range(36)], alphas, betas)
    assert interpolation.grid_summary(shuffled).iloc[0]["affine_r2"] < 0.9  # scrambled grid: no structure
    with pytest.raises(ValueError, match="fine-tune 1"):  # the first 6 points all have alpha = 0
        interpolation.interpolation_table(L[:6], [f"g{i}" for i in range(6)], alphas[:6], betas[:6])


def test_weight_geometry_and_plane_follow_the_measured_norms_and_angle():
    import torch

    base = {"w": torch.zeros(2, dtype=torch.bfloat16), "b": np.zeros(1)}
    first = {"w": torch.tensor([3.0, 0.0]), "b": np.array([4.0])}  # |d1| = 5
    second = {"w": torch.tensor([0.0, 2.0]), "b": np.array([0.0])}  # |d2| = 2, orthogonal to d1
    geometry = interpolation.weight_geometry(base, first, second)
    assert geometry == pytest.approx({"norm1": 5.0, "norm2": 2.0, "angle_deg": 90.0})
    plane = interpolation.weight_plane(
        [1.0, 0.0, 0.6], [0.0, 1.0, 0.6], {"norm1": 5.0, "norm2": 2.0, "angle_deg": 60.0}
    )
    np.testing.assert_allclose(plane, [[5.0, 0.0], [1.0, np.sqrt(3)], [3.6, 0.6 * np.sqrt(3)]], atol=1e-12)


def test_interpolation_clips_the_grid_before_comparing():
    alphas, betas = np.array([(a, b) for a in (0, 0.5, 1, 2) for b in (0, 0.5, 1, 2)]).T
    L = -100.0 + np.random.default_rng(8).normal(size=(16, 4))
    L[(alphas + betas) > 3] = -5000.0  # a far extrapolation that broke down
    table = interpolation.interpolation_table(
        L,
        [f"g{i}" for i in range(16)],
        alphas,
        betas,
        clip_value=-1400,
        geometry={"norm1": 1.0, "norm2": 1.0, "angle_deg": 90.0},
    )
    assert table["mean_loglik"].min() == -1400.0
    np.testing.assert_allclose(table[["weight_x", "weight_y"]].to_numpy(), np.column_stack([alphas, betas]), atol=1e-12)
    fig = plots.interpolation_figure(table, "clipped")
    assert "measured" in fig.axes[0].get_title()


def test_model_list_is_alphabetical_with_the_29_class_type_and_downloads():
    models = pd.DataFrame(
        {
            "type": ["fig1-a", "fig1-b", "fig1-a"],
            "model_type": ["llama", "qwen2", "llama"],
            "n_params": [7e9, 1.1e9, np.nan],
            "created": ["2024-02-01T10:00:00", "2023-01-01", None],
            "downloads": [120, 5, np.nan],
        }
    )
    bench = pd.DataFrame({"mean": [60.0, 40.0, np.nan]})
    L = np.array([[-1.0, -3.0], [-2.0, -2.0], [-5.0, -5.0]])
    table = model_list.model_list(["big", "small", "Undated"], L, models, bench)
    assert table["name"].tolist() == ["Undated", "big", "small"]  # by model id, not by date
    assert table["id"].tolist() == [1, 2, 3]
    assert table.loc[1].to_dict() == {
        "id": 2,
        "name": "big",
        "model_type": "llama",
        "size_billions": 7.0,
        "date": "2024-02-01",
        "downloads": 120,
        "mean_loglik": -2.0,
        "benchmark_mean": 60.0,
    }
    assert pd.isna(table.loc[0, "downloads"])
    sheet_only = models.drop(columns=["model_type", "downloads"]).assign(family=["x", "y", "x"])
    without = model_list.model_list(["b", "a", "c"], L, sheet_only, None)
    assert without["model_type"].tolist() == ["y", "x", "x"] and "downloads" not in without


def test_publish_table_writes_every_format_with_provenance(tmp_path):
    frame = pd.DataFrame({"target": ["a", "b"], "pearson": [0.91234, 0.5], "n": [40, 7]})
    paths = publish_table(frame, tmp_path / "t", step="unit", params={"k": 1})
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex", ".html"]
    markdown = paths[1].read_text()
    assert "0.912" in markdown and "| 40 |" in markdown.replace("  ", " ") and "40.000" not in markdown
    assert "\\begin{tabular}" in paths[2].read_text()
    assert pd.read_csv(paths[0])["pearson"][0] == 0.91234
    assert read_provenance(paths[0])["params"] == {"k": 1}


def test_kl_scatter_is_log_log_with_the_identity_on_the_diagonal():
    estimate = np.logspace(-1, 3, 12)
    table = pd.DataFrame({"kl_estimate": estimate, "kl_token": estimate / 20, "kl_text": estimate / 10})
    table.loc[0, "kl_text"] = -0.1  # a Monte Carlo estimate can be negative: not drawable on a log axis
    fig = plots.kl_scatter(table, "kl_estimate", {"kl_token": "token", "kl_text": "text"})
    token, text = fig.axes[:2]
    for ax in (token, text):
        assert ax.get_xscale() == ax.get_yscale() == "log"
        assert ax.get_xlim() == ax.get_ylim()  # equal limits: y = x is the diagonal
        line = ax.get_lines()[0]
        np.testing.assert_allclose(line.get_xdata(), line.get_ydata())
    assert len(token.collections[0].get_offsets()) == 12
    assert len(text.collections[0].get_offsets()) == 11 and "1 pair(s) with KL <= 0" in text.get_title()
    assert "12 pairs" in text.get_title()  # the correlations use every pair


def test_model_list_reads_as_people_write_sizes(tmp_path):
    table = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["a", "b", "c"],
            "model_type": ["x"] * 3,
            "size_billions": [0.000135, 7.0, np.nan],
            "date": ["", "", ""],
            "mean_loglik": [-123.456, -7.0, -1.0],
            "benchmark_mean": [61.234, np.nan, 50.0],
        }
    )
    shown = model_list.readable_model_list(table)
    assert shown["size"].tolist() == ["135K", "7B", "unknown"] and "size_billions" not in shown
    assert shown["mean_loglik"].tolist() == ["-123.46", "-7.00", "-1.00"]
    assert shown["benchmark_mean"].tolist() == ["61.2", "", "50.0"]
    paths = publish_table(table, tmp_path / "model_list", step="unit", display=shown)
    assert "0.000135" in paths[0].read_text()  # the CSV keeps full precision
    html = paths[3].read_text()
    assert "<table" in html and "135K" in html and "size_billions" not in html
    markdown = paths[2 - 1].read_text()
    assert "-123.46" in markdown and "-123.460" not in markdown  # text of the display frame kept as written


def test_leakage_table_reads_as_people_read_it():
    from lmmap.analysis.leakage import readable

    screen = pd.DataFrame(
        {
            "model_id": ["a", "b"],
            "mean_loglik": [-2962.3333, -1.0],
            "residual_z": [36.06123, np.nan],
            "flagged": [True, False],
        }
    )
    shown = readable(screen)
    assert shown["flagged"].tolist() == ["yes", ""] and shown["mean_loglik"].tolist() == ["-2962.33", "-1.00"]
    assert shown["residual_z"].tolist() == ["36.1", ""] and screen["flagged"].dtype == bool


@pytest.mark.parametrize("shape", [(60, 400), (90, 25)], ids=["K<N dual", "K>N primal"])
def test_fast_ridge_cv_matches_ridgecv_in_both_shapes(shape):
    """The prepared system (dual Gram form when features >= models, primal form otherwise) picks what
    `RidgeCV(alphas, cv=5)` picks in every outer fold and predicts what it predicts, for both grids."""
    K, N = shape
    rng = np.random.default_rng(7)
    latent = rng.normal(size=(K, 4))
    X = -200 + latent @ rng.normal(size=(4, N)) * 3 + rng.normal(size=(K, N)) + rng.normal(size=(K, 1)) * 10
    Y = np.column_stack(
        [50 + latent @ rng.normal(size=4) * 5 + rng.normal(size=K) * s for s in (0.5, 5.0)] + [X.mean(axis=1)]
    )
    settings = prediction.TargetSettings.for_targets(["a", "b", "mean_logp"], np.logspace(1, 9, 9))
    system = prediction.RidgeSystem.from_features(X)
    assert (system.gram is not None) == (N >= K)
    groups = np.array([f"g{i % 6}" for i in range(K)])
    predicted, chosen = prediction.cross_validated_predictions(system, Y, groups, "group", 1, settings)
    for fold, (train, test) in enumerate(prediction.outer_splitter("group", 5, 1, groups).split(X, Y, groups)):
        for t, grid in enumerate(settings.alphas):
            reference = RidgeCV(alphas=grid, cv=5).fit(X[train], Y[train, t])
            assert chosen[fold, t] == pytest.approx(reference.alpha_)
            expected = reference.predict(X[test])
            expected = np.clip(expected, 0, 100) if settings.clipped[t] else expected
            np.testing.assert_allclose(predicted[test, t], expected, rtol=1e-6, atol=1e-6)


def test_centred_gram_in_blocks_equals_the_direct_product():
    X = np.random.default_rng(8).normal(size=(37, 11)) + 5.0
    centred = X - X.mean(axis=0)
    np.testing.assert_allclose(prediction.centred_gram(X, block=8), centred @ centred.T, rtol=1e-12, atol=1e-10)


def test_pca_from_the_gram_matrix_gives_the_svd_curve_and_counts():
    """Above the size threshold the variances come from the eigenvalues of the smaller Gram matrix:
    the same curve as scikit-learn's PCA, hence the same component counts, in both shapes."""
    from lmmap.embedding import components_needed, pca_cumulative_variance

    variances = np.array([50, 25, 10, 6, 4, 3, 2], dtype=float)
    for Q in (
        planted_rank(variances) + 1e-3 * np.random.default_rng(9).normal(size=(60, 300)),
        planted_rank(variances, n_rows=300, n_cols=60),
    ):
        exact, fast = pca_cumulative_variance(Q), pca_cumulative_variance(Q, gram_above=10)
        np.testing.assert_allclose(fast, exact, atol=1e-12)
        for level in (0.5, 0.9, 0.95, 0.99):
            assert components_needed(fast, level) == components_needed(exact, level)


def _ridge_data(K, N, rank, seed):
    """Features of rank `rank` (plus a per-model offset), two task targets and mean_logp."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(K, rank))
    X = -200 + (latent * np.geomspace(3, 0.3, rank)) @ rng.normal(size=(rank, N)) + rng.normal(size=(K, 1)) * 10
    Y = np.column_stack(
        [50 + latent[:, :4] @ rng.normal(size=4) * 5 + rng.normal(size=K) * s for s in (0.5, 5.0)] + [X.mean(axis=1)]
    )
    return X, Y, np.array([f"g{i % 6}" for i in range(K)])


def test_principal_component_ridge_is_ridgecv_on_the_top_scores_fold_by_fold():
    """Above max_components the system holds the top-r PCA scores (as scikit-learn's PCA gives them,
    up to sign) and its nested CV picks and predicts what `RidgeCV(alphas, cv=KFold(5))` fitted on
    those scores does, in every outer fold, for both grids and both CVs."""
    from sklearn.decomposition import PCA

    X, Y, groups = _ridge_data(150, 90, 12, seed=11)
    X = X + np.random.default_rng(12).normal(size=X.shape) * 0.05  # full rank 89, 12 large components
    system = prediction.RidgeSystem.from_features(X, max_components=12)
    assert system.components == 12 and system.gram is None and system.features.shape == (150, 12)
    reference_scores = PCA(12, svd_solver="full").fit_transform(X)
    np.testing.assert_allclose(np.abs(system.features), np.abs(reference_scores), rtol=1e-6, atol=1e-6)
    settings = prediction.TargetSettings.for_targets(["a", "b", "mean_logp"], np.logspace(1, 9, 9))
    for kind in prediction.CV_KINDS:
        predicted, chosen = prediction.cross_validated_predictions(system, Y, groups, kind, 2, settings)
        splits = prediction.outer_splitter(kind, 5, 2, groups).split(X, Y, groups if kind == "group" else None)
        for fold, (train, test) in enumerate(splits):
            for t, grid in enumerate(settings.alphas):
                reference = RidgeCV(alphas=grid, cv=KFold(5)).fit(system.features[train], Y[train, t])
                assert chosen[fold, t] == pytest.approx(reference.alpha_)
                expected = reference.predict(system.features[test])
                expected = np.clip(expected, 0, 100) if settings.clipped[t] else expected
                np.testing.assert_allclose(predicted[test, t], expected, rtol=1e-6, atol=1e-6)


def test_principal_component_ridge_with_every_component_is_the_exact_ridge():
    """With r at least the features' rank, ridge on the r scores is ridge on the features: the same
    alphas and predictions as the exact (dual Gram) path."""
    X, Y, groups = _ridge_data(100, 150, 30, seed=13)
    exact = prediction.RidgeSystem.from_features(X)
    reduced = prediction.RidgeSystem.from_features(X, max_components=45)
    assert exact.gram is not None and exact.components is None and reduced.components == 45
    settings = prediction.TargetSettings.for_targets(["a", "b", "mean_logp"], np.logspace(1, 9, 9))
    expected, expected_alphas = prediction.cross_validated_predictions(exact, Y, groups, "kfold", 0, settings)
    predicted, chosen = prediction.cross_validated_predictions(reduced, Y, groups, "kfold", 0, settings)
    np.testing.assert_array_equal(chosen, expected_alphas)
    np.testing.assert_allclose(predicted, expected, rtol=1e-7, atol=1e-7)


def test_exact_ridge_up_to_max_components_and_the_paper_stays_exact():
    assert prediction.components_kept((1018, 10000), 1024) is None  # the paper: rank bound 1,017
    assert prediction.components_kept((1025, 10000), 1024) is None
    assert prediction.components_kept((3000, 10000), 1024) == 1024
    assert prediction.components_kept((3000, 800), 1024) is None
    assert prediction.components_kept((10000, 10000), None) is None
    X = np.random.default_rng(3).normal(size=(30, 20))
    assert prediction.RidgeSystem.from_features(X, max_components=20).components is None
    assert prediction.RidgeSystem.from_features(X, max_components=19).components == 19


def test_primal_moments_downdated_by_the_rows_left_out_are_the_direct_ones():
    X = np.random.default_rng(4).normal(size=(50, 7)) * 3 + 2
    system = prediction.RidgeSystem.from_features(X)
    centred = X - X.mean(axis=0)
    train = np.setdiff1d(np.arange(50), [3, 8, 20, 41])  # fewer left out: the downdate
    for rows, parent in ((train, None), (train[:10], None), (train[5:], system.parent(train))):
        scatter, sums = system.moments(rows, parent)
        np.testing.assert_allclose(scatter, centred[rows].T @ centred[rows], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(sums, centred[rows].sum(axis=0), rtol=1e-10, atol=1e-10)
