"""Profiles: dry runs (-n) of every profile with every config, the cluster settings that come from
the environment, and the scoring resources derived from model sizes (rules/resources.smk)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_workflow import make

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted(p.parent for p in (ROOT / "profiles").glob("*/config.yaml"))
LAYERED_ON = {"test-slurm": "slurm"}  # test-only settings over the user's profile (tests/test_slurm.py)
CONFIGS = sorted((ROOT / "config").glob("**/config.yaml"))
SITE_VARIABLES = [name for name in os.environ if name.startswith("LMMAP_")]
WIRED = "score_runtime" in (ROOT / "rules/score.smk").read_text()
needs_wiring = pytest.mark.skipif(not WIRED, reason="rule score_model does not use rules/resources.smk yet")


def dry_run(*args, cwd=ROOT, env=None):
    clean = {k: v for k, v in os.environ.items() if k not in SITE_VARIABLES}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-n", *args]
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, env=clean | (env or {}))
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout + result.stderr


def jobs(log: str, rule: str) -> dict[str, dict[str, str]]:
    """The dry run's jobs of `rule` (grouped or not): wildcard `model` -> resources."""
    pattern = rf"rule {rule}:\n(?:.*\n)*?\s+wildcards: model=(\S+)\n\s+resources: ([^\n]+)"
    return {model: dict(re.findall(r"(\w+)=([^,\s]*)", resources)) for model, resources in re.findall(pattern, log)}


def paper_scoring_overrides(workdir: Path) -> Path:
    """Re-scoring the paper's models (not its released data) on stand-in texts; a dry run reads neither."""
    texts = workdir / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": f"text {i} " * 40}) + "\n" for i in range(100)))
    overrides = workdir / "scoring.yaml"
    # the sheet's `family` is the paper's 29-class model_type (paper mode's models table names it so)
    overrides.write_text(
        json.dumps(
            {
                "models": str(ROOT / "config/paper/models.tsv"),
                "paper": {"enabled": False},
                "texts": {"source": "jsonl", "path": str(texts), "n": None},
                "analysis": {"prediction": {"group_by": "family"}},
            }
        )
    )
    return overrides


CASES = [
    pytest.param(
        profile,
        config,
        id=f"{profile.name}-{config.relative_to(ROOT)}",
        marks=[pytest.mark.slow] if "paper" in config.parts else [],
    )
    for profile in PROFILES
    for config in CONFIGS
]


@pytest.mark.parametrize(("profile", "config"), CASES)
def test_dry_run_of_every_profile_and_config(profile, config, tmp_path):
    configs = [str(ROOT / "config/config.yaml"), str(config)]
    if "paper" in config.parts:  # its released data is not in the repository: the 1,018 models' DAG
        configs.append(str(paper_scoring_overrides(tmp_path)))
    base = [str(ROOT / "profiles" / LAYERED_ON[profile.name])] if profile.name in LAYERED_ON else []
    profiles = [arg for p in [*base, str(profile)] for arg in ("--profile", p)]
    log = dry_run(*profiles, "--directory", str(tmp_path), "--configfile", *configs)
    assert re.search(r"score_(model|many_)", log) and "This was a dry-run" in log


@pytest.fixture(scope="module")
def sheet_of_sizes(tmp_path_factory):
    """A config mapping hub models of three sizes (dry runs only: nothing is downloaded)."""
    workdir = tmp_path_factory.mktemp("sizes")
    (workdir / "models.tsv").write_text(
        "model_id\tsource\trevision\tdtype\tsize\n"
        "small\torg/small\tabc123\tauto\t135M\n"
        "mid\torg/mid\tabc123\tbfloat16\t7B\n"
        "big\torg/big\tabc123\tbfloat16\t70B\n"
    )
    (workdir / "config.yaml").write_text(
        "models: models.tsv\nzoo: {enabled: false}\nscoring: {batch_tokens: 8192, device: auto}\n"
        "texts: {source: demo, n: 10000, seed: 1, max_bytes: 1024, min_bytes: 256}\n"
    )
    return workdir


def sized_dry_run(workdir, **env):
    return dry_run(
        "--profile",
        str(ROOT / "profiles/slurm"),
        "--directory",
        str(workdir),
        "--configfile",
        str(ROOT / "config/config.yaml"),
        str(workdir / "config.yaml"),
        env=env,
    )


