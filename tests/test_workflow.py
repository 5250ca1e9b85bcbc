"""Workflow tiers: lint and a tiny end-to-end run in a temporary directory (dry runs of every config
and profile: tests/test_profiles.py)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def snakemake(*args, cwd=ROOT, timeout=900, env=None):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *args]
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result.stdout + result.stderr


def reusable_venv() -> str | None:
    """The virtual environment of this test run (make test names it)."""
    return os.environ.get("LMMAP_TEST_VENV") or (sys.prefix if sys.prefix != sys.base_prefix else None)


def make(*targets, cwd=ROOT, env=None, timeout=600) -> subprocess.CompletedProcess:
    """`make TARGETS` in `cwd` with this test run's virtual environment instead of installing another
    (`-o`: a fresh copy's pyproject.toml is newer than the environment's stamp)."""
    venv = reusable_venv()
    reuse = [f"VENV={venv}", "-o", f"{venv}/.lmmap-installed"] if venv else []
    return subprocess.run(["make", *targets, *reuse], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def results_paths_in_package() -> list[str]:
    """Every string literal of src/ that is a path under results/ (f-strings by their leading text)."""
    import ast

    found = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr) and node.values:
                node = node.values[0]
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("results/"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]}")
    return found


def test_the_workflow_owns_the_results_layout():
    """The package computes; paths under results/ are written in rules/common.smk and passed in."""
    assert results_paths_in_package() == []


def test_lint_is_clean():
    out = snakemake("--lint", "--configfile", str(ROOT / "config/config.yaml"))
    assert "Lints for" not in out, out


def test_shell_lines_take_their_paths_from_the_rules_outputs():
    """A path typed into a shell line outlives a renamed output: the step would write where no rule looks."""
    typed = []
    for path in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.findall(r"shell:\n((?:[ \t]+\".*\"\n)+)", path.read_text()):
            typed += [f"{path.name}: {line.strip()}" for line in block.splitlines() if "results/" in line]
    assert not typed, typed


def rule_steps() -> list[tuple[str, str]]:
    """(rule, step) for every rule that runs `python -m lmmap STEP` (for `analyze X`: X); a rule made in a
    loop by its name's constant part."""
    found = []
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"^\s*rule\b", smk.read_text(), flags=re.M)[1:]:
            name = re.match(r"\s*(\w*)\s*:", block).group(1) or re.search(
                r'name:\s*\n\s*f?"([a-z_]+?)_?\{', block
            ).group(1)
            for step, sub in re.findall(r'"python -m lmmap ([a-z-]+)(?: ([a-z][a-z-]*))?', block):
                found.append((name, sub if step == "analyze" else step))
    return found


def test_every_rule_is_named_after_the_step_it_runs():
    """Rule `[verb_]step[_object]`: the step's name (hyphens as underscores), led by a verb where the
    step's name is a noun (`compute_coordinates`), followed by what it is applied to (`score_model`)."""
    pairs = rule_steps()
    assert len(pairs) >= 30 and ("compute_coordinates", "coordinates") in pairs
    misnamed = [
        (rule, step)
        for rule, step in pairs
        if not re.fullmatch(rf"(?:[a-z]+_)?{step.replace('-', '_')}(?:_[a-z_]+)?", rule)
    ]
    assert not misnamed, misnamed


def test_steps_run_with_snakemakes_interpreter_not_the_python_on_path(tmp_path):
    """A new user's shell finds some other `python` first; the steps must not use it."""
    decoy = tmp_path / "bin/python"
    decoy.parent.mkdir()
    decoy.write_text("#!/bin/sh\necho 'the python on PATH ran' >&2\nexit 97\n")
    decoy.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{decoy.parent}{os.pathsep}{os.confstr('CS_PATH')}"
    snakemake(
        "results/texts/texts.jsonl",
        "--cores",
        "1",
        "--directory",
        str(tmp_path / "work"),
        "--configfile",
        str(ROOT / "config/config.yaml"),
        str(ROOT / "config/test/config.yaml"),
        env=env,
    )
    assert (tmp_path / "work/results/texts/texts.jsonl").stat().st_size > 0


