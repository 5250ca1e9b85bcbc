"""Scoring: batched results equal a float64 one-text-at-a-time reference, in any order, resumably."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lmmap import scoring
from lmmap.cli import main as cli_main
from lmmap.loading import load_model
from lmmap.provenance import read_provenance
from lmmap.scoring import ScoreOptions, build_rows, reference_logliks, rolling_windows, score_texts
from lmmap.sheet import ModelSpec
from lmmap.storage import load_npz
from tiny_models import sample_texts, save_tiny_model

TESTS = Path(__file__).parent
MIXED = sample_texts(24, seed=1, min_words=1, max_words=20) + [""]  # short, medium and empty texts


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def tiny(request, tmp_path_factory):
    """(model, tokenizer, directory) of a tiny model with a 128-token context."""
    directory = save_tiny_model(tmp_path_factory.mktemp(request.param), request.param, max_positions=128)
    loaded = load_model(ModelSpec(model_id=request.param, source=str(directory)), device="cpu")
    return loaded.model, loaded.tokenizer, directory


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


@pytest.mark.parametrize("batch_tokens", [8, 100, 1000, 100_000])
def test_batched_equals_float64_reference(tiny, batch_tokens):
    model, tokenizer, _ = tiny
    texts = MIXED + sample_texts(6, seed=2, min_words=40, max_words=80)  # some exceed 128 tokens
    result = score_texts(model, tokenizer, texts, ScoreOptions(batch_tokens=batch_tokens), progress=False)
    reference = reference_logliks(model, tokenizer, texts)
    nonempty = result.n_tokens > 0
    assert relative_error(result.loglik[nonempty], reference[nonempty]) < 1e-4
    assert (result.loglik[~nonempty] == 0).all()
    # the first token is never scored; BOS, when the tokenizer adds one, is the first token
    lengths = np.array([min(len(tokenizer(t)["input_ids"]), 128) for t in texts])
    assert (result.n_tokens == np.maximum(lengths - 1, 0)).all()
    assert result.info["n_batches"] >= 1 and result.info["tokens_scored"] == result.n_tokens.sum()


def test_scores_depend_on_the_tokens_not_just_their_count(tiny):
    """Guards the test above against a model so random that every text scores alike."""
    model, tokenizer, _ = tiny
    texts = ["the model maps language", "language maps the model"]
    result = score_texts(model, tokenizer, texts, progress=False)
    assert result.n_tokens[0] == result.n_tokens[1]
    assert abs(result.loglik[0] - result.loglik[1]) > 0.1


def test_results_identical_in_any_input_order(tiny):
    model, tokenizer, _ = tiny
    texts = MIXED
    options = ScoreOptions(batch_tokens=300)
    base = score_texts(model, tokenizer, texts, options, progress=False)
    order = np.random.default_rng(0).permutation(len(texts))
    shuffled = score_texts(model, tokenizer, [texts[i] for i in order], options, progress=False)
    assert np.array_equal(shuffled.loglik, base.loglik[order])
    assert np.array_equal(shuffled.n_tokens, base.n_tokens[order])


def test_truncation_at_model_length_is_recorded(tiny):
    model, tokenizer, _ = tiny
    long_text = " ".join(["divergence between two distributions"] * 60)
    texts = [long_text, "a short text"]
    result = score_texts(model, tokenizer, texts, progress=False)
    assert result.truncated.tolist() == [True, False]
    assert result.n_tokens[0] == 127 and result.info["n_truncated"] == 1
    assert result.info["truncated_texts"] == [0]
    shorter = score_texts(model, tokenizer, texts, ScoreOptions(max_length=40), progress=False)
    assert shorter.n_tokens[0] == 39
    reference = reference_logliks(model, tokenizer, texts, max_length=40)
    assert relative_error(shorter.loglik, reference) < 1e-4


def test_no_full_vocabulary_logits_for_all_positions(tiny, monkeypatch):
    """The LM head runs on chunks of scored positions only."""
    model, tokenizer, _ = tiny
    seen = []
    head = model.get_output_embeddings()
    hook = head.register_forward_hook(lambda mod, args, out: seen.append(out.shape[0]))
    try:
        vocab = head.weight.shape[0]
        options = ScoreOptions(head_chunk_mb=1, batch_tokens=4096)
        chunk = max(scoring.HEAD_MIN_POSITIONS, 2**20 // (4 * vocab))
        texts = sample_texts(30, seed=3, min_words=20, max_words=40)
        result = score_texts(model, tokenizer, texts, options, progress=False)
    finally:
        hook.remove()
    assert result.info["head_chunk_positions"] == chunk
    assert max(seen[1:]) <= chunk < result.n_tokens.sum()  # seen[0]: the one-off head self-check


def test_out_of_memory_halves_the_budget_and_keeps_results(tiny, monkeypatch):
    model, tokenizer, _ = tiny
    reference = score_texts(model, tokenizer, MIXED, ScoreOptions(batch_tokens=2), progress=False)
    original = scoring.RowScorer.score

    def small_batches_only(self, rows):
        if len(rows) > 2:
            raise torch.OutOfMemoryError("simulated")
        return original(self, rows)

    monkeypatch.setattr(scoring.RowScorer, "score", small_batches_only)
    result = score_texts(model, tokenizer, MIXED, ScoreOptions(batch_tokens=4000), progress=False)
    assert result.info["oom_backoffs"] >= 1 and result.info["batch_tokens_final"] < 4000
    assert relative_error(result.loglik[result.n_tokens > 0], reference.loglik[reference.n_tokens > 0]) < 1e-5


def test_nonfinite_rows_are_recomputed_in_float32(tiny, monkeypatch):
    model, tokenizer, directory = tiny
    half = load_model(ModelSpec(model_id="half", source=str(directory)), device="cpu", dtype="bfloat16").model
    original = scoring.RowScorer.score

    def overflow_in_half_precision(self, rows):
        out = original(self, rows)
        if next(self.model.parameters()).dtype == torch.bfloat16 and rows[0].text == 3:
            out[0][:] = -np.inf
        return out

    monkeypatch.setattr(scoring.RowScorer, "score", overflow_in_half_precision)
    texts = MIXED[:6]
    result = score_texts(half, tokenizer, texts, ScoreOptions(batch_tokens=1), progress=False)
    assert np.isfinite(result.loglik).all()
    assert result.info["recomputed_texts"] == [3] and result.info["recompute_dtype"] == "float32"
    assert next(half.parameters()).dtype == torch.bfloat16  # cast back after the recompute
    reference = reference_logliks(half, tokenizer, texts[3:4])  # float64 copy of the bf16 weights
    assert relative_error(result.loglik[3:4], reference) < 1e-4  # recomputed in fp32: exact again


def test_token_logprobs_sum_to_loglik(tiny):
    model, tokenizer, _ = tiny
    result = score_texts(model, tokenizer, MIXED, ScoreOptions(token_logprobs=True), progress=False)
    tl = result.token_logprobs
    assert tl.logprobs.dtype == np.float32 and tl.token_ids.dtype == np.int32
    assert np.array_equal(np.diff(tl.offsets), result.n_tokens)
    sums = np.add.reduceat(tl.logprobs.astype(np.float64), tl.offsets[:-1][result.n_tokens > 0])
    assert np.allclose(sums, result.loglik[result.n_tokens > 0], rtol=1e-6)
    first = tokenizer(MIXED[0])["input_ids"]
    assert tl.token_ids[: tl.offsets[1]].tolist() == first[1:]


def test_rolling_windows_score_every_token_once_with_bounded_inputs():
    tokens = list(range(10, 33))
    rows = rolling_windows(0, tokens, prefix=1, max_length=8)
    targets = [t for row in rows for t in row.seq[row.score_from :].tolist()]
    assert targets == tokens
    assert all(len(row.seq) - 1 <= 8 for row in rows)
    assert rows[0].seq.tolist() == [1] + tokens[:8] and rows[0].score_from == 1
    assert rows[1].seq.tolist() == tokens[7:16] and rows[1].score_from == 1  # full 8-token context


def test_harness_convention_scores_every_token_after_a_prefix(tiny):
    model, tokenizer, _ = tiny
    texts = MIXED[:8] + [" ".join(["maps language into a space"] * 40)]  # the last needs 2+ windows
    result = score_texts(model, tokenizer, texts, ScoreOptions(convention="harness"), progress=False)
    rows, _ = build_rows(tokenizer, texts, "harness", 128)
    assert sum(1 for r in rows if r.text == 8) >= 2 and not result.truncated.any()
    plain = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert result.n_tokens.tolist() == [len(p) for p in plain]
    # for a short text, the harness score is the paper score of prefix + text with every token scored
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    reference = float64_loglik(model, [prefix] + plain[0])
    assert relative_error(result.loglik[:1], np.array([reference])) < 1e-4


def float64_loglik(model, ids: list[int]) -> float:
    import copy

    double = copy.deepcopy(model).double()
    with torch.inference_mode():
        logits = double(input_ids=torch.tensor([ids])).logits[0, :-1]
    return float(torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None]).sum())


def test_checkpoint_resume_reuses_finished_batches(tiny, tmp_path):
    model, tokenizer, _ = tiny
    options = ScoreOptions(batch_tokens=60, checkpoint_seconds=0)
    full = score_texts(model, tokenizer, MIXED, options, progress=False)
    first = score_texts(model, tokenizer, MIXED, options, checkpoint_dir=tmp_path, progress=False)
    assert np.array_equal(first.loglik, full.loglik)
    again = score_texts(model, tokenizer, MIXED, options, checkpoint_dir=tmp_path, progress=False)
    assert again.info["batches_run"] == 0 and again.info["rows_resumed"] == len(MIXED) - 1  # "" has none
    assert np.array_equal(again.loglik, full.loglik)
    # a different run (here: other truncation) must not reuse these parts
    other = score_texts(
        model,
        tokenizer,
        MIXED,
        ScoreOptions(batch_tokens=60, checkpoint_seconds=0, max_length=20),
        checkpoint_dir=tmp_path,
        progress=False,
    )
    assert other.info["rows_resumed"] == 0


def test_checkpoint_of_other_weights_is_never_resumed(tiny, tmp_path):
    """Scaling one inner layer leaves the embeddings (and the parameter count) alone: the checkpoint
    must still be refused, and the new model's own scores come back."""
    import copy

    model, tokenizer, _ = tiny
    options = ScoreOptions(batch_tokens=60, checkpoint_seconds=0)
    score_texts(model, tokenizer, MIXED, options, checkpoint_dir=tmp_path, progress=False)
    changed = copy.deepcopy(model)
    inner = [p for name, p in changed.named_parameters() if ".1." in name and p.dim() == 2][0]
    with torch.no_grad():
        inner.mul_(3.0)
    again = score_texts(changed, tokenizer, MIXED, options, checkpoint_dir=tmp_path, progress=False)
    fresh = score_texts(changed, tokenizer, MIXED, options, progress=False)
    assert again.info["rows_resumed"] == 0 and np.array_equal(again.loglik, fresh.loglik)
    assert not np.allclose(fresh.loglik, score_texts(model, tokenizer, MIXED, options, progress=False).loglik)
    # an explicit weights digest (of the files loaded) also keys the checkpoint
    digests = [
        score_texts(
            model, tokenizer, MIXED[:3], options, checkpoint_dir=tmp_path / "d", progress=False, weights_digest=d
        ).info["rows_resumed"]
        for d in ("a" * 64, "b" * 64)
    ]
    assert digests == [0, 0]


