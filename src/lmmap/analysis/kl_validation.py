"""Checking the coordinate KL estimate against KL measured directly (paper: r = 0.893 token level,
r = 0.904 text level), for pairs of models that share a tokenizer.

- token level: exact KL(p || q) between the full next-token distributions at every scored position
  of a reference text (positions 2..T, the scoring convention), summed over the text, averaged over
  texts;
- text level: Monte Carlo KL(p || q) = E_{x ~ p}[log p(x) - log q(x)] over texts sampled from p
  (unmodified ancestral sampling), each starting from the first token of a reference text so both
  measures condition on the same kind of start;
- both against ||q_i - q_j||^2 / (2N) from the coordinates; all three also in bits per byte.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math

import numpy as np
import pandas as pd
import torch
from scipy.stats import pearsonr, spearmanr
from transformers import GenerationConfig

from lmmap.coords import nats_to_bits_per_byte


def tokenizer_fingerprint(tokenizer) -> str:
    """Models share a tokenizer when vocabularies and special tokens agree."""
    vocab = sorted(tokenizer.get_vocab().items())
    special = [tokenizer.bos_token_id, tokenizer.eos_token_id]
    return hashlib.sha256(json.dumps([vocab, special]).encode()).hexdigest()


def encode(tokenizer, text: str, max_length: int | None) -> torch.Tensor:
    """Token ids with the tokenizer's default special tokens, truncated like the scorer does."""
    ids = tokenizer(text).input_ids
    return torch.tensor(ids[:max_length] if max_length else ids, dtype=torch.long)


@torch.no_grad()
def next_token_logprobs(model, ids: torch.Tensor) -> torch.Tensor:
    """log p(. | y_<t) for t = 2..T as float64 [T-1, V] (the distributions of scored positions)."""
    device = next(model.parameters()).device
    logits = model(ids[None].to(device)).logits[0, :-1]
    return torch.log_softmax(logits.double(), dim=-1).cpu()


@torch.no_grad()
def sequence_logprobs(model, sequences: list[torch.Tensor]) -> np.ndarray:
    """log p(y_2..y_T | y_1) of each sequence; sequences of equal length share one forward pass."""
    device = next(model.parameters()).device
    result = np.empty(len(sequences))
    by_length: dict[int, list[int]] = {}
    for i, seq in enumerate(sequences):
        by_length.setdefault(len(seq), []).append(i)
    for positions in by_length.values():
        batch = torch.stack([sequences[i] for i in positions])
        logprobs = torch.log_softmax(model(batch.to(device)).logits[:, :-1].double(), dim=-1).cpu()
        result[positions] = logprobs.gather(2, batch[:, 1:, None]).sum(dim=(1, 2)).numpy()
    return result


def exact_token_kl(logp: torch.Tensor, logq: torch.Tensor) -> float:
    """Σ over positions of KL(p_t || q_t) for next-token log-distributions [T-1, V]."""
    if logp.shape != logq.shape:
        raise ValueError(
            f"distributions differ in shape {tuple(logp.shape)} vs {tuple(logq.shape)}: "
            "the models do not share a tokenizer"
        )
    return float((logp.exp() * (logp - logq)).sum())


def pairwise_token_kl(models: dict[str, object], token_ids: list[torch.Tensor]) -> dict[tuple, float]:
    """Mean over texts of the summed token-level KL, for every ordered pair of `models`."""
    totals = dict.fromkeys(itertools.permutations(models, 2), 0.0)
    for ids in token_ids:
        dists = {name: next_token_logprobs(model, ids) for name, model in models.items()}
        for p, q in totals:
            totals[(p, q)] += exact_token_kl(dists[p], dists[q])
    return {pair: total / len(token_ids) for pair, total in totals.items()}


