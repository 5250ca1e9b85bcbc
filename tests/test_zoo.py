"""The demo zoo: config expansion, training data hygiene, and building real models from recipes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from lmmap import demo_corpus, workflow, zoo
from lmmap.cli import main as cli_main
from lmmap.errors import InputError
from lmmap.sheet import ModelSpec
from lmmap.storage import save_npz, sha256_file
from lmmap.texts import chunk_corpus

ROOT = Path(__file__).resolve().parents[1]
ZOO_DIR, GRID_DIR = "results/zoo", "results/interpolation"  # the workflow's (rules/common.smk)


def zoo_config(name: str) -> dict:
    path = ROOT / "config" / name / "config.yaml" if name != "demo" else ROOT / "config" / "config.yaml"
    return yaml.safe_load(path.read_text())["zoo"]


# --------------------------------------------------------------------------------------------------
# Config expansion


def test_demo_zoo_is_a_whole_ecosystem():
    models = zoo.zoo_models(zoo_config("demo"), ZOO_DIR)
    kinds = Counter(m.kind for m in models)
    assert len(models) >= 40
    assert set(kinds) == {"base", "finetune", "merge", "precision", "contaminated"}
    assert {m.spec.type for m in models} == {"gpt2", "llama", "gpt_neox"}
    assert len({m.spec.family for m in models if m.kind == "base"}) >= 3
    slugs = [m.slug for m in models]
    assert len(set(slugs)) == len(slugs)
    for model in models:
        assert model.spec.source == f"results/zoo/{model.slug}"
        assert model.spec.size > 0 and model.spec.dtype == "float32"
        assert all(slugs.index(p) < slugs.index(model.slug) for p in model.parents)  # parents first
    created = [m.spec.created for m in models]
    assert created == sorted(created) and len(set(created)) == len(created)


def test_test_zoo_is_small_but_covers_every_kind():
    models = zoo.zoo_models(zoo_config("test"), ZOO_DIR)
    assert 8 <= len(models) <= 12
    assert {m.kind for m in models} == {"base", "finetune", "merge", "precision", "contaminated"}
    assert len({m.spec.type for m in models}) >= 2


def test_zoo_models_know_they_are_built_and_grid_models_and_sheet_rows_do_not():
    cfg = zoo_config("demo")
    assert all(spec.is_zoo for spec in zoo.zoo_specs(cfg, ZOO_DIR))
    ((_, grid),) = zoo.interpolation_specs(cfg, ZOO_DIR, GRID_DIR).items()
    assert not any(spec.is_zoo for *_, spec in grid)  # merged by rules/interpolation.smk, not built by the zoo
    assert not ModelSpec("org/zoo", "results/zoo/org--zoo").is_zoo  # a path is not what makes a zoo model


def test_interpolation_grid_is_four_by_four():
    cfg = zoo_config("demo")
    ((base, grid),) = zoo.interpolation_specs(cfg, ZOO_DIR, GRID_DIR).items()
    assert len(grid) == 16
    assert {(a, b) for a, b, _ in grid} == {(a, b) for a in (0, 0.333, 0.667, 1) for b in (0, 0.333, 0.667, 1)}
    assert len({spec.slug for *_, spec in grid}) == 16
    map_ids = {s.model_id for s in zoo.zoo_specs(cfg, ZOO_DIR)}
    assert not map_ids & {spec.model_id for *_, spec in grid}  # grid models stay off the map
    # merged by rules/interpolation.smk (lmmap.interpolate), the paper grids' code path
    assert all(spec.source == f"results/interpolation/{base}/models/{spec.slug}" for *_, spec in grid)
    (definition,) = zoo.interpolation_grids(cfg, ZOO_DIR, GRID_DIR)
    assert definition.zoo and definition.dtype == "float32"
    assert [p.slug for p in definition.parents] == [
        "zoo--balanced-llama-m",
        "zoo--balanced-llama-m-ft-python-code",
        "zoo--balanced-llama-m-ft-licences",
    ]


def test_zoo_is_scored_and_evaluated_in_one_job_per_architecture():
    cfg = zoo_config("demo")
    assert {workflow.job_group(s) for s in zoo.zoo_specs(cfg, ZOO_DIR)} == {"gpt2", "llama", "gpt_neox"}
    ((base, grid),) = zoo.interpolation_specs(cfg, ZOO_DIR, GRID_DIR).items()
    assert {workflow.job_group(spec) for *_, spec in grid} == {f"grid-{base}"}


def test_build_groups_cover_every_model_once():
    cfg = zoo_config("demo")
    grouped = [m.slug for models in workflow.build_groups(cfg, ZOO_DIR).values() for m in models]
    assert sorted(grouped) == sorted(s.slug for s in zoo.zoo_specs(cfg, ZOO_DIR))  # grids: one merge job per point


def test_config_errors_name_the_entry():
    cfg = zoo_config("test") | {"finetunes": [{"base": "no-such-model", "domains": ["x"], "steps": 1, "lr": 1}]}
    with pytest.raises(InputError, match="no-such-model"):
        zoo.zoo_specs(cfg, ZOO_DIR)
    cfg = zoo_config("test") | {"precision": [{"base": "code-gpt2-s", "formats": ["fp8"]}]}
    with pytest.raises(InputError, match="formats"):
        zoo.zoo_specs(cfg, ZOO_DIR)


@pytest.mark.parametrize("architecture", zoo.ARCHITECTURES)
def test_parameter_count_formula_matches_the_model(architecture):
    tokenizer = zoo.train_tokenizer(["alpha beta gamma delta " * 20], vocab_size=300)
    wrapped = _wrap(tokenizer)
    recipe = {
        "architecture": architecture,
        "shape": {"hidden": 16, "layers": 2, "heads": 2},
        "vocab_size": len(wrapped),
        "seed": 0,
    }
    model = zoo.new_model(recipe, wrapped)
    assert model.num_parameters() == zoo.parameter_count(architecture, 16, 2, len(wrapped))


# --------------------------------------------------------------------------------------------------
# Training data: never the reference texts nor the held-out (benchmark) documents


def test_duplicated_documents_are_kept_out_of_training():
    licence = "Permission is hereby granted, free of charge, to any person obtaining a copy\n" * 6
    docs = [
        {"doc_id": "a", "domain": "licences", "split": "train", "text": licence + "x" * 10},
        {"doc_id": "b", "domain": "code", "split": "train", "text": "def f(x):\n    return x\n" * 20},
        {"doc_id": "c", "domain": "code", "split": "heldout", "text": "held out line\n" * 30},
    ]
    chunks, dropped = zoo.training_chunks(docs, protected_texts=[licence], min_line_chars=32)
    assert dropped == 1 and [c["id"] for c in chunks] == ["b#0"]


def test_demo_training_chunks_share_nothing_with_reference_or_heldout():
    fractions = {"reference": 0.35, "train": 0.45, "heldout": 0.20}
    docs = demo_corpus.build_documents(
        ["python-docs", "licences", "c-headers"], fractions, max_docs_per_domain=40, max_doc_bytes=4096
    )
    reference = [c["text"] for c in chunk_corpus([d for d in docs if d["split"] == "reference"], None, 0)]
    heldout = [d["text"] for d in docs if d["split"] == "heldout"]
    chunks, _ = zoo.training_chunks(docs, reference + heldout, min_line_chars=32)
    train_ids = {d["doc_id"] for d in docs if d["split"] == "train"}
    assert chunks and all(c["id"].rsplit("#", 1)[0] in train_ids for c in chunks)
    protected_lines = zoo.forbidden_lines(reference + heldout, 32)
    for chunk in chunks:
        assert chunk["text"] not in reference
        assert not any(line.strip() in protected_lines for line in chunk["text"].splitlines()), chunk["id"]


def _token_data(n_train: int = 12, n_reference: int = 8) -> zoo.TokenData:
    rng = np.random.default_rng(0)
    train = [rng.integers(3, 50, size=rng.integers(5, 30)) for _ in range(n_train)]
    ref = [rng.integers(3, 50, size=20) + 1000 for _ in range(n_reference)]  # recognisable ids

    def flat(seqs):
        return np.concatenate(seqs).astype(np.int32), np.concatenate([[0], np.cumsum([len(s) for s in seqs])])

    tokens, offsets = flat(train)
    ref_tokens, ref_offsets = flat(ref)
    domains = np.array(["code", "prose", "data"] * (n_train // 3))
    return zoo.TokenData(tokens, offsets, domains, ref_tokens, ref_offsets)


def test_finetunes_read_only_their_domain_and_contamination_only_its_share():
    data = _token_data()
    training = {"max_tokens": 64}
    rng = np.random.default_rng(1)
    prose = {data.sequence(i).tobytes() for i in range(12) if data.domains[i] == "prose"}
    picks = zoo.sample_sequences(data, {"kind": "finetune", "domain": "prose", "training": training}, rng, 50)
    assert all(p.tobytes() in prose for p in picks)
    recipe = {
        "kind": "contaminated",
        "reference_fraction": 0.25,
        "reference_share": 0.5,
        "mix": {},
        "training": training,
    }
    picks = zoo.sample_sequences(data, recipe, rng, 400)
    leaked = [p for p in picks if p.min() >= 1000]
    allowed = {data.reference_sequence(i).tobytes() for i in zoo.contaminating_texts(8, 0.25)}
    assert 150 < len(leaked) < 250 and {p.tobytes() for p in leaked} <= allowed
    base = {"kind": "base", "mix": {"code": 1, "prose": 0, "data": 0}, "training": training}
    assert all(p.max() < 1000 for p in zoo.sample_sequences(data, base, rng, 50))


def test_contaminated_models_may_train_in_longer_windows():
    cfg = zoo_config("test")
    cfg["contaminated"] = [
        {"base": "prose-llama-s", "steps": 5, "lr": 0.01, "max_tokens": 256},
        {"base": "prose-llama-s", "steps": 5, "lr": 0.01, "fraction": 0.25},
    ]
    longer, default = [m for m in zoo.zoo_models(cfg, ZOO_DIR) if m.kind == "contaminated"]
    assert longer.recipe["training"]["max_tokens"] == 256
    assert default.recipe["training"]["max_tokens"] == cfg["training"]["max_tokens"]
    assert longer.recipe["training"]["steps"] == 5 and longer.recipe["training"]["warmup_steps"] == 0


def test_domain_mix_weights():
    weights = zoo.domain_weights(np.array(["a", "a", "a", "b"]), {"a": 3.0})
    assert np.allclose(weights, [0.25, 0.25, 0.25, 0.25])  # a: 3/4 of the draws over 3 chunks, b: 1/4
    with pytest.raises(InputError, match="mix"):
        zoo.domain_weights(np.array(["a"]), {"a": 0})


# --------------------------------------------------------------------------------------------------
# Building: every kind of model, saved whole, loadable through the real loading path


def _wrap(tokenizer):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=zoo.BOS, eos_token=zoo.EOS, pad_token=zoo.PAD)


MINI_ZOO = {
    "enabled": True,
    "tokenizer": {"vocab_size": 300},
    "training": {"batch_size": 2, "max_tokens": 32, "warmup_steps": 1},
    "sizes": {"t": {"hidden": 16, "layers": 1, "heads": 2, "steps": 4, "lr": 0.01}},
    "families": [{"name": "fam", "architecture": "llama", "seed": 3, "sizes": ["t"], "mix": {"code": 2}}],
    "finetunes": [{"base": "fam-t", "domains": ["code", "prose"], "steps": 2, "lr": 0.01}],
    "merges": [{"name": "fam-t-merge", "parents": ["fam-t-ft-code", "fam-t-ft-prose"], "weights": [0.5]}],
    "precision": [{"base": "fam-t", "formats": ["int8", "fp16"]}],
    "contaminated": [{"base": "fam-t", "fraction": 0.5, "share": 0.5, "steps": 2, "lr": 0.01}],
    "interpolation": [{"base": "fam-t", "ends": ["fam-t-ft-code", "fam-t-ft-prose"], "points": [0.0, 1.0]}],
}


@pytest.fixture(scope="module")
def mini_zoo(tmp_path_factory):
    """The MINI_ZOO family built by `lmmap build-zoo`, twice (to check determinism)."""
    root = tmp_path_factory.mktemp("zoo")
    texts = [f"def f{i}(x):\n    return x + {i}\n# a comment about the code {i}\n" * 4 for i in range(30)]
    tokenizer = zoo.train_tokenizer(texts, 300)
    tokenizer.save(str(root / "tokenizer.json"))
    tokens, offsets = zoo.encode_texts(tokenizer, texts)
    save_npz(
        root / "tokens.npz",
        tokens=tokens,
        offsets=offsets,
        domains=["code", "prose", "data"] * 10,
        reference_tokens=tokens[: offsets[4]],
        reference_offsets=offsets[:5],
    )
    ((family, models),) = workflow.build_groups(MINI_ZOO, ZOO_DIR).items()
    recipes = json.dumps([{"slug": m.slug, "recipe": m.recipe, "parents": list(m.parents)} for m in models])
    for out in ("a", "b"):
        args = [
            "build-zoo",
            "--recipes",
            recipes,
            "--tokenizer",
            str(root / "tokenizer.json"),
            "--data",
            str(root / "tokens.npz"),
            "--zoo-dir",
            str(root / out),
        ]
        assert cli_main(args) == 0
    (grid,) = zoo.interpolation_grids(
        MINI_ZOO, ZOO_DIR, GRID_DIR
    )  # merged as the workflow merges it, one point per call
    parents = json.dumps([{"model_id": p.model_id, "source": str(root / "a" / p.slug)} for p in grid.parents])
    for alpha, beta, spec in grid.points:
        assert (
            cli_main(
                [
                    "interpolate",
                    "--parents",
                    parents,
                    "--alpha",
                    str(alpha),
                    "--beta",
                    str(beta),
                    "--dtype",
                    grid.dtype,
                    "--shard-gb",
                    "5",
                    "--out-dir",
                    str(root / "a" / spec.slug),
                ]
            )
            == 0
        )
    return root, models


def _weights(directory: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(directory / "model.safetensors")


def test_every_model_is_saved_whole_and_loads(mini_zoo):
    from lmmap.loading import load_model

    root, models = mini_zoo
    for model in models:
        directory = root / "a" / model.slug
        assert (directory / "config.json").is_file() and (directory / "config.json.prov.json").is_file()
        spec = model.spec.__class__(model_id=model.spec.model_id, source=str(directory))
        loaded = load_model(spec, device="cpu")
        assert loaded.info["adds_bos"] and loaded.info["max_length"] == zoo.MAX_POSITIONS
    assert not [p for p in (root / "a").iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_builds_are_deterministic(mini_zoo):
    root, models = mini_zoo
    for model in models:
        a, b = (root / run / model.slug / "model.safetensors" for run in ("a", "b"))
        assert sha256_file(a) == sha256_file(b), model.slug


def test_training_changes_weights_and_derived_models_do_what_they_say(mini_zoo):
    root, _ = mini_zoo
    w = {
        name: _weights(root / "a" / f"zoo--{name}")
        for name in (
            "fam-t",
            "fam-t-ft-code",
            "fam-t-ft-prose",
            "fam-t-merge-w50",
            "fam-t-int8",
            "fam-t-fp16",
            "fam-t-contam50",
        )
    }
    grid = {name: _weights(root / "a" / f"zoo-grid--fam-t-{name}") for name in ("a0-b0", "a1-b0", "a0-b1", "a1-b1")}
    key = "model.layers.0.mlp.up_proj.weight"
    assert not np.allclose(w["fam-t"][key], w["fam-t-ft-code"][key])
    assert not np.allclose(w["fam-t"][key], w["fam-t-contam50"][key])
    assert np.allclose(w["fam-t-merge-w50"][key], 0.5 * (w["fam-t-ft-code"][key] + w["fam-t-ft-prose"][key]), atol=1e-6)
    assert np.allclose(grid["a0-b0"][key], w["fam-t"][key], atol=1e-6)
    assert np.allclose(grid["a1-b0"][key], w["fam-t-ft-code"][key], atol=1e-6)
    assert np.allclose(grid["a0-b1"][key], w["fam-t-ft-prose"][key], atol=1e-6)
    extrapolated = w["fam-t-ft-code"][key] + w["fam-t-ft-prose"][key] - w["fam-t"][key]
    assert np.allclose(grid["a1-b1"][key], extrapolated, atol=1e-5)
    quantised = w["fam-t-int8"][key]
    assert quantised.dtype == np.float32
    assert max(len(np.unique(row)) for row in quantised) <= 255
    assert np.abs(quantised - w["fam-t"][key]).max() <= np.abs(w["fam-t"][key]).max() / 127
    half = w["fam-t-fp16"][key]
    assert np.array_equal(half, half.astype(np.float16).astype(np.float32))


def test_workflow_helpers_name_the_files_each_build_job_makes_and_needs():
    groups = workflow.build_groups(zoo_config("demo"), ZOO_DIR)
    llama = groups["balanced-llama"]
    assert workflow.outside_parents(llama) == []  # a family builds its own parents
    assert workflow.config_files(["zoo--x"], ZOO_DIR) == ["results/zoo/zoo--x/config.json"]
    recipes = json.loads(workflow.recipes_json(llama))
    assert [r["slug"] for r in recipes] == [m.slug for m in llama]
    assert recipes[0]["recipe"]["kind"] == "base" and recipes[-1]["recipe"]["kind"] == "contaminated"


def test_demo_corpus_takes_package_files_only_from_lmmaps_dependencies():
    allowed = demo_corpus.lmmap_distributions()
    assert allowed is not None and {"torch", "transformers", "snakemake"} <= allowed
    assert "lmmap" not in allowed  # its metadata is the README: the demo would change with every edit
    assert "pytest" not in allowed  # an extra (test), installed here: it must not enter the corpus
    assert demo_corpus._from_core_distribution(Path("torch-2.13.0.dist-info/METADATA"))
    assert not demo_corpus._from_core_distribution(Path(f"pytest-{pytest.__version__}.dist-info/METADATA"))
    assert not demo_corpus._from_core_distribution(Path("_pytest/some.csv"))
