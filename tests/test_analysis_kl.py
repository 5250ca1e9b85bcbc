"""KL validation on tiny models: exact token-level KL, Monte Carlo text-level KL against the KL of an
enumerable sequence distribution, and the command end to end through the model loader."""

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from lmmap.analysis import kl_validation as klv
from lmmap.cli import main
from lmmap.storage import save_npz

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import build_model, sample_texts, save_tiny_model  # noqa: E402


def tiny_gpt2(vocab: int, seed: int) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=16,
        n_embd=16,
        n_layer=1,
        n_head=2,
        initializer_range=0.5,
        bos_token_id=None,
        eos_token_id=None,
    )
    return GPT2LMHeadModel(config).eval()


def test_token_level_kl_matches_torch_distributions_and_is_zero_for_itself():
    p, q = build_model("gpt2", vocab_size=50, seed=0), build_model("gpt2", vocab_size=50, seed=1)
    texts = [torch.randint(0, 50, (n,)) for n in (2, 7, 20)]
    kl = klv.pairwise_token_kl({"p": p, "q": q, "p_again": p}, texts)
    expected = 0.0
    with torch.no_grad():
        for ids in texts:
            dist_p = torch.distributions.Categorical(logits=p(ids[None]).logits[0, :-1].double())
            dist_q = torch.distributions.Categorical(logits=q(ids[None]).logits[0, :-1].double())
            expected += torch.distributions.kl_divergence(dist_p, dist_q).sum().item()
    assert kl[("p", "q")] == pytest.approx(expected / len(texts), rel=1e-9)
    assert kl[("p", "p_again")] == pytest.approx(0.0, abs=1e-12)
    assert kl[("p", "q")] > 0.05 and kl[("p", "q")] != pytest.approx(kl[("q", "p")])


def exact_sequence_kl(p, q, prompt, length, vocab):
    """KL(p || q) over all continuations of `prompt` of `length` tokens, by enumeration."""
    ids = torch.tensor([[*prompt, *c] for c in itertools.product(range(vocab), repeat=length)])
    with torch.no_grad():
        logp, logq = (
            torch.log_softmax(m(ids).logits[:, :-1].double(), -1).gather(2, ids[:, 1:, None]).sum((1, 2))
            for m in (p, q)
        )
    assert logp.exp().sum().item() == pytest.approx(1.0)  # the enumeration covers every sequence
    return float((logp.exp() * (logp - logq)).sum())


def test_monte_carlo_text_kl_agrees_with_enumerated_kl():
    vocab, length = 5, 3
    p, q = tiny_gpt2(vocab, 0), tiny_gpt2(vocab, 1)
    exact = exact_sequence_kl(p, q, [2], length, vocab)
    prompts = [torch.tensor([2])] * 800
    results, samples = klv.pairwise_text_kl({"p": p, "q": q}, prompts, length, None, seed=0)
    estimate, se = results[("p", "q")]
    assert len(samples["p"]) == 800 and all(len(s) == 1 + length for s in samples["p"])
    assert exact > 0.1 and abs(estimate - exact) < 4 * se, (estimate, se, exact)


def test_samples_stop_after_end_of_sequence():
    model = tiny_gpt2(4, 3)
    samples = klv.sample_texts(model, [torch.tensor([1])] * 200, new_tokens=6, eos_token_id=0, seed=0)
    for sample in samples:
        body = sample[1:].tolist()
        assert 0 not in body[:-1] and (len(body) == 6 or body[-1] == 0)
    assert any(len(s) < 7 for s in samples)


def test_bits_per_byte_conversion():
    assert klv.nats_to_bits_per_byte(np.log(2) * 100, 100.0) == pytest.approx(1.0)


def test_default_models_span_near_and_far_pairs():
    # points on a line: the medoid is in the middle; its nearest and farthest neighbours are chosen
    positions = {"a": 0.0, "b": 1.0, "c": 1.1, "d": 2.0, "e": 5.0, "f": 9.0}
    ids = list(positions)
    distance = pd.DataFrame([[(positions[i] - positions[j]) ** 2 for j in ids] for i in ids], index=ids, columns=ids)
    chosen = klv.spread_over_distances(distance, ids, 4)
    assert chosen[0] == "d" and chosen[1] == "c" and chosen[-1] == "f" and len(set(chosen)) == 4
    assert klv.spread_over_distances(distance, ids, 10) == ["d", "c", "b", "a", "e", "f"]


def test_kl_validation_command_pairs_only_models_sharing_a_tokenizer(tmp_path):
    specs = []
    for name, style, seed in (("a", "gpt2", 0), ("b", "gpt2", 1), ("c", "gpt2", 2), ("l", "llama", 0)):
        save_tiny_model(tmp_path / name, style=style, seed=seed)
        specs.append({"model_id": name, "source": str(tmp_path / name), "slug": name})
    (tmp_path / "models.json").write_text(json.dumps({"models": specs}))
    texts = sample_texts(12, seed=5, min_words=8, max_words=30)
    with open(tmp_path / "texts.jsonl", "w") as fh:
        for i, text in enumerate(texts):
            fh.write(json.dumps({"id": f"t{i}", "domain": "d", "text": text}) + "\n")
    rng = np.random.default_rng(0)
    save_npz(
        tmp_path / "coords.npz",
        Q=rng.normal(size=(4, 12)),
        model_ids=np.array(["a", "b", "c", "l"]),
        text_ids=np.array([f"t{i}" for i in range(12)]),
        domains=np.array(["d"] * 12),
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "analyze",
                "validate-kl",
                "--coordinates",
                str(tmp_path / "coords.npz"),
                "--texts",
                str(tmp_path / "texts.jsonl"),
                "--models",
                str(tmp_path / "models.json"),
                "--n-texts",
                "6",
                "--n-samples",
                "6",
                "--sample-tokens",
                "10",
                "--max-models",
                "6",
                "--seed",
                "42",
                "--dtype",
                "float32",
                "--device",
                "cpu",
                "--out-stem",
                str(out / "pairs"),
                "--summary-stem",
                str(out / "summary"),
                "--figure-stem",
                str(out / "scatter"),
            ]
        )
        == 0
    )
    pairs = pd.read_csv(out / "pairs.csv")
    assert sorted(zip(pairs["model_p"], pairs["model_q"])) == [(p, q) for p in "abc" for q in "abc" if p != q]
    assert (pairs["kl_token"] > 0).all() and (pairs["kl_text"].abs() < 1e4).all()
    assert pairs["kl_token_bpb"].iloc[0] == pytest.approx(
        pairs["kl_token"].iloc[0] / (np.mean([len(t.encode()) for t in texts]) * np.log(2))
    )
    summary = pd.read_csv(out / "summary.csv")
    assert summary["measure"].tolist() == ["kl_token", "kl_text"] and (summary["n_pairs"] == 6).all()
    assert (out / "scatter.png").exists()