@pytest.fixture(scope="module")
def sheet_workdir(tmp_path_factory):
    """A working directory mapping four tiny saved models (both tokenizer styles) from a sheet."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_models import save_tiny_model

    workdir = tmp_path_factory.mktemp("workflow")
    rows = ["model_id\tsource\tfamily\ttype\tsize\tcreated"]
    for i, style in enumerate(["gpt2", "llama", "gpt2", "llama"]):
        save_tiny_model(workdir / "models" / f"m {i}", style=style, seed=i)  # a space in the path
        rows.append(f"org/tiny;{i}\tmodels/m {i}\tfam{i % 2}\t{style}\t1M\t2024-0{i + 1}-01")
    (workdir / "models.tsv").write_text("\n".join(rows) + "\n")
    (workdir / "config.yaml").write_text(
        "models: models.tsv\nzoo: {enabled: false}\ntasks: {enabled: false}\nanalysis: {benchmarks: false}\n"
        "growth: {enabled: false}\n"  # the demo's cut date would leave none of these 2024 models on the map
        "texts: {source: demo, n: 16, seed: 1, max_bytes: 1024, min_bytes: 256}\n"
        "demo_corpus: {domains: [python-docs, licences], fractions: {reference: 0.5, train: 0.3, heldout: 0.2},"
        " max_docs_per_domain: 40, max_doc_bytes: 4096}\n"
        "scoring: {batch_tokens: 2048, device: cpu}\n"
        "map: {perplexity: 30, max_iter: 250, seed: 42, hues: [type, family], annotate: true}\n"
    )
    return workdir


@pytest.mark.slow
def test_end_to_end_from_a_model_sheet(sheet_workdir):
    snakemake(
        "--cores",
        "2",
        "--directory",
        str(sheet_workdir),
        "--configfile",
        str(ROOT / "config/config.yaml"),
        str(sheet_workdir / "config.yaml"),
    )
    results = sheet_workdir / "results"
    with np.load(results / "matrix/loglik.npz", allow_pickle=False) as m:
        assert m["L"].shape == (4, 16) and np.isfinite(m["L"]).all() and (m["L"] < 0).all()
        assert m["model_ids"].tolist() == [f"org/tiny;{i}" for i in range(4)]
    with np.load(results / "coords/coordinates.npz", allow_pickle=False) as c:
        np.testing.assert_allclose(c["Q"].mean(axis=1), 0, atol=1e-8)
    for figure in ("map_type", "map_family", "pca_variance", "kl_heatmap"):
        for ext in ("png", "pdf"):
            assert (results / f"figures/{figure}.{ext}").stat().st_size > 1000
    prov = json.loads((results / "matrix/loglik.npz.prov.json").read_text())
    assert prov["step"] == "merge" and len([k for k in prov["inputs"] if k.startswith("scores:")]) == 4
    assert prov["environment"]["packages"]["torch"] and prov["text_set_sha256"]
    score_prov = json.loads((results / "scores/org--tiny_0.npz.prov.json").read_text())
    assert score_prov["inputs"]["texts"]["sha256"] == prov["text_set_sha256"]
    # a second run has nothing to do: every job is cached
    assert "Nothing to be done" in snakemake(
        "-n",
        "--directory",
        str(sheet_workdir),
        "--configfile",
        str(ROOT / "config/config.yaml"),
        str(sheet_workdir / "config.yaml"),
    )


def check_demo_outputs(results: Path, n_models: int, n_texts: int, n_grid: int) -> None:
    """What a finished demo-shaped run (zoo, benchmarks, analyses, audit) must have produced."""
    audit = json.loads((results / "audit.json").read_text())
    assert audit["ok"] and audit["n_errors"] == 0 and audit["text_sets"] and audit["models"]
    with np.load(results / "matrix/loglik.npz", allow_pickle=False) as m:
        assert m["L"].shape == (n_models, n_texts) and np.isfinite(m["L"]).all()
    scores = pd.read_csv(results / "benchmarks/scores.csv")
    assert len(scores) == n_models and scores["mean"].between(0, 100).all()
    grids = list((results / "interpolation").glob("*/loglik.npz"))
    assert grids
    with np.load(grids[0], allow_pickle=False) as g:
        assert g["L"].shape == (n_grid, n_texts)
    # the grid was merged by the interpolation rules (one save_pretrained directory per point, with the
    # measured geometry), drawn with that geometry and clipped with the map's stored clip value
    grid = grids[0].parent
    merged = sorted((grid / "models").glob("*/interpolation.json"))
    assert len(merged) == n_grid and all((m.parent / "config.json").exists() for m in merged)
    summary = pd.read_csv(results / "analysis/interpolation" / f"{grid.name}_summary.csv").iloc[0]
    measured = json.loads(merged[0].read_text())
    assert summary["angle_deg"] == measured["angle_deg"] and 0 < summary["angle_deg"] < 180
    assert summary["norm1"] > 0 and summary["norm2"] > 0
    with np.load(results / "coords/coordinates.npz", allow_pickle=False) as c:
        assert summary["clip_value"] == float(c["clip_value"])
    assert {"weight_x", "weight_y"} <= set(pd.read_csv(results / "analysis/interpolation" / f"{grid.name}.csv"))
    for table in (
        "prediction/ridge.md",
        "baseline/loglik_correlation.md",
        "leakage/leakage.md",
        "kl_validation/summary.md",
        "dimensionality.md",
        "model_list.md",
        "findings.md",
    ):
        assert (results / "analysis" / table).stat().st_size > 100, table
    for figure in (
        "figures/map_type.png",
        "figures/kl_heatmap.png",
        "figures/map_best_domain.png",
        "figures/map_benchmark_mean.png",
    ):
        assert (results / figure).stat().st_size > 1000, figure


@pytest.mark.slow
def test_end_to_end_test_config_zoo_benchmarks_analyses(tmp_path):
    snakemake(
        "--cores",
        "2",
        "--directory",
        str(tmp_path),
        "--configfile",
        str(ROOT / "config/config.yaml"),
        str(ROOT / "config/test/config.yaml"),
    )
    check_demo_outputs(tmp_path / "results", n_models=10, n_texts=48, n_grid=9)
