"""Every `lmmap analyze` command on a small synthetic results directory: files, provenance, numbers."""

import numpy as np
import pandas as pd
import pytest

from lmmap.cli import main
from lmmap.provenance import read_provenance
from synthetic_maps import save_matrix_and_coordinates

TASKS = ["arc", "mmlu", "gsm"]
# the settings the workflow passes from the config (the steps have no defaults of their own)
MAPS = ["--variables", "best_domain", "mean_loglik", "benchmark_mean", "best_task", "size", "created"]
PREDICT = ["--features", "Q", "L", "--cv", "group", "kfold", "--group-by", "type", "--seeds", "5", "--splits", "5"]
PREDICT += ["--inner-splits", "5", "--score-range", "0", "100", "--max-components", "1024"]
LEAKAGE = ["--method", "within", "--group-by", "type", "--threshold", "3", "--show", "20"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """30 models of 5 types on 90 texts of 3 domains; scores linear in a latent; model m07 leaked."""
    root = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    K, N = 30, 90
    ids = [f"org/m{i:02d}" for i in range(K)]
    domains = np.repeat(["code", "news", "wiki"], N // 3)
    latent = rng.normal(size=(K, 2))
    L = -400 + latent @ rng.normal(size=(2, N)) * 5 + rng.normal(size=(K, N)) + 10 * latent[:, :1]
    bench = pd.DataFrame({t: 50 + 10 * latent @ w for t, w in zip(TASKS, ([1, 0], [0.5, 0.5], [0, 1]))})
    L[7, domains == "news"] += 120.0
    save_matrix_and_coordinates(root, L, ids, domains)
    models = pd.DataFrame(
        {
            "model_id": ids,
            "type": [f"type{i % 5}" for i in range(K)],
            "n_params": rng.uniform(1e8, 1e10, K),
            "created": [f"2024-{1 + i % 12:02d}-01" for i in range(K)],
        }
    )
    models.to_csv(root / "models.csv", index=False)
    bench.insert(0, "model_id", ids)
    bench["mean"] = bench[TASKS].mean(axis=1)
    bench.to_csv(root / "scores.csv", index=False)
    models.assign(x=rng.normal(size=K), y=rng.normal(size=K)).to_csv(root / "tsne.csv", index=False)
    return root


def common(root):
    return ["--matrix", str(root / "loglik.npz"), "--models-table", str(root / "models.csv")]


def test_maps_colour_by_every_variable(results):
    out = results / "maps"
    assert (
        main(
            [
                "analyze",
                "maps",
                *common(results),
                *MAPS,
                "--coordinates",
                str(results / "coordinates.npz"),
                "--benchmarks",
                str(results / "scores.csv"),
                "--embedding",
                str(results / "tsne.csv"),
                "--out-dir",
                str(out),
                "--out-variables",
                str(out / "variables.csv"),
            ]
        )
        == 0
    )
    for variable in ("best_domain", "mean_loglik", "benchmark_mean", "best_task", "size", "created"):
        assert (out / f"map_{variable}.png").stat().st_size > 1000 and (out / f"map_{variable}.pdf").exists()
    variables = pd.read_csv(out / "variables.csv").set_index("model_id")
    assert variables.loc["org/m07", "best_domain"] == "news"
    assert read_provenance(out / "map_size.png")["step"] == "analyze maps"


def run_predict(results, out, *options: str) -> int:
    """`lmmap analyze predict` on the fixture's results with `options`, writing under `out`."""
    args = ["analyze", "predict", *common(results), *PREDICT, "--coordinates", str(results / "coordinates.npz")]
    args += ["--benchmarks", str(results / "scores.csv"), *options]
    args += ["--out-stem", str(out / "ridge"), "--predictions", str(out / "predictions.csv")]
    return main([*args, "--figure-stem", str(out / "ridge_scatter")])


def test_predict_writes_summary_predictions_and_scatter(results):
    out = results / "predict"
    assert run_predict(results, out, "--seeds", "2", "--alphas", "-2", "4", "7") == 0
    summary = pd.read_csv(out / "ridge.csv")
    assert len(summary) == 2 * 2 * (len(TASKS) + 2)  # tasks, their mean and mean_logp
    q_kfold = summary[(summary["features"] == "Q") & (summary["cv"] == "kfold") & (summary["target"] != "mean_logp")]
    assert (q_kfold["pearson_mean"] > 0.8).all(), q_kfold
    assert set(summary["grouping"]) == {"type (5 groups)", "none"}
    assert read_provenance(out / "ridge.csv")["grouping"] == ["none", "type (5 groups)"]
    exact = {"path": "exact", "components": None}
    assert read_provenance(out / "ridge.csv")["ridge"] == read_provenance(out / "predictions.csv")["ridge"] == exact
    assert (out / "ridge.md").exists() and (out / "ridge.tex").exists() and (out / "ridge_scatter.pdf").exists()
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 2 * 2 * 2 * 30 * (len(TASKS) + 2)
    assert (predictions.loc[predictions["target"] == "mean_logp", "predicted"] < 0).all()  # not clipped


def test_predict_above_max_components_records_the_principal_component_path(results):
    out = results / "predict_reduced"
    assert run_predict(results, out, "--seeds", "1", "--features", "Q", "--max-components", "4") == 0
    reduced = {"path": "principal components", "components": 4}
    assert read_provenance(out / "ridge.csv")["ridge"] == read_provenance(out / "predictions.csv")["ridge"] == reduced
    assert read_provenance(out / "ridge.csv")["params"]["max_components"] == 4
    assert pd.read_csv(out / "predictions.csv")["predicted"].notna().all()


def test_predict_uses_the_clipped_matrix_for_features_l(results, monkeypatch):
    """Q and L come from the same clipped matrix: L's values below the clip value never reach the fit."""
    from lmmap.analysis import prediction

    seen = {}
    real = prediction.run_prediction
    monkeypatch.setattr(
        prediction, "run_prediction", lambda features, *a, **k: seen.update(features) or real(features, *a, **k)
    )
    out = results / "predict_clip"
    assert run_predict(results, out, "--seeds", "1", "--cv", "kfold", "--features", "L") == 0
    clip_value = float(np.load(results / "coordinates.npz")["clip_value"])
    assert seen["L"].min() == pytest.approx(clip_value)


def run_leakage(results, out, *options: str) -> int:
    """`lmmap analyze leakage` (threshold 4) on the fixture's results with `options`, writing under `out`."""
    args = ["analyze", "leakage", *common(results), *LEAKAGE, "--benchmarks", str(results / "scores.csv")]
    args += ["--embedding", str(results / "tsne.csv"), "--threshold", "4", *options, "--out-stem", str(out / "leakage")]
    return main([*args, "--figure-stem", str(out / "leakage_scatter"), "--map-stem", str(out / "leakage_map")])


def test_baseline_leakage_model_list_and_dimensionality(results):
    out = results / "misc"
    args = [*common(results), "--benchmarks", str(results / "scores.csv")]
    assert (
        main(
            [
                "analyze",
                "perplexity-baseline",
                *args,
                "--out-stem",
                str(out / "baseline"),
                "--figure-stem",
                str(out / "baseline_scatter"),
            ]
        )
        == 0
    )
    assert set(pd.read_csv(out / "baseline.csv")["target"]) == {*TASKS, "mean"}
    pd.DataFrame({"model_id": ["org/m07"], "kind": ["contaminated"], "reference_fraction": [0.5]}).to_csv(
        results / "lineage.csv", index=False
    )
    assert run_leakage(results, out, "--known", str(results / "lineage.csv")) == 0
    screen = pd.read_csv(out / "leakage.csv")
    assert screen.loc[screen["flagged"], "model_id"].tolist() == ["org/m07"]
    assert screen.loc[0, "top_domains"].startswith("news") and screen.loc[0, "kind"] == "contaminated"
    assert read_provenance(out / "leakage_map.png")["flagged"] == ["org/m07"]
    assert main(["analyze", "model-list", *args, "--out-stem", str(out / "models")]) == 0
    assert pd.read_csv(out / "models.csv")["name"].tolist()[:3] == ["org/m00", "org/m01", "org/m02"]
    assert (
        main(
            [
                "analyze",
                "dimensionality",
                "--coordinates",
                str(results / "coordinates.npz"),
                "--levels",
                "0.9",
                "0.95",
                "--out-stem",
                str(out / "dims"),
            ]
        )
        == 0
    )
    dims = pd.read_csv(out / "dims.csv")
    assert dims["components"].is_monotonic_increasing and dims["components"].iloc[0] >= 2


def test_leakage_global_method_draws_the_robust_line(results):
    out = results / "misc_global"
    assert run_leakage(results, out, "--method", "global") == 0
    assert read_provenance(out / "leakage.csv")["flagged"] == ["org/m07"]
    assert read_provenance(out / "leakage.csv")["method"] == "global"


def test_missing_model_in_a_table_is_named(results, tmp_path, capsys):
    pd.read_csv(results / "models.csv").iloc[1:].to_csv(tmp_path / "models.csv", index=False)
    assert (
        main(
            [
                "analyze",
                "model-list",
                "--matrix",
                str(results / "loglik.npz"),
                "--models-table",
                str(tmp_path / "models.csv"),
                "--out-stem",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "org/m00" in capsys.readouterr().err
