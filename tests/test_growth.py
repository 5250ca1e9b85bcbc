"""Growing a published map (lmmap.growth): append, the published format, placement, sample estimates."""

import json

import numpy as np
import pandas as pd
import pytest

from lmmap import growth
from lmmap.coords import clip_matrix, double_centre
from lmmap.errors import InputError
from lmmap.provenance import read_provenance
from lmmap.storage import load_npz, sha256_file
from lmmap.texts import TextSet, load_text_set


def synthetic_zoo(n_models=48, n_texts=400, seed=0):
    """Models in four clusters: log-likelihoods from a low-rank latent plus noise, benchmark scores
    linear in the latent."""
    rng = np.random.default_rng(seed)
    centres = np.array([[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0], [-3.0, -3.0, -3.0]])
    cluster = np.arange(n_models) % 4
    latent = centres[cluster] + rng.normal(scale=0.5, size=(n_models, 3))
    loadings = rng.normal(size=(3, n_texts))
    L = (
        -2.0
        - rng.gamma(2.0, 1.0, size=n_texts)
        + latent @ loadings * 0.3
        + rng.normal(scale=0.2, size=(n_models, n_texts))
    )
    L += rng.normal(scale=0.5, size=(n_models, 1))  # each model's own level, removed by centring
    ids = [f"m{k:02d}" for k in range(n_models)]
    scores = 50 + latent @ np.array([[6.0, -3.0], [2.0, 5.0], [-4.0, 1.0]]) + rng.normal(scale=1.0, size=(n_models, 2))
    benchmarks = pd.DataFrame(scores, index=ids, columns=["task_a", "task_b"])
    benchmarks["mean"] = benchmarks.mean(axis=1)
    benchmarks.index.name = "model_id"
    models = pd.DataFrame(
        {"type": [f"type{c}" for c in cluster], "created": pd.date_range("2023-01-01", periods=n_models, freq="7D")},
        index=pd.Index(ids, name="model_id"),
    )
    text_set = TextSet(
        ids=[f"t{s}" for s in range(n_texts)],
        domains=["d"] * n_texts,
        texts=["x" * (100 + s % 7) for s in range(n_texts)],
        sha256="f" * 64,
        path="",
    )
    return L, ids, text_set, models, benchmarks, cluster


SETTINGS = growth.MapSettings(perplexity=8, max_iter=500, n_draws=200, sample_seed=3)


@pytest.fixture(scope="module")
def zoo():
    return synthetic_zoo()


@pytest.fixture(scope="module")
def published(zoo, tmp_path_factory):
    L, ids, text_set, models, benchmarks, _ = zoo
    mapped = slice(0, 40)
    pmap = growth.build_map(L[mapped], ids[mapped], text_set, models, benchmarks, SETTINGS)
    out = tmp_path_factory.mktemp("map") / "map"
    growth.publish_map(out, pmap, text_set, "publish-map", inputs={}, params={"n_draws": 200})
    return out


def test_append_one_at_a_time_equals_all_at_once_and_moves_no_existing_row(zoo):
    L = zoo[0]
    clipped, clip_value = clip_matrix(L[:40], 0.02)
    Q = double_centre(clipped)
    column_means = (clipped - clipped.mean(axis=1, keepdims=True)).mean(axis=0)
    together = growth.append_coordinates(L[40:], clip_value, column_means)
    one_by_one = np.vstack([growth.append_coordinates(row, clip_value, column_means) for row in L[40:]])
    np.testing.assert_array_equal(together, one_by_one)
    # a mapped model appended again lands exactly on its own row: existing rows keep their coordinates
    np.testing.assert_allclose(growth.append_coordinates(L[:40], clip_value, column_means), Q, atol=1e-12)
    # the map's threshold, not a recomputed quantile
    low = L[40:41].copy()
    low[0, :5] = clip_value - 100.0
    np.testing.assert_allclose(
        growth.append_coordinates(low, clip_value, column_means)[0, :5],
        growth.append_coordinates(np.maximum(low, clip_value), clip_value, column_means)[0, :5],
    )


