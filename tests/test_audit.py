"""Audit: a result traced back to its raw inputs; tampering with a text, a score file or a config value
is caught, and so are missing inputs, mixed text sets and mixed code versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lmmap import provenance
from lmmap.audit import audit
from lmmap.cli import main
from lmmap.storage import load_npz, save_npz
from tiny_models import sample_texts, save_tiny_model

COORDS = "results/coords/coordinates.npz"
CONFIG = "coordinates:\n  clip_quantile: {q}\ntexts:\n  seed: 3\n  n: null\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A small chain built step by step with the CLI, with relative paths as in the workflow:
    source JSONL -> text set -> two models' scores -> matrix -> coordinates."""
    root = tmp_path_factory.mktemp("audit")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        Path("data").mkdir()
        Path("data/source.jsonl").write_text(
            "".join(
                json.dumps({"text": t, "pile_set_name": "demo"}) + "\n" for t in sample_texts(6, seed=4, min_words=3)
            )
        )
        rows = ["model_id\tsource\ttype"]
        for i, style in enumerate(["gpt2", "llama"]):
            save_tiny_model(root / "models" / f"m{i}", style=style, seed=i)
            rows.append(f"org/m{i}\tmodels/m{i}\t{style}")
        Path("data/models.tsv").write_text("\n".join(rows) + "\n")
        texts = ["--out", "results/texts/texts.jsonl", "--seed", "3", "--max-bytes", "1024", "--min-bytes", "256"]
        run = [
            ["prepare-texts", "--input", "data/source.jsonl", *texts],
            ["export-models", "--sheet", "data/models.tsv", "--zoo", "{}", "--out", "results/models/models.json"],
        ]
        run += [
            [
                "score",
                "--model-id",
                f"org/m{i}",
                "--source",
                f"models/m{i}",
                "--texts",
                "results/texts/texts.jsonl",
                "--out",
                f"results/scores/org--m{i}.npz",
                "--device",
                "cpu",
            ]
            for i in range(2)
        ]
        run += [
            [
                "merge",
                "--texts",
                "results/texts/texts.jsonl",
                "--models",
                "results/models/models.json",
                "--scores",
                "results/scores/org--m0.npz",
                "results/scores/org--m1.npz",
                "--out",
                "results/matrix/loglik.npz",
                "--out-table",
                "results/matrix/models.csv",
            ],
            [
                "coordinates",
                "--matrix",
                "results/matrix/loglik.npz",
                "--clip-quantile",
                "0.02",
                "--out",
                COORDS,
                "--out-kl",
                "results/coords/kl_estimate.npz",
            ],
        ]
        for argv in run:
            assert main(argv) == 0, argv
        Path("config.yaml").write_text(CONFIG.format(q=0.02))
    return root


@pytest.fixture
def work(built, tmp_path, monkeypatch):
    """A private copy of the built chain, as the working directory, to tamper with."""
    shutil.copytree(built, tmp_path / "w")
    monkeypatch.chdir(tmp_path / "w")
    return tmp_path / "w"


def errors(report, kind=None):
    return [f for f in report["findings"] if f["severity"] == "error" and (kind is None or f["kind"] == kind)]


def test_untouched_chain_passes_and_reaches_the_raw_inputs(work, capsys):
    assert main(["audit", COORDS, "--config", "config.yaml", "--out", "audit.json"]) == 0
    report = json.loads(Path("audit.json").read_text())
    assert report["ok"] and report["n_errors"] == 0 and errors(report) == []
    raw = {item["path"] for item in report["raw_inputs"]}
    assert raw == {"data/source.jsonl", "data/models.tsv"}
    assert report["results"][0]["files_in_chain"] == 6  # coords, matrix, texts, models.json, 2 scores
    assert [(m["model_id"], m["source"], m["source_kind"]) for m in report["models"]] == [
        ("org/m0", "models/m0", "local"),
        ("org/m1", "models/m1", "local"),
    ]
    assert report["trust_remote_code"] == [] and len(report["text_sets"]) == 1
    assert report["config_files"][0]["path"] == "config.yaml" and len(report["config_files"][0]["sha256"]) == 64
    assert Path("audit.json.prov.json").is_file()
    assert "0 error(s)" in capsys.readouterr().err


