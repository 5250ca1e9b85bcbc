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


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize("line, record, field, message", [
    ('{"domain": "d", "text": "a"}', "line 2", "id", "missing or not a string"),
    ('{"id": "b", "domain": 3, "text": "a"}', "line 2", "domain", "missing or not a string"),
    ('{"id": "b", "domain": "d", "text": ["a"]}', "line 2", "text", "missing or not a string"),
    ('["not", "an", "object"]', "line 2", None, "expected a JSON object"),
    ('{"id": "a", "domain": "d", "text": "again"}', 1, "id", "duplicate text id 'a'"),
])
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


@pytest.mark.parametrize("value, field, message", [
    ("x", "hellaswag", "'x' is not a number"),
    ("", None, None),  # an empty cell is a missing score, not an error
])
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
    from lmmap.storage import save_npz, write_json
    from lmmap.texts import write_text_set

    texts = tmp_path / "texts.jsonl"
    write_text_set(texts, [{"id": str(i), "domain": "d", "text": f"t{i}"} for i in range(3)])
    write_json(tmp_path / "models.json", {"models": [{"model_id": "org/inf"}]})
    save_npz(tmp_path / "inf.npz", loglik=np.array([-1.0, np.inf, -2.0]), n_tokens=np.ones(3, int),
             truncated=np.zeros(3, bool), text_ids=np.array(["0", "1", "2"]),
             text_set_sha256=np.array(load_text_set(texts).sha256), model_id=np.array("org/inf"))
    status = main(["merge", "--texts", str(texts), "--models", str(tmp_path / "models.json"), "--scores",
                   str(tmp_path / "inf.npz"), "--out", str(tmp_path / "L.npz"), "--out-table", str(tmp_path / "m.csv")])
    err = capsys.readouterr().err
    assert status == 2 and "inf.npz: record 1: field 'loglik': model 'org/inf' has 1 non-finite" in err
    assert not (tmp_path / "L.npz").exists() and not list(tmp_path.glob(".L.npz*"))  # nothing half-written


def snakemake_dry_run(tmp_path: Path, config: str) -> subprocess.CompletedProcess:
    (tmp_path / "bad.yaml").write_text(config)
    cmd = [sys.executable, "-m", "snakemake", "-n", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(ROOT / "config/test/config.yaml"), str(tmp_path / "bad.yaml")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("config, message", [
    ("coordinates: {clip_quantile: 0.9}\n", "0.9 is greater than the maximum of 0.5"),
    ("texts: {source: demo, n: many}\n", "'many' is not of type 'integer', 'null'"),
    ("merge: {allow_missing: 'yes'}\n", "'yes' is not of type 'boolean'"),
    ("texts: {source: jsonl}\n", "On instance['texts']['path']:\n    None"),
    ("models: no-such-sheet.tsv\n", "no-such-sheet.tsv: model sheet does not exist"),
])
def test_bad_config_fails_at_start_up_with_a_clear_message(tmp_path, config, message):
    result = snakemake_dry_run(tmp_path, config)
    assert result.returncode != 0 and message in result.stdout + result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "results").exists()