def test_cli_rescore_after_the_weight_files_changed_never_resumes(tmp_path):
    """The workflow's case: the same --checkpoint-dir, a model directory whose inner layer changed."""
    from safetensors.torch import load_file, save_file

    directory = save_tiny_model(tmp_path / "m", "gpt2", max_positions=128)
    texts = write_text_set(tmp_path / "texts.jsonl", MIXED[:12])
    argv = [
        "score",
        "--model-id",
        "m",
        "--source",
        str(directory),
        "--texts",
        str(texts),
        "--device",
        "cpu",
        "--batch-tokens",
        "64",
        "--checkpoint-dir",
        str(tmp_path / "ckpt"),
        "--checkpoint-seconds",
        "0",
    ]
    assert cli_main([*argv, "--out", str(tmp_path / "a.npz")]) == 0
    weights = load_file(directory / "model.safetensors")
    name = next(k for k in weights if ".h.1." in k and k.endswith("mlp.c_fc.weight"))
    weights[name] = weights[name] * 3
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})
    assert cli_main([*argv, "--out", str(tmp_path / "b.npz")]) == 0
    before, after = read_provenance(tmp_path / "a.npz"), read_provenance(tmp_path / "b.npz")
    assert after["scoring"]["rows_resumed"] == 0 and after["scoring"]["batches_run"] > 0
    assert before["model"]["weights"]["digest"] != after["model"]["weights"]["digest"]
    assert set(after["model"]["weights"]["files"]) >= {"model.safetensors", "config.json", "tokenizer.json"}
    assert not np.array_equal(load_npz(tmp_path / "a.npz")["loglik"], load_npz(tmp_path / "b.npz")["loglik"])


