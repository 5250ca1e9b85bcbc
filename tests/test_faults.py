"""Faults: nothing is written half-way, a missing or failed model is named (never silently dropped), and
one broken model does not stop or corrupt the others under `--keep-going`."""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lmmap.cli import main
from lmmap.errors import InputError
from lmmap.matrix import merge_scores, missing_models
from lmmap.provenance import read_provenance, write_provenance
from lmmap.storage import save_npz, write_json
from lmmap.texts import load_text_set, write_text_set

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "lmmap"
# calls that write to the path (or file object) they are given
WRITERS = {
    "to_csv",
    "to_parquet",
    "savefig",
    "save_pretrained",
    "save",
    "savez",
    "savez_compressed",
    "write_text",
    "write_bytes",
    "dump",
    "to_json",
}


def written_targets(tree: ast.AST):
    """(line, target expression) of every call that writes a file, and of every open() for writing."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in WRITERS:
            target = node.args[-1] if func.attr == "dump" and node.args else (node.args[0] if node.args else None)
            if func.attr in ("write_text", "write_bytes"):
                target = func.value  # Path(...).write_text(content): the receiver is the file
            if target is not None:
                yield node.lineno, target
        elif isinstance(func, ast.Name) and func.id == "open" and len(node.args) > 1:
            mode = node.args[1]
            if isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax"):
                yield node.lineno, node.args[0]


def names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def test_every_writer_in_the_package_writes_through_a_temporary_file():
    """Outside lmmap.storage, files are only written to a temporary path (`tmp`, from atomic_path or
    a temporary directory renamed into place) or through a file object opened on one."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "storage.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        handles = {
            item.optional_vars.id
            for node in ast.walk(tree)
            if isinstance(node, ast.With)
            for item in node.items
            if isinstance(item.optional_vars, ast.Name)
            and isinstance(item.context_expr, ast.Call)
            and "tmp" in names_in(item.context_expr)
        }
        for line, target in written_targets(tree):
            used = names_in(target)
            if not (used & ({"tmp"} | handles)) and not isinstance(target, ast.Constant):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {ast.unparse(target)}")
    assert offenders == [], "writes that bypass lmmap.storage.atomic_path:\n" + "\n".join(offenders)


@pytest.fixture
def text_set(tmp_path):
    write_text_set(tmp_path / "texts.jsonl", [{"id": str(i), "domain": "d", "text": f"text {i}"} for i in range(3)])
    return load_text_set(tmp_path / "texts.jsonl")


def score_file(directory: Path, text_set, model_id: str, loglik=(-1.0, -2.0, -3.0), sha=None) -> Path:
    path = directory / f"{model_id.replace('/', '--')}.npz"
    save_npz(
        path,
        loglik=np.asarray(loglik, float),
        n_tokens=np.ones(len(loglik), int),
        truncated=np.zeros(len(loglik), bool),
        text_ids=np.array(text_set.ids),
        text_set_sha256=np.array(sha or text_set.sha256),
        model_id=np.array(model_id),
    )
    write_provenance(path, "score", inputs={"texts": text_set.path}, extra={"model": {"n_params": 10}})
    return path


def test_merge_names_every_bad_score_file_at_once(tmp_path, text_set):
    good = score_file(tmp_path, text_set, "org/good")
    nan = score_file(tmp_path, text_set, "org/nan", loglik=(-1.0, np.nan, -3.0))
    other = score_file(tmp_path, text_set, "org/other", sha="e" * 64)
    with pytest.raises(InputError) as info:
        merge_scores([good, nan, tmp_path / "gone.npz", other], text_set)
    message = str(info.value)
    assert "3 score files cannot be merged" in message
    for expected in (
        "'org/nan' has 1 non-finite",
        "gone.npz: file does not exist",
        "'org/other' was scored on a different text set",
    ):
        assert expected in message


def test_missing_models_are_all_named_unless_allowed():
    expected = ["org/a", "org/b", "org/c", "org/d"]
    with pytest.raises(InputError) as info:
        missing_models(expected, ["org/c", "org/a"], "models.json")
    assert "2 of 4 models have no scores: ['org/b', 'org/d']" in str(info.value) and "allow_missing" in str(info.value)
    assert missing_models(expected, ["org/c", "org/a"], "models.json", allow_missing=True) == ["org/b", "org/d"]


def merge_cli(tmp_path, text_set, scores, *extra):
    write_json(tmp_path / "models.json", {"models": [{"model_id": m} for m in ("org/a", "org/b", "org/c")]})
    return main(
        [
            "merge",
            "--texts",
            text_set.path,
            "--models",
            str(tmp_path / "models.json"),
            "--scores",
            *map(str, scores),
            "--out",
            str(tmp_path / "L.npz"),
            "--out-table",
            str(tmp_path / "m.csv"),
            *extra,
        ]
    )