def test_a_tampered_text_is_caught_everywhere_it_was_used(work, capsys):
    texts = Path("results/texts/texts.jsonl")
    texts.write_text(texts.read_text().replace("the", "teh", 1))
    assert main(["audit", COORDS]) == 1
    report = audit([COORDS])
    changed = errors(report, "changed")
    assert {f["path"] for f in changed} == {"results/texts/texts.jsonl"}
    # made (prepare-texts' own record) and used by both score files and the merge
    assert {f["recorded_by"] for f in changed} == {
        "results/texts/texts.jsonl",
        "results/scores/org--m0.npz",
        "results/scores/org--m1.npz",
        "results/matrix/loglik.npz",
    }
    assert not report["ok"] and report["results"][0]["ok"] is False
    assert "results/texts/texts.jsonl" in capsys.readouterr().err


def test_a_tampered_score_file_is_caught(work):
    path = "results/scores/org--m1.npz"
    scores = load_npz(path)
    scores["loglik"] = scores["loglik"] + 1e-9  # a tiny change is still a change
    save_npz(path, **scores)
    report = audit([COORDS])
    found = {(f["path"], f["recorded_by"]) for f in errors(report)}
    assert found == {(path, path), (path, "results/matrix/loglik.npz")}  # vs its own sidecar and the merge's


def test_a_changed_config_value_is_caught(work):
    Path("config.yaml").write_text(CONFIG.format(q=0.05))
    assert main(["audit", COORDS, "--config", "config.yaml"]) == 1
    found = errors(audit([COORDS], config={"coordinates": {"clip_quantile": 0.05}, "texts": {"seed": 3}}), "config")
    assert len(found) == 1 and found[0]["path"] == COORDS
    assert "coordinates.clip_quantile is now 0.05" in found[0]["message"] and "made with 0.02" in found[0]["message"]
    # a value of another step: the text set's seed
    found = errors(audit([COORDS], config={"texts": {"seed": 4}}), "config")
    assert [f["path"] for f in found] == ["results/texts/texts.jsonl"]
    restored = '{"coordinates": {"clip_quantile": 0.02}}'
    assert main(["audit", COORDS, "--config", "config.yaml", "--config-json", restored]) == 0


def test_missing_inputs_results_and_sidecars_are_reported(work):
    Path("data/source.jsonl").unlink()
    shutil.rmtree("models/m0")
    Path("results/models/models.json.prov.json").unlink()
    report = audit([COORDS, "results/nowhere.npz"])
    missing = {f["path"]: f["message"] for f in errors(report, "missing")}
    assert set(missing) == {"data/source.jsonl", "models/m0", "results/nowhere.npz"}
    assert "org/m0" in missing["models/m0"] and "results/texts/texts.jsonl" in missing["data/source.jsonl"]
    # without its sidecar, models.json becomes a raw input of the merge: still hashed, not followed
    assert "results/models/models.json" in {item["path"] for item in report["raw_inputs"]}
    assert [r["ok"] for r in report["results"]] == [False, False]
    Path("results/matrix/loglik.npz.prov.json").unlink()
    assert errors(audit(["results/matrix/loglik.npz"]), "no-provenance")[0]["path"] == "results/matrix/loglik.npz"


def synthetic(path: str, inputs: dict, **extra) -> str:
    Path(path).write_text(path)
    provenance.write_provenance(path, "synthetic", inputs=inputs, extra=extra)
    return path


def test_files_from_two_text_sets_in_one_chain_are_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = synthetic("a.txt", {}, text_set_sha256="a" * 64)
    b = synthetic("b.txt", {}, text_set_sha256="b" * 64)
    report = audit([synthetic("c.txt", {"a": a, "b": b}, text_set_sha256="a" * 64)])
    found = errors(report, "text-set")
    assert len(found) == 1 and "2 different text sets" in found[0]["message"] and "b.txt" in found[0]["message"]


def test_mixed_code_versions_are_an_error_and_commits_a_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    real = provenance.environment()
    old = synthetic("old.txt", {})
    monkeypatch.setattr(
        provenance, "environment", lambda: {**real, "code": {"lmmap": "0.0.1", "git_commit": "abc", "git_dirty": True}}
    )
    report = audit([synthetic("new.txt", {"old": old})])
    assert "0.0.1" in errors(report, "code-version")[0]["message"]
    warnings = [f["message"] for f in report["findings"] if f["severity"] == "warning"]
    assert any("uncommitted" in w and "new.txt" in w for w in warnings)