def test_published_map_format_round_trips(zoo, published):
    L, ids, text_set, models, benchmarks, _ = zoo
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["format"] == "lmmap-map" and manifest["version"] == growth.FORMAT_VERSION
    for name in growth.MAP_FILES:
        assert manifest["files"][name] == sha256_file(published / name)
        assert read_provenance(published / name)["step"] == "publish-map"
    arrays = load_npz(published / "map.npz", required=growth.MAP_ARRAYS)
    assert arrays["Q"].dtype == np.float64 and arrays["Q"].shape == (40, 400)
    assert arrays["xy"].shape == (40, 2) and arrays["model_ids"].dtype.kind == "U"
    ridge = load_npz(published / "ridge.npz", required=growth.RIDGE_ARRAYS)
    assert ridge["coef"].shape == (3, 400) and list(ridge["targets"]) == ["task_a", "task_b", "mean"]
    sample = load_text_set(published / "texts_sample.jsonl")  # a text set like any other
    first = json.loads((published / "texts_sample.jsonl").read_text().splitlines()[0])
    assert {"id", "domain", "text", "weight", "count"} <= set(first)
    assert manifest["sample"]["sha256"] == sample.sha256
    pmap = growth.load_map(published)
    clipped = np.maximum(L[:40], pmap.clip_value)
    np.testing.assert_allclose(pmap.Q + pmap.column_means, clipped - clipped.mean(axis=1, keepdims=True), atol=1e-12)
    np.testing.assert_allclose(pmap.Q, double_centre(clip_matrix(L[:40], 0.02)[0]), atol=1e-12)
    assert pmap.model_ids == ids[:40] and pmap.sample.counts.sum() == 200
    assert pmap.sample_info == {"method": "ls", "n_draws": 200, "seed": 3}