@needs_wiring
def test_scoring_resources_follow_the_model_size(sheet_of_sizes):
    log = sized_dry_run(sheet_of_sizes)
    score = jobs(log, "score_model")
    assert [score[m]["gpu"] for m in ("small", "mid", "big")] == ["1", "1", "2"]  # 80 GB GPUs
    assert score["mid"]["gres"] == ""
    assert int(score["small"]["runtime"]) < int(score["mid"]["runtime"]) < int(score["big"]["runtime"])
    assert int(score["small"]["mem_mb"]) < int(score["mid"]["mem_mb"]) < int(score["big"]["mem_mb"])
    assert "Group job score_small" in log  # small models may be packed; the others not
    # hub models are downloaded first (local jobs, on the machine with network)
    assert set(jobs(log, "download_model")) == {"small", "mid", "big"}


@needs_wiring
def test_site_settings_come_from_the_environment(sheet_of_sizes):
    log = sized_dry_run(
        sheet_of_sizes,
        LMMAP_SLURM_ACCOUNT="proj42",
        LMMAP_SLURM_PARTITION="cpuq",
        LMMAP_SLURM_GPU_PARTITION="gpuq",
        LMMAP_SLURM_GPU_CONSTRAINT="a100|h100",
        LMMAP_SLURM_GPU_REQUEST="gres",
        LMMAP_GPU_MEM_GB="40",
    )
    score = jobs(log, "score_model")
    assert score["big"]["slurm_account"] == "proj42" and score["big"]["slurm_partition"] == "gpuq"
    assert score["big"]["constraint"] == "a100|h100"
    assert score["big"]["gres"] == "gpu:4" and score["big"]["gpu"] == "0"  # 40 GB GPUs, via --gres
    texts = re.search(r"rule prepare_texts:.*?resources: ([^\n]+)", log, re.DOTALL).group(1)
    assert "slurm_partition=cpuq" in texts and "slurm_account=proj42" in texts


def test_an_excluded_model_is_neither_scored_nor_merged(sheet_of_sizes, tmp_path):
    """`merge.exclude` decides what the map is built from; which files happen to exist does not."""
    config = [str(ROOT / "config/config.yaml"), str(sheet_of_sizes / "config.yaml"), str(tmp_path / "exclude.yaml")]
    (tmp_path / "exclude.yaml").write_text("merge: {exclude: [mid]}\n")
    log = dry_run("--directory", str(sheet_of_sizes), "--configfile", *config)
    assert set(jobs(log, "score_model")) == {"small", "big"}
    merge = re.search(r"rule merge_matrix:\n\s+input: ([^\n]+)", log).group(1)
    assert "results/scores/small.npz" in merge and "mid" not in merge
    (tmp_path / "exclude.yaml").write_text("merge: {exclude: [no/such-model]}\n")
    with pytest.raises(AssertionError, match="merge.exclude: not models to map: \\['no/such-model'\\]"):
        dry_run("--directory", str(sheet_of_sizes), "--configfile", *config)


