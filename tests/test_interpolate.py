"""The merge step of weight interpolation (lmmap.interpolate): exact merges of saved models at every
grid point (extrapolation included), sharded streaming against an in-memory merge, and the measured
geometry of the triple."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from lmmap import interpolate
from lmmap.errors import InputError
from tiny_models import save_tiny_model

POINTS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


@pytest.fixture(scope="module")
def triple(tmp_path_factory):
    """Three tiny Llama models of one shape (different seeds), saved with save_pretrained; the
    second is also saved in small shards."""
    root = tmp_path_factory.mktemp("triple")
    dirs = [save_tiny_model(root / f"m{i}", style="llama", seed=i, hidden=16, layers=1, heads=2) for i in range(3)]
    sharded = root / "m2-sharded"
    AutoModelForCausalLM.from_pretrained(dirs[2], dtype=torch.float32).save_pretrained(sharded, max_shard_size="20KB")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (sharded / name).write_bytes((dirs[2] / name).read_bytes())
    return dirs, sharded


def state(directory):
    """Every tensor of a saved model, by name, read back from its files."""
    return {name: interpolate.TensorReader(directory).get(name).clone() for name in interpolate.weight_map(directory)}


def test_merge_is_the_linear_combination_at_every_grid_point(triple, tmp_path):
    dirs, _ = triple
    thetas = [state(d) for d in dirs]
    for alpha in POINTS:
        for beta in POINTS:  # α + β > 1: extrapolation, weight of θ₀ negative
            out = tmp_path / f"a{alpha}-b{beta}"
            interpolate.merge_model(dirs, alpha, beta, out, dtype="float32")
            merged = state(out)
            assert set(merged) == set(thetas[0])
            for name, tensor in merged.items():
                expected = (1 - alpha - beta) * thetas[0][name] + alpha * thetas[1][name] + beta * thetas[2][name]
                torch.testing.assert_close(tensor, expected, rtol=1e-6, atol=1e-6)
    # the corners are the parents themselves; the merged directory loads like any model
    for (alpha, beta), parent in (((0.0, 0.0), 0), ((1.0, 0.0), 1), ((0.0, 1.0), 2)):
        for name, tensor in state(tmp_path / f"a{alpha}-b{beta}").items():
            torch.testing.assert_close(tensor, thetas[parent][name], rtol=1e-6, atol=1e-6)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "a0.4-b0.8")
    assert model.config.torch_dtype == torch.float32 and (tmp_path / "a0.4-b0.8/tokenizer.json").exists()
    info = json.loads((tmp_path / "a0.4-b0.8" / interpolate.INFO_FILE).read_text())
    assert info["weights"] == pytest.approx([1 - 0.4 - 0.8, 0.4, 0.8]) and info["n_shards"] == 1


def test_sharded_streaming_equals_the_in_memory_merge(triple, tmp_path):
    dirs, sharded = triple
    assert len(set(interpolate.weight_map(sharded).values())) > 1  # the parent really is sharded
    streamed = tmp_path / "streamed"
    measured = interpolate.merge_model(
        [dirs[0], dirs[1], sharded], 0.6, 0.8, streamed, dtype="float16", shard_bytes=8_000
    )
    index = json.loads((streamed / "model.safetensors.index.json").read_text())
    files = set(index["weight_map"].values())
    assert measured["n_shards"] == len(files) > 2 and not (streamed / "model.safetensors").exists()
    # in memory: whole models loaded with transformers, combined parameter by parameter
    models = [AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32) for d in dirs]
    params = [dict(m.named_parameters()) for m in models]
    loaded = AutoModelForCausalLM.from_pretrained(streamed, dtype="auto")  # the config names the dtype
    assert loaded.dtype == torch.float16
    for name, tensor in loaded.named_parameters():
        expected = (-0.4 * params[0][name] + 0.6 * params[1][name] + 0.8 * params[2][name]).to(torch.float16)
        assert torch.equal(tensor.detach(), expected.detach()), name
    # the same geometry as the unsharded triple
    whole = interpolate.merge_model(dirs, 0.6, 0.8, tmp_path / "whole", dtype="float16")
    for key in ("norm1", "norm2", "angle_deg"):
        assert measured[key] == pytest.approx(whole[key], rel=1e-9)


def test_measured_geometry_on_a_constructed_triple(tmp_path):
    """θ₁ − θ₀ of length 5 along x, θ₂ − θ₀ of length 2 at 60° from it, spread over two tensors
    and two files (and a non-float tensor, which does not count)."""
    base = {"a.weight": torch.randn(3, 4), "b.weight": torch.randn(2), "steps": torch.tensor([7])}
    d1 = {"a.weight": torch.zeros(3, 4), "b.weight": torch.tensor([3.0, 4.0])}
    d2 = {"a.weight": torch.zeros(3, 4), "b.weight": torch.tensor([1.0 * 0.6, 1.0 * 0.8])}
    d2["a.weight"][0, 0] = math.sqrt(3.0)  # orthogonal part: |d2|² = 1 + 3 = 4, d1·d2 = 3·0.6 + 4·0.8 = 5
    dirs = []
    for i, delta in enumerate([None, d1, d2]):
        directory = tmp_path / f"p{i}"
        directory.mkdir()
        (directory / "config.json").write_text("{}")
        tensors = {k: (v + delta[k] if delta and k in delta else v.clone()) for k, v in base.items()}
        save_file({"a.weight": tensors["a.weight"]}, directory / "model-00001-of-00002.safetensors")
        save_file(
            {"b.weight": tensors["b.weight"], "steps": tensors["steps"]}, directory / "model-00002-of-00002.safetensors"
        )
        (directory / "model.safetensors.index.json").write_text(
            json.dumps(
                {
                    "weight_map": {
                        "a.weight": "model-00001-of-00002.safetensors",
                        "b.weight": "model-00002-of-00002.safetensors",
                        "steps": "model-00002-of-00002.safetensors",
                    }
                }
            )
        )
        dirs.append(directory)
    measured = interpolate.merge_model(dirs, 1.0, 1.0, tmp_path / "out", dtype="float32")
    assert measured["norm1"] == pytest.approx(5.0)
    assert measured["norm2"] == pytest.approx(2.0)
    assert measured["angle_deg"] == pytest.approx(60.0)  # cos = 5 / (5 · 2)
    merged = load_file(tmp_path / "out/model.safetensors")
    assert torch.equal(merged["steps"], base["steps"])  # non-float tensors come from the base
    torch.testing.assert_close(merged["b.weight"], base["b.weight"] + d1["b.weight"] + d2["b.weight"])
    # the analysis' geometry from in-memory state dicts agrees
    from lmmap.analysis.interpolation import weight_geometry

    in_memory = weight_geometry(*[{k: v for k, v in state(d).items() if k != "steps"} for d in dirs])
    assert in_memory["angle_deg"] == pytest.approx(60.0) and in_memory["norm1"] == pytest.approx(5.0)


def test_a_parent_lacking_a_tensor_is_named(triple, tmp_path):
    dirs, _ = triple
    broken = tmp_path / "broken"
    broken.mkdir()
    tensors = load_file(dirs[1] / "model.safetensors")
    dropped = sorted(tensors)[0]
    save_file({k: v for k, v in tensors.items() if k != dropped}, broken / "model.safetensors")
    (broken / "config.json").write_text((dirs[1] / "config.json").read_text())
    with pytest.raises(InputError, match=dropped):
        interpolate.merge_model([dirs[0], broken, dirs[2]], 0.2, 0.2, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written
    with pytest.raises(InputError, match="no safetensors"):
        interpolate.weight_map(tmp_path)


def test_pytorch_bin_parents_are_read_memory_mapped(triple, tmp_path):
    """Some parents (vicuna-7b-v1.5) publish only pytorch_model.bin shards."""
    dirs, _ = triple
    as_bin = tmp_path / "bin"
    as_bin.mkdir()
    torch.save(load_file(dirs[1] / "model.safetensors"), as_bin / "pytorch_model.bin")
    (as_bin / "config.json").write_text((dirs[1] / "config.json").read_text())
    a = interpolate.merge_model([dirs[0], as_bin, dirs[2]], 0.4, 0.2, tmp_path / "a", dtype="float32")
    b = interpolate.merge_model(dirs, 0.4, 0.2, tmp_path / "b", dtype="float32")
    assert a["angle_deg"] == pytest.approx(b["angle_deg"])
    for name, tensor in load_file(tmp_path / "a/model.safetensors").items():
        assert torch.equal(tensor, load_file(tmp_path / "b/model.safetensors")[name])


def test_the_grid_is_clipped_with_the_maps_stored_threshold(tmp_path):
    """`analyze interpolation --map-coordinates`: models appended to a map are clipped at the map's
    own clip value (the authors' `append`), not at a quantile recomputed on the grid; the measured
    geometry written by the merge draws the weight-space panel."""
    import pandas as pd

    from lmmap.cli import main
    from lmmap.coords import append_clip, clip_matrix, stored_clip_value
    from lmmap.provenance import read_provenance, write_provenance
    from lmmap.storage import save_npz
    from lmmap.texts import load_text_set, write_text_set

    write_text_set(tmp_path / "texts.jsonl", [{"id": f"t{i}", "domain": "d", "text": f"text {i}"} for i in range(6)])
    text_set = load_text_set(tmp_path / "texts.jsonl")
    rng = np.random.default_rng(0)
    the_map = -300 - 50 * rng.random((20, 6))
    _, map_clip = clip_matrix(the_map, 0.02)
    save_npz(tmp_path / "coordinates.npz", Q=np.zeros((20, 6)), clip_value=np.array(map_clip))
    assert stored_clip_value(tmp_path / "coordinates.npz") == map_clip
    points, scores, rows = [], [], []
    for alpha in (0.0, 0.5, 1.0):
        for beta in (0.0, 0.5, 1.0):
            model_id = f"grid/a{alpha}-b{beta}"
            row = -320 - 10 * alpha - 20 * beta - 400 * (alpha + beta > 1) * rng.random(6)  # far points break down
            path = tmp_path / f"s{len(rows)}.npz"
            save_npz(
                path,
                loglik=row,
                n_tokens=np.ones(6, int),
                truncated=np.zeros(6, bool),
                text_ids=np.array(text_set.ids),
                text_set_sha256=np.array(text_set.sha256),
                model_id=np.array(model_id),
            )
            write_provenance(path, "score")
            points.append({"alpha": alpha, "beta": beta, "model_id": model_id})
            scores.append(str(path))
            rows.append(row)
    L = np.array(rows)
    assert (map_clip > L).any() and clip_matrix(L, 0.02)[1] != map_clip  # a recomputed quantile would differ
    geometry = tmp_path / "interpolation.json"
    geometry.write_text(json.dumps({"norm1": 3.0, "norm2": 4.0, "angle_deg": 90.0, "alpha": 0.0}))
    stem = tmp_path / "out" / "grid"
    assert (
        main(
            [
                "analyze",
                "interpolation",
                "--texts",
                str(tmp_path / "texts.jsonl"),
                "--grid",
                json.dumps(points),
                "--scores",
                *scores,
                "--name",
                "grid",
                "--map-coordinates",
                str(tmp_path / "coordinates.npz"),
                "--geometry",
                str(geometry),
                "--out-matrix",
                str(tmp_path / "out/loglik.npz"),
                "--out-stem",
                str(stem),
                "--summary-stem",
                f"{stem}_summary",
                "--figure-stem",
                str(stem),
            ]
        )
        == 0
    )
    table = pd.read_csv(f"{stem}.csv")
    np.testing.assert_allclose(table["mean_loglik"], append_clip(L, map_clip).mean(axis=1))
    corner = table[(table["alpha"] == 1.0) & (table["beta"] == 1.0)].iloc[0]
    assert (corner["weight_x"], corner["weight_y"]) == pytest.approx((3.0, 4.0))  # measured norms, 90°
    summary = pd.read_csv(f"{stem}_summary.csv").iloc[0]
    assert summary["clip_value"] == pytest.approx(map_clip) and summary["n_clipped"] == int((map_clip > L).sum())
    assert summary["angle_deg"] == 90.0
    record = read_provenance(f"{stem}.png")
    assert record["clip_source"] == "map" and record["clip_value"] == pytest.approx(map_clip)
    assert "map_coordinates" in record["inputs"]


def test_the_paper_triples_expand_to_two_six_by_six_grids():
    from pathlib import Path

    import yaml

    from lmmap.sheet import read_sheet

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config/paper/interpolation.yaml").read_text())
    sheet = {spec.model_id: spec for spec in read_sheet(root / "config/paper/models.tsv")}
    grids = interpolate.configured_grids(config, sheet, "results/interpolation")
    assert [g.name for g in grids] == ["llama-2-7b", "mistral-7b"]
    for grid in grids:
        interpolate.check_endpoints(grid)
        assert len(grid.points) == 36 and sum(a + b > 1 + 1e-9 for a, b, _ in grid.points) == 15
        assert all(
            spec.dtype == "float16" and spec.source.startswith(f"results/interpolation/{grid.slug}/models/")
            for *_, spec in grid.points
        )
    assert [p.model_id for p in grids[0].parents] == [
        "meta-llama/Llama-2-7b-hf",
        "meta-llama/Llama-2-7b-chat-hf",
        "lmsys/vicuna-7b-v1.5",
    ]
    assert interpolate.disk_bytes(grids[0]) == pytest.approx(13.5e9, rel=0.01)  # 7B in float16
    config["interpolation"]["triples"][1]["ends"][0] = "org/not-in-the-sheet"
    with pytest.raises(InputError, match="triple mistral-7b.*ends.*not-in-the-sheet"):
        interpolate.configured_grids(config, sheet, "results/interpolation")


def test_the_commands_inputs_are_checked_before_any_work(tmp_path):
    """A grid that misses a scored model, a geometry without a measured number and parents that are
    not three sources are named errors; good inputs come back in the scored models' order."""
    from lmmap.analysis.interpolation import grid_coordinates, read_geometry

    grid = [{"alpha": 0.5, "beta": 0.0, "model_id": "b"}, {"alpha": 0.0, "beta": 1.0, "model_id": "a"}]
    assert grid_coordinates(grid, ["a", "b"], "--grid") == ([0.0, 0.5], [1.0, 0.0])
    with pytest.raises(InputError, match="not on the grid") as err:
        grid_coordinates(grid, ["a", "c"], "--grid")
    assert err.value.record == "c"
    path = tmp_path / "info.json"
    path.write_text(json.dumps({"norm1": 2.0, "norm2": 3, "angle_deg": 60.0, "n_params": 7}))
    assert read_geometry(str(path)) == {"norm1": 2.0, "norm2": 3, "angle_deg": 60.0}
    path.write_text(json.dumps({"norm1": 2.0, "norm2": "3", "angle_deg": 60.0}))
    with pytest.raises(InputError, match="measured number") as err:
        read_geometry(str(path))
    assert err.value.field == "norm2"
    parents = [{"source": f"m{i}"} for i in range(3)]
    assert interpolate.parse_parents(json.dumps(parents)) == parents
    for bad in ("[", json.dumps(parents[:2]), json.dumps([{"model_id": "x"}] * 3)):
        with pytest.raises(InputError, match="--parents"):
            interpolate.parse_parents(bad)