def test_a_tampered_or_foreign_map_is_a_clear_error(published, tmp_path):
    copy = tmp_path / "map"
    copy.mkdir()
    for path in published.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / "leakage.json").write_text("{}")
    with pytest.raises(InputError, match="sha256"):
        growth.load_map(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(InputError, match="version"):
        growth.load_map(copy)
    with pytest.raises(InputError, match="manifest.json is missing"):
        growth.load_map(tmp_path)


def test_a_copy_of_a_mapped_model_is_placed_on_it(zoo, published):
    L, ids, *_ = zoo
    pmap = growth.load_map(published)
    new = growth.NewScores("copy", L[7], pmap.text_ids, pmap.text_set_sha256)
    placed = growth.place_models(pmap, [new])
    table = growth.placement_table(pmap, placed, n_neighbours=3)
    assert table.loc[0, "neighbour_1"] == ids[7]
    assert table.loc[0, "kl_nats_1"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(placed.predictions[0], pmap.ridge.predict(pmap.Q[7:8])[0])
    distances = np.linalg.norm(pmap.xy - placed.xy[0], axis=1)
    spread = np.ptp(pmap.xy, axis=0).max()
    assert distances[7] < 0.1 * spread  # at its own position, relative to the whole map


def test_new_models_land_among_their_cluster(zoo, published):
    L, ids, text_set, _, benchmarks, cluster = zoo
    pmap = growth.load_map(published)
    new = [growth.NewScores(ids[k], L[k], pmap.text_ids, pmap.text_set_sha256) for k in range(40, 48)]
    placed = growth.place_models(pmap, new)
    table = growth.placement_table(pmap, placed, n_neighbours=3, benchmarks=benchmarks)
    for k, row in zip(range(40, 48), table.itertuples()):
        assert cluster[ids.index(row.neighbour_1)] == cluster[k]
        nearest_on_map = np.argmin(np.linalg.norm(pmap.xy - [row.x, row.y], axis=1))
        assert cluster[nearest_on_map] == cluster[k]
    inside = (table["lower_mean"] <= benchmarks["mean"].iloc[40:].to_numpy()) & (
        benchmarks["mean"].iloc[40:].to_numpy() <= table["upper_mean"]
    )
    assert inside.mean() >= 0.75
    assert table["leakage_z"].notna().all() and table["within_map"].all()


def test_a_model_far_from_every_mapped_one_is_outside_the_map(zoo, published):
    """A model that learnt half the texts by heart (as the demo's contaminated models did) is no model's
    neighbour: placement says so rather than presenting its predictions as interpolations."""
    L = zoo[0]
    pmap = growth.load_map(published)
    memorised = L[41].copy()
    memorised[::2] += 20.0
    new = [growth.NewScores(m, row, pmap.text_ids, pmap.text_set_sha256) for m, row in (("a", L[41]), ("b", memorised))]
    table = growth.placement_table(pmap, growth.place_models(pmap, new))
    assert table["within_map"].tolist() == [True, False]


def sample_scores(pmap, loglik, model_id="new"):
    ids = [pmap.text_ids[i] for i in pmap.sample.indices]
    return growth.NewScores(model_id, loglik[pmap.sample.indices], ids, pmap.sample_sha256)


def test_sample_estimates_are_unbiased(zoo):
    """Over many samples, the sample's KL estimates and ridge predictions average to the full ones."""
    L, ids, text_set, models, benchmarks, _ = zoo
    pmap = growth.build_map(L[:40], ids[:40], text_set, models, benchmarks, SETTINGS)
    full = growth.place_models(pmap, [growth.NewScores("new", L[44], pmap.text_ids, pmap.text_set_sha256)])
    from lmmap.resampling import draw_texts, sampling_probabilities

    pi = sampling_probabilities(pmap.Q, "ls")
    kl, predicted, mean_loglik = [], [], []
    for seed in range(300):
        pmap.sample = draw_texts(pi, 100, seed)
        pmap.sample_sha256 = f"sample{seed}"
        placed = growth.place_models(pmap, [sample_scores(pmap, L[44])])
        kl.append(placed.kl[0])
        predicted.append(placed.predictions[0])
        mean_loglik.append(placed.mean_loglik[0])
    kl, predicted, mean_loglik = np.array(kl), np.array(predicted), np.array(mean_loglik)
    # a ratio estimate (bias of order 1/n), with far less spread than the plain sum(w^2 l) / N
    assert abs(mean_loglik.mean() - L[44].mean()) < 4 * mean_loglik.std() / np.sqrt(len(mean_loglik)) + 0.01
    plain = [growth.weighted_total(L[44, s.indices], s) / 400 for s in (draw_texts(pi, 100, k) for k in range(300))]
    assert mean_loglik.std() < 0.5 * np.std(plain)
    kl_error = np.abs(kl.mean(axis=0) - full.kl[0])
    assert np.all(kl_error < 4 * kl.std(axis=0) / np.sqrt(len(kl)) + 1e-3 * full.kl[0].mean())
    pred_error = np.abs(predicted.mean(axis=0) - full.predictions[0])
    assert np.all(pred_error < 4 * predicted.std(axis=0) / np.sqrt(len(predicted)) + 1e-6)
    assert np.all(kl.std(axis=0) > 0)  # the sample does add noise: the check above is not trivially met


def test_scores_on_another_text_set_are_refused(zoo, published):
    L = zoo[0]
    pmap = growth.load_map(published)
    wrong = growth.NewScores("new", L[41], pmap.text_ids, "0" * 64, path="new.npz")
    with pytest.raises(InputError, match="neither the map's nor its text sample"):
        growth.place_models(pmap, [wrong])
    sample = sample_scores(pmap, L[41])
    reordered = growth.NewScores("new", sample.loglik[::-1], sample.text_ids[::-1], sample.text_set_sha256)
    with pytest.raises(InputError):
        growth.place_models(pmap, [reordered])


def test_tsne_placement_minimises_the_fixed_map_objective():
    rng = np.random.default_rng(1)
    xy = rng.normal(size=(30, 2)) * 5
    d2 = rng.gamma(2.0, 1.0, size=(1, 30))
    placed = growth.place_on_map(xy, d2, perplexity=5)[0]
    p = growth.conditional_affinities(d2, 5)[0]
    assert np.exp(-np.sum(p * np.log(p))) == pytest.approx(5, rel=1e-6)
    cost, gradient = growth._tsne_cost(placed, p, xy)
    assert np.linalg.norm(gradient) < 1e-4
    for step in rng.normal(size=(20, 2)) * 0.1:
        assert growth._tsne_cost(placed + step, p, xy)[0] >= cost - 1e-9


def test_publish_place_and_check_from_the_command_line(zoo, tmp_path):
    from lmmap.cli import main
    from lmmap.storage import save_npz
    from lmmap.texts import write_text_set

    L, ids, text_set, models, benchmarks, cluster = zoo
    records = [{"id": i, "domain": d, "text": t} for i, d, t in zip(text_set.ids, text_set.domains, text_set.texts)]
    sha = write_text_set(tmp_path / "texts.jsonl", records)
    save_npz(
        tmp_path / "loglik.npz", L=L, model_ids=np.array(ids), text_ids=np.array(text_set.ids),
        domains=np.array(text_set.domains), text_set_sha256=np.str_(sha),
    )  # fmt: skip
    models.assign(model_id=ids).to_csv(tmp_path / "models.csv", index=False)
    benchmarks.reset_index().to_csv(tmp_path / "scores.csv", index=False)
    lineage = pd.DataFrame(
        {"model_id": ids, "slug": ids, "kind": ["base"] * 40 + ["finetune"] * 8, "parents": [""] * 40 + ids[:8]}
    )
    lineage.to_csv(tmp_path / "lineage.csv", index=False)
    common = ["--models-table", str(tmp_path / "models.csv")]
    assert main(
        ["publish-map", "--matrix", str(tmp_path / "loglik.npz"), "--texts", str(tmp_path / "texts.jsonl"), *common,
         "--benchmarks", str(tmp_path / "scores.csv"), "--cut-date", str(models["created"].iloc[40].date()),
         "--perplexity", "8", "--max-iter", "250", "--n-draws", "200", "--leakage-method", "global",
         "--clip-quantile", "0.02", "--seed", "42", "--sample-method", "ls", "--sample-seed", "0",
         "--alphas", "1", "9", "9", "--leakage-group-by", "type", "--leakage-threshold", "3.0",
         "--out-dir", str(tmp_path / "map")]
    ) == 0  # fmt: skip
    pmap = growth.load_map(tmp_path / "map")
    assert pmap.model_ids == ids[:40]
    sample_ids = [pmap.text_ids[i] for i in pmap.sample.indices]
    for k in range(40, 48):  # half on the sample, half on every text
        on_sample = k % 2 == 0
        save_npz(
            tmp_path / f"{ids[k]}.npz", loglik=L[k, pmap.sample.indices] if on_sample else L[k],
            text_ids=np.array(sample_ids if on_sample else pmap.text_ids), model_id=np.str_(ids[k]),
            text_set_sha256=np.str_(pmap.sample_sha256 if on_sample else sha),
        )  # fmt: skip
    scores = [str(tmp_path / f"{ids[k]}.npz") for k in range(40, 48)]
    assert main(
        ["place", "--map", str(tmp_path / "map"), "--scores", *scores, "--benchmarks", str(tmp_path / "scores.csv"),
         "--neighbours", "3", "--level", "0.9",
         "--out-table", str(tmp_path / "placed"), "--out-figure", str(tmp_path / "placed")]
    ) == 0  # fmt: skip
    placed = pd.read_csv(tmp_path / "placed.csv")
    assert placed["texts"].tolist() == ["sample", "all"] * 4
    assert {"neighbour_3", "kl_bits_per_byte_1", "predicted_mean", "upper_task_a", "leakage_z"} <= set(placed)
    for suffix in ("md", "html", "png", "pdf"):
        assert (tmp_path / f"placed.{suffix}").exists()
    assert main(
        ["check-placement", "--placement", str(tmp_path / "placed.csv"), "--lineage", str(tmp_path / "lineage.csv"),
         "--benchmarks", str(tmp_path / "scores.csv"), "--top", "3", "--out-stem", str(tmp_path / "check")]
    ) == 0  # fmt: skip
    checked = pd.read_csv(tmp_path / "check.csv")
    # "fine-tune" k has the parent k - 40 (its ancestor: relative_in_top means it is among the 3 nearest)
    top3 = placed[["neighbour_1", "neighbour_2", "neighbour_3"]].to_numpy()
    expected = [ids[k - 40] in top3[m] for m, k in enumerate(range(40, 48))]
    assert any(expected) and not all(expected)  # the check below sees both outcomes
    assert checked["relative_in_top"].tolist() == expected
    summary = pd.read_csv(tmp_path / "check_summary.csv")
    assert summary.loc[0, "models"] == 8
    assert summary.loc[0, "interval_coverage"] == pytest.approx(checked["inside_interval"].mean())
