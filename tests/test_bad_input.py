"""Bad input the other test files do not already cover: each is refused (or handled) with a message
that names the file, the record and the field. Covered elsewhere: malformed JSONL, missing or empty
text, invalid UTF-8 and duplicate ids in source texts (test_texts); bad sheet rows and colliding ids
(test_sheet); missing model paths (test_loading); truncation at the context length and texts of
zero or one token (test_scoring); wrong-length, non-finite and other-text-set scores (test_matrix);
models missing from a table (test_analysis_commands)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lmmap.analysis.inputs import read_benchmarks
from lmmap.cli import main
from lmmap.errors import InputError
from lmmap.sheet import read_sheet, slugify
from lmmap.texts import load_text_set

ROOT = Path(__file__).resolve().parents[1]

# the text settings the workflow passes (prepare-texts has no defaults of its own)
TEXTS = ["--seed", "42", "--max-bytes", "1024", "--min-bytes", "256"]


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def run_plot_kl(tmp_path: Path) -> int:
    """`lmmap plot-kl` of tmp_path/kl.npz grouped by the type column of tmp_path/models.csv."""
    kl, models = str(tmp_path / "kl.npz"), str(tmp_path / "models.csv")
    return main(
        ["plot-kl", "--kl", kl, "--models-table", models, "--group", "type", "--out-stem", str(tmp_path / "kl")]
    )


def run_merge(tmp_path: Path, texts: Path, scores: str) -> int:
    """`lmmap merge` of `scores` on `texts`, with tmp_path/models.json, writing into tmp_path."""
    return main(
        [
            "merge",
            "--texts",
            str(texts),
            "--models",
            str(tmp_path / "models.json"),
            "--scores",
            scores,
            "--out",
            str(tmp_path / "L.npz"),
            "--out-table",
            str(tmp_path / "m.csv"),
        ]
    )


@pytest.mark.parametrize(
    "line, record, field, message",
    [
        ('{"domain": "d", "text": "a"}', "line 2", "id", "missing or not a string"),
        ('{"id": "b", "domain": 3, "text": "a"}', "line 2", "domain", "missing or not a string"),
        ('{"id": "b", "domain": "d", "text": ["a"]}', "line 2", "text", "missing or not a string"),
        ('["not", "an", "object"]', "line 2", None, "expected a JSON object"),
        ('{"id": "a", "domain": "d", "text": "again"}', 1, "id", "duplicate text id 'a'"),
    ],
)
def test_text_set_records_are_checked_when_loaded(tmp_path, line, record, field, message):
    path = write(tmp_path / "texts.jsonl", '{"id": "a", "domain": "d", "text": "first"}\n' + line + "\n")
    with pytest.raises(InputError) as info:
        load_text_set(path)
    assert (info.value.record, info.value.field) == (record, field)
    assert message in str(info.value) and str(path) in str(info.value)


def test_empty_text_set_is_refused(tmp_path):
    with pytest.raises(InputError, match="contains no texts"):
        load_text_set(write(tmp_path / "texts.jsonl", "\n\n"))


def test_sheet_that_is_not_utf8_is_named(tmp_path):
    path = write(tmp_path / "models.tsv", b"model_id\tsource\n\xffm\tx\n")
    with pytest.raises(InputError, match=r"models.tsv: invalid UTF-8 at byte 16"):
        read_sheet(path)


def test_the_same_model_id_twice_is_refused(tmp_path):
    path = write(tmp_path / "models.tsv", "model_id\tsource\norg/a\tx\norg/a\ty\n")
    with pytest.raises(InputError) as info:
        read_sheet(path)
    assert info.value.field == "model_id" and "duplicate model id: 'org/a'" in str(info.value)


@pytest.mark.parametrize("model_id", ["../../etc/passwd", "$(rm -rf ~)", "`id`", "..", "a\nb", "x'; echo pwned #"])
def test_unsafe_model_ids_become_single_harmless_path_components(model_id):
    slug = slugify(model_id)
    assert "/" not in slug and slug not in (".", "..") and not slug.startswith(".")
    assert all(c.isalnum() or c in "._-" for c in slug)


@pytest.mark.parametrize(
    "value, field, message",
    [
        ("x", "hellaswag", "'x' is not a number"),
        ("", None, None),  # an empty cell is a missing score, not an error
    ],
)
def test_benchmark_table_with_a_non_numeric_score(tmp_path, value, field, message):
    path = write(tmp_path / "bench.csv", f"model_id,hellaswag,mean\norg/a,50,50\norg/b,{value},40\n")
    if message is None:
        assert np.isnan(read_benchmarks(path).loc["org/b", "hellaswag"])
        return
    with pytest.raises(InputError) as info:
        read_benchmarks(path)
    assert (info.value.record, info.value.field) == ("org/b", field) and message in str(info.value)


def test_tokenizer_without_any_special_token_is_scored_exactly():
    """No pad, BOS or EOS at all: scoring still works and equals the one-text-at-a-time reference."""
    from transformers import PreTrainedTokenizerFast

    from lmmap.scoring import ScoreOptions, reference_logliks, score_texts
    from tiny_models import build_model, sample_texts, train_tokenizer

    bare = PreTrainedTokenizerFast(tokenizer_object=train_tokenizer("gpt2").backend_tokenizer)
    assert bare.pad_token_id is None and bare.bos_token_id is None and bare.eos_token_id is None
    model = build_model("gpt2", vocab_size=len(bare), seed=3)
    texts = sample_texts(6, seed=2, min_words=2, max_words=30)
    result = score_texts(model, bare, texts, ScoreOptions(batch_tokens=64), progress=False)
    np.testing.assert_allclose(result.loglik, reference_logliks(model, bare, texts), rtol=1e-4)
    assert (result.loglik < 0).all()


def test_merge_command_names_the_bad_file_and_exits_2(tmp_path, capsys):
    from lmmap.provenance import write_provenance
    from lmmap.storage import save_npz, write_json
    from lmmap.texts import write_text_set

    texts = tmp_path / "texts.jsonl"
    write_text_set(texts, [{"id": str(i), "domain": "d", "text": f"t{i}"} for i in range(3)])
    write_json(tmp_path / "models.json", {"models": [{"model_id": "org/inf"}]})
    save_npz(
        tmp_path / "inf.npz",
        loglik=np.array([-1.0, np.inf, -2.0]),
        n_tokens=np.ones(3, int),
        truncated=np.zeros(3, bool),
        text_ids=np.array(["0", "1", "2"]),
        text_set_sha256=np.array(load_text_set(texts).sha256),
        model_id=np.array("org/inf"),
    )
    write_provenance(tmp_path / "inf.npz", "score", inputs={"texts": texts})
    status = run_merge(tmp_path, texts, str(tmp_path / "inf.npz"))
    err = capsys.readouterr().err
    assert status == 2 and "inf.npz: record 1: field 'loglik': model 'org/inf' has 1 non-finite" in err
    assert not (tmp_path / "L.npz").exists() and not list(tmp_path.glob(".L.npz*"))  # nothing half-written


def snakemake_dry_run(tmp_path: Path, config: str) -> subprocess.CompletedProcess:
    (tmp_path / "bad.yaml").write_text(config)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(ROOT / "config/test/config.yaml"),
        str(tmp_path / "bad.yaml"),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "config, message",
    [
        ("coordinates: {clip_quantile: 0.9}\n", "0.9 is greater than the maximum of 0.5"),
        ("texts: {source: demo, n: many}\n", "'many' is not of type 'integer', 'null'"),
        ("merge: {exclude: 'org/a'}\n", "'org/a' is not of type 'array'"),
        ("texts: {source: jsonl}\n", "On instance['texts']['path']:\n    None"),
        ("models: no-such-sheet.tsv\n", "no-such-sheet.tsv: model sheet does not exist"),
        # typos: every object of the schema refuses keys it does not know
        ("coordinates: {clip_quantil: 0.3}\n", "Additional properties are not allowed ('clip_quantil' was unexpected)"),
        ("scoring: {batch_token: 64}\n", "Additional properties are not allowed ('batch_token' was unexpected)"),
        ("zoo: {training: {batch_sise: 4}}\n", "Additional properties are not allowed ('batch_sise' was unexpected)"),
        ("scorng: {device: cpu}\n", "Additional properties are not allowed ('scorng' was unexpected)"),
        # a column the map is coloured by must exist before anything is scored
        ("map: {hues: [typo]}\n", "config: field 'map.hues': 'typo' is not a models-table column"),
        (
            "analysis: {prediction: {group_by: famly}}\n",
            "config: field 'analysis.prediction.group_by': 'famly' is not a models-table column",
        ),
    ],
)
def test_bad_config_fails_at_start_up_with_a_clear_message(tmp_path, config, message):
    result = snakemake_dry_run(tmp_path, config)
    assert result.returncode != 0 and message in result.stdout + result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "results").exists()


# --------------------------------------------------------------------------- models that cannot score


def _damaged_model(tmp_path: Path, damage: str) -> Path:
    """A copy of a tiny model directory with one kind of damage; returns the source to score."""
    import json
    import shutil

    from tiny_models import save_tiny_model

    directory = save_tiny_model(tmp_path / damage, "gpt2")
    weights = directory / "model.safetensors"
    if damage == "no-tokenizer":
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            (directory / name).unlink(missing_ok=True)
    elif damage == "truncated-weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "empty-weights":
        weights.write_bytes(b"")
    elif damage in ("truncated-gguf", "upper-case-GGUF"):
        shutil.rmtree(directory)
        directory.mkdir()
        gguf = directory / ("model.gguf" if damage == "truncated-gguf" else "model.GGUF")
        gguf.write_bytes(b"GGUF\x03\x00")
        return gguf
    elif damage == "custom-code":
        config = json.loads((directory / "config.json").read_text())
        config.update(
            model_type="my-custom", auto_map={"AutoConfig": "custom.Config", "AutoModelForCausalLM": "custom.Model"}
        )
        (directory / "config.json").write_text(json.dumps(config))
        (directory / "custom.py").write_text(
            "from transformers import GPT2Config as Config, GPT2LMHeadModel as Model\n"
        )
    elif damage == "nan-weights":
        from safetensors.torch import load_file, save_file

        tensors = load_file(weights)
        name = next(k for k in tensors if k.endswith("mlp.c_fc.weight"))
        tensors[name][0, 0] = float("nan")
        save_file(tensors, weights, metadata={"format": "pt"})
    elif damage == "missing-tensors":  # a valid file that lacks a layer: it would be initialised at random
        from safetensors.torch import load_file, save_file

        tensors = {k: v for k, v in load_file(weights).items() if ".h.1." not in k}
        save_file(tensors, weights, metadata={"format": "pt"})
    elif damage == "config-mismatch":
        config = json.loads((directory / "config.json").read_text())
        config["n_embd"] = 64
        (directory / "config.json").write_text(json.dumps(config))
    elif damage == "small-vocab":
        from safetensors.torch import load_file, save_file

        config = json.loads((directory / "config.json").read_text())
        config["vocab_size"] = 50
        (directory / "config.json").write_text(json.dumps(config))
        tensors = {k: (v[:50].clone() if v.shape[:1] == (400,) else v) for k, v in load_file(weights).items()}
        save_file(tensors, weights, metadata={"format": "pt"})
    return directory


@pytest.mark.parametrize(
    "damage, message",
    [
        ("no-tokenizer", "tokenizer cannot be loaded"),
        ("truncated-weights", "cannot load model: SafetensorError"),
        ("empty-weights", "cannot load model: SafetensorError"),
        ("truncated-gguf", "cannot load model"),
        ("upper-case-GGUF", "cannot load model"),  # taken as a GGUF file, not as a directory's config.json
        ("custom-code", "ships its own code"),
        ("nan-weights", "weights contain NaN or infinity (parameter transformer.h.0.mlp.c_fc.weight)"),
        ("small-vocab", "the model's vocabulary has only 50 entries"),
        ("missing-tensors", "the weight files lack or mis-shape 12 parameter(s), e.g. ['transformer.h.1.attn"),
        ("config-mismatch", "cannot load model: RuntimeError"),
    ],
)
def test_a_model_that_cannot_score_is_one_line_naming_it_and_exit_2(tmp_path, capsys, monkeypatch, damage, message):
    monkeypatch.setenv("LMMAP_GGUF_CACHE", "off")
    source = _damaged_model(tmp_path, damage)
    texts = write(tmp_path / "texts.jsonl", '{"id": "a", "domain": "d", "text": "the model maps language"}\n')
    status = main(
        [
            "score",
            "--model-id",
            f"org/{damage}",
            "--source",
            str(source),
            "--texts",
            str(texts),
            "--out",
            str(tmp_path / "out.npz"),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 2 and message in err and (f"org/{damage}" in err or str(source) in err), err
    assert not (tmp_path / "out.npz").exists()


def test_a_text_set_without_any_scored_token_is_an_error_and_single_token_texts_are_counted(tmp_path, capsys):
    from lmmap.provenance import read_provenance
    from tiny_models import save_tiny_model

    directory = save_tiny_model(tmp_path / "m", "gpt2")
    one_token = write(
        tmp_path / "one.jsonl", '{"id": "a", "domain": "d", "text": "a"}\n{"id": "b", "domain": "d", "text": "e"}\n'
    )
    args = ["score", "--model-id", "org/m", "--source", str(directory), "--device", "cpu", "--out"]
    assert main([*args, str(tmp_path / "one.npz"), "--texts", str(one_token)]) == 2
    assert "org/m" in capsys.readouterr().err and not (tmp_path / "one.npz").exists()
    mixed = write(
        tmp_path / "mixed.jsonl",
        '{"id": "a", "domain": "d", "text": "a"}\n{"id": "b", "domain": "d", "text": "the model maps language"}\n',
    )
    assert main([*args, str(tmp_path / "mixed.npz"), "--texts", str(mixed)]) == 0
    scoring = read_provenance(tmp_path / "mixed.npz")["scoring"]
    assert scoring["n_texts_without_scored_tokens"] == 1 and scoring["texts_without_scored_tokens"] == [0]


@pytest.mark.parametrize("option, value", [("--max-length", "-5"), ("--max-length", "0"), ("--batch-tokens", "-1")])
def test_negative_lengths_are_refused_by_the_command_line(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as info:
        main(["score", "--source", "x", "--texts", "t.jsonl", "--out", "o.npz", option, value])
    assert info.value.code == 2 and f"{value} is not a positive integer" in capsys.readouterr().err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks a machine without a GPU")
def test_cuda_device_without_a_gpu_is_a_clear_error(tmp_path, capsys):
    from tiny_models import save_tiny_model

    directory = save_tiny_model(tmp_path / "m", "gpt2")
    texts = write(tmp_path / "texts.jsonl", '{"id": "a", "domain": "d", "text": "the model maps"}\n')
    assert (
        main(
            [
                "score",
                "--source",
                str(directory),
                "--texts",
                str(texts),
                "--out",
                str(tmp_path / "o.npz"),
                "--device",
                "cuda",
            ]
        )
        == 2
    )
    assert "--device: 'cuda' requested but this machine has no CUDA GPU(s)" in capsys.readouterr().err


# --------------------------------------------------------------------------- texts quietly accepted


@pytest.mark.parametrize(
    "line, field, message",
    [
        ('{"id": null, "text": "some text"}', "id", "must be a string or an integer, not null"),
        ('{"index": {"a": 1}, "text": "some text"}', "index", "must be a string or an integer"),
        ('{"id": true, "text": "some text"}', "id", "must be a string or an integer, not true"),
        ('{"id": "b", "domain": {"name": "web"}, "text": "some text"}', "domain", "must be a string, not {"),
        ('{"id": "b", "pile_set_name": 3, "text": "some text"}', "pile_set_name", "must be a string, not 3"),
        ('{"id": "b", "text": "lone \\ud800 surrogate"}', "text", "lone surrogate '\\ud800' at character 5"),
        ('{"id": "b\\udfff", "text": "fine"}', "id", "lone surrogate"),
    ],
)
def test_prepare_texts_refuses_values_it_would_have_made_up_or_crashed_on(tmp_path, capsys, line, field, message):
    source = write(tmp_path / "source.jsonl", '{"id": "a", "text": "first"}\n' + line + "\n")
    assert main(["prepare-texts", "--input", str(source), "--out", str(tmp_path / "t.jsonl"), *TEXTS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"source.jsonl: record line 2: field '{field}': {message}" in err[0], err
    assert not (tmp_path / "t.jsonl").exists()


def test_a_text_set_with_a_lone_surrogate_is_refused_before_scoring(tmp_path):
    path = write(tmp_path / "texts.jsonl", '{"id": "a", "domain": "d", "text": "x \\udc80 y"}\n')
    with pytest.raises(InputError, match=r"record line 1: field 'text': lone surrogate"):
        load_text_set(path)
    docs = write(tmp_path / "docs.jsonl", '{"doc_id": "a", "domain": "d", "text": "x \\udc80 y"}\n')
    assert main(["prepare-texts", "--chunk", "--input", str(docs), "--out", str(tmp_path / "t.jsonl"), *TEXTS]) == 2


@pytest.mark.parametrize("n", ["-3", "0"])
def test_prepare_texts_with_a_non_positive_n_is_refused(tmp_path, capsys, n):
    with pytest.raises(SystemExit) as info:
        main(["prepare-texts", "--input", "x.jsonl", "--out", str(tmp_path / "t.jsonl"), *TEXTS, "--n", n])
    assert info.value.code == 2 and f"{n} is not a positive integer" in capsys.readouterr().err


# --------------------------------------------------------------------------- numeric model ids


def test_numeric_model_ids_stay_strings_through_embed_and_plot_kl(tmp_path):
    """Ids `1`, `2`, `3` must not become numbers when the models table is read back (KeyError)."""
    from lmmap.storage import save_npz

    ids = np.array(["1", "2", "3", "10"])
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(4, 6))
    texts = {"text_ids": np.array([f"t{j}" for j in range(6)]), "domains": np.array(["a", "b"] * 3)}
    save_npz(tmp_path / "coords.npz", Q=Q, model_ids=ids, **texts)
    save_npz(tmp_path / "matrix.npz", L=Q - 5, model_ids=ids, **texts)
    save_npz(tmp_path / "kl.npz", KL=np.abs(rng.normal(size=(4, 4))), model_ids=ids)
    write(
        tmp_path / "models.csv",
        "model_id,type,created,family\n1,a,2024-01-01,f\n2,b,2024-02-01,f\n3,a,2024-03-01,g\n10,b,2024-04-01,g\n",
    )
    assert (
        main(
            [
                "embed",
                "--coordinates",
                str(tmp_path / "coords.npz"),
                "--models-table",
                str(tmp_path / "models.csv"),
                "--out",
                str(tmp_path / "embedding.csv"),
                "--perplexity",
                "2",
                "--max-iter",
                "250",
                "--seed",
                "42",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "analyze",
                "maps",
                "--matrix",
                str(tmp_path / "matrix.npz"),
                "--coordinates",
                str(tmp_path / "coords.npz"),
                "--models-table",
                str(tmp_path / "models.csv"),
                "--embedding",
                str(tmp_path / "embedding.csv"),
                "--variables",
                "type",
                "family",
                "--out-dir",
                str(tmp_path),
                "--annotate",
            ]
        )
        == 0
    )
    assert run_plot_kl(tmp_path) == 0
    assert (tmp_path / "kl.png").is_file() and (tmp_path / "map_type.png").is_file()


def test_an_unreadable_input_path_is_one_line_not_a_traceback(tmp_path, capsys):
    (tmp_path / "models.json").mkdir()  # a directory where a file is expected
    texts = write(tmp_path / "texts.jsonl", '{"id": "a", "domain": "d", "text": "t"}\n')
    assert run_merge(tmp_path, texts, "x.npz") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "models.json: Is a directory" in err[0], err
    write(tmp_path / "bin.json", b"\xff\xfe{}")
    from lmmap.storage import read_json

    with pytest.raises(InputError, match="bin.json: invalid UTF-8 at byte 0"):
        read_json(tmp_path / "bin.json")


@pytest.mark.parametrize(
    "jobs, message",
    [
        ("[{oops", "--jobs: not valid JSON"),
        ('{"model_id": "a"}', "--jobs: must be a JSON list of objects"),
        (
            '[{"model_id": 1, "source": "m", "out": "o.npz"}]',
            "--jobs: record 0: field 'model_id': missing or not a string",
        ),
        ('[{"model_id": null, "source": "m", "out": "o.npz"}]', "field 'model_id': missing or not a string"),
        ('[{"model_id": "a", "source": "m", "out": "o.npz", "revison": "x"}]', "unknown field(s) ['revison']"),
    ],
)
def test_score_many_checks_its_jobs_before_loading_anything(tmp_path, capsys, jobs, message):
    texts = write(tmp_path / "texts.jsonl", '{"id": "a", "domain": "d", "text": "t"}\n')
    assert main(["score-many", "--jobs", jobs, "--texts", str(texts), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_models_list_or_table_that_lacks_a_model_is_named(tmp_path, capsys):
    from lmmap.storage import save_npz

    save_npz(tmp_path / "kl.npz", KL=np.zeros((2, 2)), model_ids=np.array(["org/a", "org/b"]))
    write(tmp_path / "models.csv", "model_id,type\norg/a,x\n")
    assert run_plot_kl(tmp_path) == 2
    assert "models.csv: field 'model_id': 1 model(s) have no row: ['org/b']" in capsys.readouterr().err
    texts = write(tmp_path / "texts.jsonl", '{"id": "a", "domain": "d", "text": "t"}\n')
    write(tmp_path / "models.json", '{"models": [{"model_id": 3}]}')
    assert run_merge(tmp_path, texts, "x.npz") == 2
    assert "models.json: record 0: field 'model_id': model_id missing or not a string" in capsys.readouterr().err