def test_lint_of_the_download_and_resources_rules():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--lint",
            "--profile",
            str(ROOT / "profiles/slurm"),
            "--configfile",
            str(ROOT / "config/test/config.yaml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lints = result.stdout + result.stderr
    assert "Lints for" in lints or result.returncode == 0, lints[-3000:]  # the profile parses
    for mine in ("rules/download.smk:", "rules/resources.smk:", "rule download_model "):
        assert mine not in lints, lints[-3000:]


def test_profile_by_its_bare_name_after_the_one_time_setup(tmp_path):
    """`snakemake --profile slurm` from the repository root, as users write it, after `make slurm-profile`
    (which links profiles/slurm where Snakemake looks bare profile names up)."""
    xdg = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    demo = (
        "--profile",
        "slurm",
        "--directory",
        str(tmp_path / "work"),
        "--configfile",
        str(ROOT / "config/config.yaml"),
    )
    with pytest.raises(AssertionError, match="slurm"):  # Snakemake does not look in profiles/
        dry_run(*demo, env=xdg)
    setup = make("slurm-profile", env=os.environ | xdg)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert (tmp_path / "xdg/snakemake/slurm").resolve() == (ROOT / "profiles/slurm").resolve()
    log = dry_run(*demo, env=xdg)
    assert "Using profile slurm" in log and "This was a dry-run" in log
    assert make("slurm-profile", env=os.environ | xdg).returncode == 0  # running it again is harmless


def grid_jobs(log: str, rule: str) -> dict[str, dict[str, str]]:
    """The dry run's jobs of `rule` with wildcards grid and model: model -> resources."""
    pattern = rf"rule {rule}:\n(?:.*\n)*?\s+wildcards: grid=\S+, model=(\S+)\n(?:.*\n)*?\s+resources: ([^\n]+)"
    return {model: dict(re.findall(r"(\w+)=([^,\s]*)", resources)) for model, resources in re.findall(pattern, log)}


def test_paper_interpolation_plans_a_merge_and_a_scoring_job_per_grid_model(tmp_path):
    """config/paper/interpolation.yaml on the paper's released data (stand-in files: a dry run reads
    none and downloads nothing): 2 triples × 36 grid points, each merged by its own job with the disk
    its float16 weights need, then scored on a GPU; the parents come from the download rule."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("raw_log-likelihood_1018.pkl", "model-data-1018.pkl"):
        (data / name).write_bytes(b"")
    (data / "texts-10k-pile.jsonl").write_text(json.dumps({"text": "stand-in"}) + "\n")
    paths = tmp_path / "paths.yaml"
    paths.write_text(
        json.dumps(
            {
                "models": str(ROOT / "config/paper/models.tsv"),
                "paper": {"types": str(ROOT / "config/paper/models.tsv")},
                "map": {"type_colours": str(ROOT / "config/paper/types.tsv")},
            }
        )
    )
    log = dry_run(
        "--profile",
        str(ROOT / "profiles/slurm"),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(ROOT / "config/config.yaml"),
        str(ROOT / "config/paper/config.yaml"),
        str(ROOT / "config/paper/interpolation.yaml"),
        str(paths),
    )
    merges, scores = grid_jobs(log, "interpolate_grid_model"), grid_jobs(log, "score_grid_model")
    expected = {
        f"interpolation--{name}-a{a}-b{b}"
        for name in ("llama-2-7b", "mistral-7b")
        for a in ("0", "0.2", "0.4", "0.6", "0.8", "1")
        for b in ("0", "0.2", "0.4", "0.6", "0.8", "1")
    }
    assert set(merges) == set(scores) == expected and len(expected) == 72
    llama = merges["interpolation--llama-2-7b-a0.6-b0.8"]  # extrapolated: 1 - a - b < 0
    assert 13_400 < int(llama["disk_mb"]) < 13_700  # 6.74e9 parameters × 2 bytes (float16)
    assert int(merges["interpolation--mistral-7b-a0-b0"]["disk_mb"]) > int(llama["disk_mb"])
    assert 4_000 < int(llama["mem_mb"]) < 16_000  # one 5 GB shard and a few tensors, not the 13.5 GB model
    assert int(llama["runtime"]) > 10 and llama.get("gpu", "0") in ("0", "")
    assert scores["interpolation--llama-2-7b-a0.6-b0.8"]["gpu"] == "1"
    assert "--alpha 0.6 --beta 0.8 --dtype float16" in log
    assert set(jobs(log, "download_model")) == {
        "meta-llama--Llama-2-7b-hf",
        "meta-llama--Llama-2-7b-chat-hf",
        "lmsys--vicuna-7b-v1.5",
        "mistralai--Mistral-7B-v0.1",
        "HuggingFaceH4--zephyr-7b-beta",
        "mistralai--Mistral-7B-Instruct-v0.1",
    }
    assert log.count("rule plot_interpolation:") == 2 and "--map-coordinates results/coords/coordinates.npz" in log
    assert "rule score_model:" not in log  # the map itself comes from the released data


@pytest.mark.parametrize("enabled", [True, False])
def test_resampling_error_and_map_uncertainty_run_only_when_enabled(enabled, tmp_path):
    overrides = tmp_path / "overrides.yaml"
    sections = {"resampling_error": {"enabled": enabled}, "map_uncertainty": {"enabled": enabled}}
    overrides.write_text(json.dumps({"analysis": sections}))
    configs = [str(ROOT / "config/config.yaml"), str(ROOT / "config/test/config.yaml"), str(overrides)]
    log = dry_run("--directory", str(tmp_path), "--configfile", *configs)
    planned = {rule for rule in ("measure_resampling_error", "estimate_map_uncertainty") if f"rule {rule}:" in log}
    assert planned == ({"measure_resampling_error", "estimate_map_uncertainty"} if enabled else set())