@torch.no_grad()
def sample_texts(
    model, prompts: list[torch.Tensor], new_tokens: int, eos_token_id: int | None, seed: int
) -> list[torch.Tensor]:
    """One sample per prompt from the model's own distribution (no top-k/top-p/temperature), cut
    after the first end-of-sequence token. Identical prompts are sampled in one batch."""
    torch.manual_seed(seed)
    settings = dict(
        do_sample=True,
        top_k=0,
        top_p=1.0,
        temperature=1.0,
        max_new_tokens=new_tokens,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id if eos_token_id is not None else 0,
    )
    device = next(model.parameters()).device
    by_prompt: dict[tuple, list[int]] = {}
    for i, prompt in enumerate(prompts):
        by_prompt.setdefault(tuple(prompt.tolist()), []).append(i)
    samples: list[torch.Tensor] = [None] * len(prompts)
    for prompt, positions in by_prompt.items():
        prompt = torch.tensor(prompt, dtype=torch.long)
        config = GenerationConfig(**settings, num_return_sequences=len(positions))  # all in the config
        out = model.generate(prompt[None].to(device), generation_config=config).cpu()
        for position, row in zip(positions, out):
            new = row[len(prompt) :]
            if eos_token_id is not None and (new == eos_token_id).any():
                new = new[: int((new == eos_token_id).nonzero()[0]) + 1]
            samples[position] = torch.cat([prompt, new])
    return samples


def pairwise_text_kl(
    models: dict[str, object], prompts: list[torch.Tensor], new_tokens: int, eos_token_id: int | None, seed: int
) -> tuple[dict[tuple, tuple[float, float]], dict]:
    """Monte Carlo KL(p || q) with its standard error for every ordered pair, and the samples."""
    results, samples_by_model = {}, {}
    for p, model_p in models.items():
        samples = sample_texts(model_p, prompts, new_tokens, eos_token_id, seed)
        samples_by_model[p] = samples
        logp = sequence_logprobs(model_p, samples)
        for q, model_q in models.items():
            if q == p:
                continue
            logq = sequence_logprobs(model_q, samples)
            diff = logp - logq
            results[(p, q)] = (
                float(diff.mean()),
                float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else float("nan"),
            )
    return results, samples_by_model


def validation_table(
    token_kl: dict, text_kl: dict, estimate: pd.DataFrame, reference_bytes: float, sample_bytes: dict[str, float]
) -> pd.DataFrame:
    """One row per ordered pair: measured KLs, the coordinate estimate, and all of them in bits/byte."""
    rows = []
    for (p, q), kl_token in token_kl.items():
        kl_text, kl_text_se = text_kl.get((p, q), (float("nan"), float("nan")))
        kl_est = float(estimate.loc[p, q])
        rows.append(
            {
                "model_p": p,
                "model_q": q,
                "kl_token": kl_token,
                "kl_text": kl_text,
                "kl_text_se": kl_text_se,
                "kl_estimate": kl_est,
                "kl_token_bpb": float(nats_to_bits_per_byte(kl_token, reference_bytes)),
                "kl_text_bpb": float(nats_to_bits_per_byte(kl_text, sample_bytes.get(p, np.nan))),
                "kl_estimate_bpb": float(nats_to_bits_per_byte(kl_est, reference_bytes)),
            }
        )
    return pd.DataFrame(rows)