def test_merge_is_strict_by_default_and_records_what_it_left_out(tmp_path, text_set, capsys):
    scores = [score_file(tmp_path, text_set, "org/a"), tmp_path / "org--b.npz", score_file(tmp_path, text_set, "org/c")]
    assert merge_cli(tmp_path, text_set, scores) == 2
    assert "org--b.npz: file does not exist" in capsys.readouterr().err and not (tmp_path / "L.npz").exists()
    assert merge_cli(tmp_path, text_set, scores, "--allow-missing") == 0
    with np.load(tmp_path / "L.npz", allow_pickle=False) as matrix:
        assert matrix["model_ids"].tolist() == ["org/a", "org/c"] and matrix["L"].shape == (2, 3)
    prov = read_provenance(tmp_path / "L.npz")
    assert prov["allow_missing"] is True and prov["missing_models"] == ["org/b"]
    assert read_provenance(tmp_path / "m.csv")["missing_models"] == ["org/b"]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--cores",
        "2",
        "--directory",
        str(workdir),
        *args,
        "--configfile",
        str(ROOT / "config/config.yaml"),
        str(workdir / "config.yaml"),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_a_broken_model_neither_stops_nor_corrupts_the_others(tmp_path):
    """One model directory is corrupt. Under --keep-going the others are scored and stay valid, the
    strict merge does not run; with the broken one in `merge: {exclude: [...]}` the next run maps the others,
    records the broken one, and the audit passes (the workflow's own audit rule runs in test_workflow). Ids and paths carry quotes, spaces
    and `;`, which must reach no shell unquoted."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_models import save_tiny_model

    ids = ["org/tiny;0", 'org/it\'s "q" 1', "org/$(touch pwned) 2"]
    rows = ["model_id\tsource\tfamily\ttype\tsize\tcreated"]
    for i, (model_id, style) in enumerate(zip(ids, ["gpt2", "llama", "gpt2"])):
        save_tiny_model(tmp_path / "models" / f"m '{i}'; x", style=style, seed=i)
        rows.append(f"{model_id}\tmodels/m '{i}'; x\tfam\t{style}\t1M\t2024-0{i + 1}-01")
    broken = tmp_path / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{ not json")
    rows.append("org/broken\tmodels/broken\tfam\tgpt2\t1M\t2024-04-01")
    (tmp_path / "models.tsv").write_text("\n".join(rows) + "\n")
    config = (
        "models: models.tsv\nzoo: {enabled: false}\n"
        "texts: {source: demo, n: 12, seed: 1, max_bytes: 1024, min_bytes: 256}\n"
        "demo_corpus: {domains: [python-docs, licences], fractions: {reference: 0.5, train: 0.3, heldout: 0.2},"
        " max_docs_per_domain: 30, max_doc_bytes: 4096}\n"
        "scoring: {batch_tokens: 2048, device: cpu}\n"
        "map: {perplexity: 30, max_iter: 250, seed: 42, hues: [type], annotate: true}\n"
    )
    (tmp_path / "config.yaml").write_text(config + "merge: {exclude: []}\n")

    first = snakemake(tmp_path, "--keep-going", "results/coords/coordinates.npz")
    assert first.returncode != 0
    scores = tmp_path / "results" / "scores"
    assert sorted(p.name for p in scores.glob("*.npz")) == [
        "org--_touch_pwned_2.npz",
        "org--it_s_q_1.npz",
        "org--tiny_0.npz",
    ]
    assert not (tmp_path / "results/matrix/loglik.npz").exists()
    assert "org--broken" in (first.stdout + first.stderr)
    assert "config.json" in (tmp_path / "logs/score_model/org--broken.log").read_text()

    (tmp_path / "config.yaml").write_text(config + "merge: {exclude: [org/broken]}\n")
    second = snakemake(tmp_path, "results/coords/coordinates.npz")
    assert second.returncode == 0, second.stderr[-4000:]
    with np.load(tmp_path / "results/matrix/loglik.npz", allow_pickle=False) as matrix:
        assert matrix["model_ids"].tolist() == ids and np.isfinite(matrix["L"]).all()
    assert read_provenance(tmp_path / "results/matrix/loglik.npz")["missing_models"] == ["org/broken"]
    audit = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmmap",
            "audit",
            "results/coords/coordinates.npz",
            "results/matrix/models.csv",
            "--config",
            str(ROOT / "config/config.yaml"),
            "--config",
            "config.yaml",
            "--out",
            "results/audit.json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert audit.returncode == 0, audit.stderr
    report = json.loads((tmp_path / "results/audit.json").read_text())
    assert report["ok"] and [m["model_id"] for m in report["models"]] == sorted(ids)
    assert any(f["kind"] == "missing-models" for f in report["findings"])
    assert not list(tmp_path.rglob("pwned"))
    assert_only_safe_formats(tmp_path / "results")


def assert_only_safe_formats(results: Path) -> None:
    """Everything the pipeline wrote is data: no pickles, nothing executable."""
    allowed = {".npz", ".json", ".jsonl", ".csv", ".tsv", ".png", ".pdf", ".md", ".tex", ".txt", ".html"}
    for path in results.rglob("*"):
        if path.is_file():
            assert path.suffix in allowed, path
            assert not os.stat(path).st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH), path
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as data:
                    assert all(data[name].dtype != object for name in data.files)


def test_remote_code_runs_only_when_the_sheet_row_turns_it_on(tmp_path, monkeypatch):
    """A model directory that ships its own code (auto_map) loads with the library's class, and its
    code is never imported, unless the row says `trust_remote_code: true`."""
    from lmmap.loading import load_model
    from lmmap.sheet import read_sheet
    from lmmap.workflow import score_options
    from tiny_models import save_tiny_model

    monkeypatch.chdir(tmp_path)
    directory = save_tiny_model(tmp_path / "custom", "gpt2")
    config = json.loads((directory / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "custom.Config", "AutoModelForCausalLM": "custom.Model"}
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "custom.py").write_text(
        "open('EXECUTED', 'w').close()\nfrom transformers import GPT2Config as Config, GPT2LMHeadModel as Model\n"
    )
    (tmp_path / "models.tsv").write_text("model_id\tsource\ttrust_remote_code\na\tcustom\t\nb\tcustom\ttrue\n")
    default, trusted = read_sheet(tmp_path / "models.tsv")
    assert "--trust-remote-code" not in score_options(default) and "--trust-remote-code" in score_options(trusted)
    loaded = load_model(default, device="cpu")
    assert loaded.info["trust_remote_code"] is False and type(loaded.model).__name__ == "GPT2LMHeadModel"
    assert not (tmp_path / "EXECUTED").exists()


@pytest.mark.parametrize("damage", ["truncated", "not-a-zip", "no-sidecar", "sidecar-not-json"])
def test_merge_checks_every_input_before_writing_anything(tmp_path, text_set, capsys, damage):
    scores = [score_file(tmp_path, text_set, m) for m in ("org/a", "org/b", "org/c")]
    bad = scores[1]
    if damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:200])
    elif damage == "not-a-zip":
        bad.write_text("loglik,-1,-2,-3\n")
    elif damage == "no-sidecar":  # e.g. the disk filled up between the npz and its sidecar
        Path(str(bad) + ".prov.json").unlink()
    else:
        Path(str(bad) + ".prov.json").write_text("{ truncated")
    assert merge_cli(tmp_path, text_set, scores) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "org--b.npz" in err[0], err
    assert not (tmp_path / "L.npz").exists() and not (tmp_path / "m.csv").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_truncated_checkpoint_part_is_discarded_and_its_batches_recomputed(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from lmmap.scoring import ScoreOptions, score_texts
    from tiny_models import build_model, sample_texts, train_tokenizer

    tokenizer = train_tokenizer("gpt2")
    model = build_model("gpt2", vocab_size=len(tokenizer), seed=1)
    texts = sample_texts(12, seed=3, min_words=3, max_words=20)
    options = ScoreOptions(batch_tokens=60, checkpoint_seconds=0)
    first = score_texts(model, tokenizer, texts, options, checkpoint_dir=tmp_path, progress=False)
    parts = sorted(tmp_path.glob("part-*.npz"))
    assert len(parts) >= 3
    parts[1].write_bytes(parts[1].read_bytes()[:100])  # a part cut short by a full disk
    resumed = score_texts(model, tokenizer, texts, options, checkpoint_dir=tmp_path, progress=False)
    assert resumed.info["batches_run"] == 1 and np.array_equal(resumed.loglik, first.loglik)
    again = score_texts(model, tokenizer, texts, options, checkpoint_dir=tmp_path, progress=False)
    assert again.info["batches_run"] == 0  # the damaged part was replaced, not read again and again


def test_a_planted_or_altered_gguf_cache_entry_is_never_used(tmp_path):
    from lmmap import loading

    digest = "d" * 64
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "config.json").write_text("{}")  # the name is right, nothing says lmmap made it
    assert not loading._gguf_cache_entry_valid(planted, digest) and not planted.exists()
    made = tmp_path / "made"
    made.mkdir()
    (made / "config.json").write_text("{}")
    (made / "model.safetensors").write_bytes(b"weights")
    write_json(made / loading.GGUF_MANIFEST, {"gguf_sha256": digest, "files": loading._file_digests(made)["files"]})
    assert loading._gguf_cache_entry_valid(made, digest)
    assert not loading._gguf_cache_entry_valid(made, "e" * 64)  # made from another GGUF file
    (made.mkdir(), (made / "config.json").write_text("{}"), (made / "model.safetensors").write_bytes(b"other"))
    write_json(made / loading.GGUF_MANIFEST, {"gguf_sha256": digest, "files": {"config.json": "x"}})
    assert not loading._gguf_cache_entry_valid(made, digest)  # files differ from the manifest