KILLABLE = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from lmmap import scoring
    from lmmap.loading import load_model
    from lmmap.sheet import ModelSpec
    from tiny_models import sample_texts

    original = scoring.RowScorer.score
    def slow(self, rows):
        time.sleep({delay})
        return original(self, rows)
    scoring.RowScorer.score = slow
    loaded = load_model(ModelSpec(model_id="m", source={model!r}), device="cpu")
    texts = sample_texts(40, seed=9, max_words=25)
    result = scoring.score_texts(loaded.model, loaded.tokenizer, texts,
                                 scoring.ScoreOptions(batch_tokens=50, checkpoint_seconds=0),
                                 checkpoint_dir={ckpt!r}, progress=False)
    import numpy as np
    np.save({out!r}, result.loglik)
    print("batches_run", result.info["batches_run"], "resumed", result.info["rows_resumed"])
""")


def run_scoring_script(model_dir: Path, ckpt: Path, out: Path, delay: float) -> subprocess.Popen:
    script = KILLABLE.format(tests=str(TESTS), model=str(model_dir), ckpt=str(ckpt), out=str(out), delay=delay)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)


@pytest.mark.slow  # three Python processes: ~40 s on 2 busy cores
def test_kill_9_then_rerun_is_bit_identical_without_recomputing(tmp_path):
    model_dir = save_tiny_model(tmp_path / "model", "gpt2", max_positions=128)
    ckpt = tmp_path / "ckpt"
    fresh = run_scoring_script(model_dir, tmp_path / "fresh", tmp_path / "fresh.npy", delay=0)
    victim = run_scoring_script(model_dir, ckpt, tmp_path / "never.npy", delay=0.3)
    deadline = time.time() + 120
    while len(list(ckpt.glob("part-*.npz"))) < 3 and time.time() < deadline and victim.poll() is None:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the scoring run finished before it could be killed"
    saved = len(list(ckpt.glob("part-*.npz")))  # one batch per part (checkpoint_seconds=0)
    assert saved >= 3
    resumed = run_scoring_script(model_dir, ckpt, tmp_path / "resumed.npy", delay=0)
    stdout, _ = resumed.communicate(timeout=300)
    fresh_out, _ = fresh.communicate(timeout=300)
    assert resumed.returncode == 0 and fresh.returncode == 0
    batches_fresh = int(fresh_out.split()[1])
    batches_resumed, rows_resumed = int(stdout.split()[1]), int(stdout.split()[3])
    assert rows_resumed >= saved and batches_resumed == batches_fresh - saved
    assert np.load(tmp_path / "resumed.npy").tobytes() == np.load(tmp_path / "fresh.npy").tobytes()


def write_text_set(path: Path, texts: list[str]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for k, text in enumerate(texts):
            fh.write(json.dumps({"id": f"t{k}", "domain": "demo", "text": text}) + "\n")
    return path


def test_cli_writes_scores_contract_and_provenance(tiny, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="lmmap")
    model, tokenizer, directory = tiny
    texts_path = write_text_set(tmp_path / "texts.jsonl", MIXED[:10])
    out, per_token = tmp_path / "scores" / "m.npz", tmp_path / "scores" / "m.tokens.npz"
    status = cli_main(
        [
            "score",
            "--model-id",
            "org/tiny",
            "--source",
            str(directory),
            "--texts",
            str(texts_path),
            "--out",
            str(out),
            "--batch-tokens",
            "64",
            "--token-logprobs",
            str(per_token),
            "--checkpoint-dir",
            str(tmp_path / "ckpt"),
        ]
    )
    assert status == 0
    data = load_npz(out, required=("loglik", "n_tokens", "truncated", "text_ids", "text_set_sha256", "model_id"))
    assert data["loglik"].dtype == np.float64 and data["n_tokens"].dtype == np.int64
    assert data["truncated"].dtype == bool and data["text_ids"].tolist() == [f"t{k}" for k in range(10)]
    assert str(data["model_id"]) == "org/tiny"
    reference = reference_logliks(model, tokenizer, MIXED[:10])
    assert relative_error(data["loglik"], reference) < 1e-4
    prov = read_provenance(out)
    assert prov["text_set_sha256"] == str(data["text_set_sha256"]) == prov["inputs"]["texts"]["sha256"]
    assert prov["model"]["n_params"] > 0 and prov["model"]["dtype"] == "float32"
    for field in (
        "tokens_per_s",
        "peak_memory_bytes",
        "attn_implementation",
        "recomputed_texts",
        "truncated_texts",
        "rows_per_batch",
    ):
        assert field in prov["scoring"]
    tokens = load_npz(per_token, required=("offsets", "logprobs", "token_ids"))
    assert tokens["offsets"][-1] == data["n_tokens"].sum()
    assert any("tokens/s" in r.getMessage() and "ETA" in r.getMessage() for r in caplog.records)


def test_cli_help_documents_the_options(capsys):
    with pytest.raises(SystemExit):
        cli_main(["score", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--model-id",
        "--source",
        "--revision",
        "--gguf-file",
        "--dtype",
        "--trust-remote-code",
        "--texts",
        "--out",
        "--batch-tokens",
        "--device",
        "--checkpoint-dir",
        "--token-logprobs",
    ):
        assert option in text


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_bf16_close_to_float64_reference(tiny):
    _, tokenizer, directory = tiny
    loaded = load_model(ModelSpec(model_id="gpu", source=str(directory)), device="cuda")
    assert loaded.info["dtype"] == "bfloat16"
    result = score_texts(loaded.model, tokenizer, MIXED, progress=False)
    reference = reference_logliks(tiny[0], tokenizer, MIXED)
    nonempty = result.n_tokens > 0
    assert relative_error(result.loglik[nonempty], reference[nonempty]) < 2e-2
    assert math.isfinite(result.info["tokens_per_s"]) and result.info["peak_memory_bytes"] > 0