def correlation_summary(table: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for measure in ("kl_token", "kl_text"):
        part = table.dropna(subset=[measure])
        enough = len(part) > 2
        rows.append(
            {
                "measure": measure,
                "pearson_r": float(pearsonr(part["kl_estimate"], part[measure])[0]) if enough else np.nan,
                "spearman_r": float(spearmanr(part["kl_estimate"], part[measure])[0]) if enough else np.nan,
                "n_pairs": len(part),
                "mean_measured_bpb": float(part[f"{measure}_bpb"].mean()),
                "mean_estimate_bpb": float(part["kl_estimate_bpb"].mean()),
            }
        )
    return pd.DataFrame(rows)


def tokenizer_groups(loaded: dict, max_models: int) -> list[list[str]]:
    """Model ids grouped by shared tokenizer: groups of at least two, thinned evenly to `max_models`."""
    groups: dict[str, list[str]] = {}
    for model_id, item in loaded.items():
        groups.setdefault(tokenizer_fingerprint(item.tokenizer), []).append(model_id)
    return [evenly_spaced(ids, max_models) for ids in groups.values() if len(ids) >= 2]


def spread_over_distances(estimate: pd.DataFrame, candidates: list[str], count: int) -> list[str]:
    """`count` models whose pairs range from near relatives to far-apart families, as a correlation
    needs (models spread over the id list are mostly unrelated, so every pair is far): the medoid of
    `candidates` (least mean estimated KL to the others) and models at evenly spaced ranks of
    estimated KL from it, its nearest and farthest included."""
    distances = estimate.loc[candidates, candidates]
    anchor = distances.mean(axis=1).idxmin()
    by_distance = distances.loc[anchor].drop(anchor).sort_values(kind="stable").index.tolist()
    return [anchor, *evenly_spaced(by_distance, count - 1)]


def evenly_spaced(items: list, count: int) -> list:
    """At most `count` items spread evenly over `items` (first and last included)."""
    positions = np.linspace(0, len(items) - 1, min(count, len(items))).round().astype(int)
    return [items[i] for i in np.unique(positions)]


def run_validation(
    coordinates_path,
    texts_path,
    models_path,
    model_ids,
    max_models,
    n_texts,
    n_samples,
    sample_tokens,
    seed,
    device,
    dtype,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Load the models, measure both KLs for every ordered pair sharing a tokenizer, compare."""
    from lmmap.coords import kl_estimate
    from lmmap.errors import InputError
    from lmmap.loading import load_model, model_max_length
    from lmmap.sheet import ModelSpec
    from lmmap.storage import load_npz, read_json
    from lmmap.texts import load_text_set

    coords = load_npz(coordinates_path, required=("Q", "model_ids"))
    ids = coords["model_ids"].astype(str).tolist()
    estimate = pd.DataFrame(kl_estimate(coords["Q"]), index=ids, columns=ids)
    specs = {s["model_id"]: ModelSpec.from_dict(s) for s in read_json(models_path)["models"]}
    chosen = model_ids or spread_over_distances(estimate, [m for m in ids if m in specs], max_models)
    for model_id in chosen:
        if model_id not in specs or model_id not in ids:
            raise InputError(
                models_path,
                "model is not both in the model list and the coordinates",
                record=model_id,
                field="model_id",
            )
    text_set = load_text_set(texts_path)
    picked = np.random.default_rng(seed).choice(len(text_set), size=min(n_texts, len(text_set)), replace=False)
    texts = [text_set.texts[i] for i in sorted(picked)]
    reference_bytes = float(np.mean([len(t.encode("utf-8")) for t in text_set.texts]))
    loaded = {m: load_model(specs[m], device=device, dtype=dtype) for m in chosen}
    token_kl, text_kl, sample_bytes = {}, {}, {}
    for group in tokenizer_groups(loaded, max_models):
        tokenizer = loaded[group[0]].tokenizer
        max_length = min(model_max_length(loaded[m].model, tokenizer) or 10**9 for m in group)
        token_ids = [encode(tokenizer, t, max_length) for t in texts]
        token_ids = [ids_ for ids_ in token_ids if len(ids_) >= 2]
        models = {m: loaded[m].model for m in group}
        token_kl.update(pairwise_token_kl(models, token_ids))
        length = sample_tokens or int(np.mean([len(x) for x in token_ids])) - 1
        prompts = [token_ids[i % len(token_ids)][:1] for i in range(n_samples)]
        results, samples = pairwise_text_kl(models, prompts, min(length, max_length - 1), tokenizer.eos_token_id, seed)
        text_kl.update(results)
        sample_bytes.update(
            {m: float(np.mean([len(tokenizer.decode(s[1:]).encode("utf-8")) for s in ss])) for m, ss in samples.items()}
        )
    if not token_kl:
        raise InputError(models_path, "no two of the chosen models share a tokenizer", field="model_id")
    table = validation_table(token_kl, text_kl, estimate, reference_bytes, sample_bytes)
    info = {m: item.info for m, item in loaded.items()}
    return table, correlation_summary(table), info