def test_models_that_trusted_remote_code_are_listed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("m").mkdir()
    model = {"model_id": "org/custom", "source": "m", "source_kind": "local", "trust_remote_code": True}
    report = audit([synthetic("s.npz", {}, model=model)])
    assert report["trust_remote_code"] == ["org/custom"] and report["ok"]
    assert main(["audit", "s.npz", "--out", "a.json"]) == 0
    assert json.loads(Path("a.json").read_text())["models"][0]["trust_remote_code"] is True


def test_strict_mode_fails_on_warnings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    merged = synthetic("merged.npz", {}, missing_models=["org/broken"])
    assert main(["audit", merged]) == 0
    assert main(["audit", merged, "--strict"]) == 1
    assert audit([merged])["findings"][0]["kind"] == "missing-models"


def test_weights_replaced_after_scoring_are_caught(work):
    """Another model's weights copied over a scored local model: same path, other numbers."""
    shutil.copy(save_tiny_model(work / "other", "gpt2", seed=7) / "model.safetensors", "models/m0/model.safetensors")
    report = audit([COORDS])
    changed = errors(report, "changed")
    assert [f["path"] for f in changed] == ["models/m0/model.safetensors"]
    assert "weights of 'org/m0' changed" in changed[0]["message"]
    assert changed[0]["recorded_by"] == "results/scores/org--m0.npz" and not report["ok"]


@pytest.mark.parametrize(
    "target, used_by",
    [("results/scores/org--m1.npz.prov.json", "results/matrix/loglik.npz"), (COORDS + ".prov.json", None)],
)
def test_a_sidecar_edited_after_the_fact_is_caught(work, target, used_by):
    record = json.loads(Path(target).read_text())
    if "model" in record:
        record["model"]["source"] = "models/m0"  # as if the other model had been scored
    else:
        record["params"]["clip_quantile"] = 0.5
    Path(target).write_text(json.dumps(record))
    assert main(["audit", COORDS]) == 1
    messages = [f["message"] for f in errors(audit([COORDS]), "changed") if f["path"] == target]
    assert any("edited after it was written" in m for m in messages)
    if used_by:
        assert any(f"edited since {used_by} used" in m for m in messages)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{ not json", "invalid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"inputs": ["a"]}', "'output' and 'inputs' must be objects"),
        ('{"inputs": {"a": {"sha256": "x"}}}', "every input must be an object with a 'path'"),
        ('{"model": "org/x"}', "'params' and 'model' must be objects"),
    ],
)
def test_a_malformed_sidecar_is_one_line_and_exit_2(work, capsys, content, message):
    Path("results/matrix/loglik.npz.prov.json").write_text(content)
    assert main(["audit", COORDS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "loglik.npz.prov.json" in err[0] and message in err[0], err


@pytest.mark.parametrize(
    "value, message",
    [
        ("{oops", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ('{"coordinates": 3}', "field 'coordinates': must be a mapping"),
    ],
)
def test_a_malformed_config_json_is_one_line_and_exit_2(work, capsys, value, message):
    assert main(["audit", COORDS, "--config-json", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_sidecar_without_its_own_digest_is_a_warning(work):
    target = Path(COORDS + ".prov.json")
    record = json.loads(target.read_text())
    del record["record_sha256"]
    target.write_text(json.dumps(record))
    report = audit([COORDS])
    assert report["ok"] and any(f["kind"] == "unverifiable" and f["path"] == str(target) for f in report["findings"])
    assert main(["audit", COORDS, "--strict"]) == 1


def test_audit_summary_page_lists_findings_as_tables():
    from lmmap.audit import summary_html

    report = {
        "ok": False,
        "n_errors": 1,
        "n_warnings": 0,
        "results": [{"path": "r.csv", "files_in_chain": 3, "ok": False}],
        "findings": [
            {
                "severity": "error",
                "kind": "changed",
                "path": "x<y>.npz",
                "message": "sha differs",
                "recorded_by": "r.csv",
            }
        ],
        "raw_inputs": [{"path": "texts.jsonl", "sha256": "ab"}],
        "models": [],
        "trust_remote_code": [],
        "text_sets": ["t"],
        "code_versions": [{"version": "1"}],
        "config_files": [],
    }
    page = summary_html(report, failed=True)
    assert "Audit FAILED: 1 error(s)" in page and page.count("<table") == 3
    assert "x&lt;y&gt;.npz" in page and "<h3>Models</h3>" in page
