"""Tiny random causal LMs and locally trained tokenizers for tests (no downloads, no training).

Two tokenizer styles cover the two conventions that matter for scoring:
- "gpt2": byte-level BPE that adds no special tokens (the first text token is the first token);
- "llama": BPE whose post-processor prepends a BOS token.
Models are random-init GPT-2 or Llama configs with a large init scale, so that next-token
distributions are far from uniform and an off-by-one in target alignment changes the scores.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

WORDS = [
    "the",
    "model",
    "maps",
    "language",
    "into",
    "a",
    "space",
    "where",
    "every",
    "text",
    "is",
    "a",
    "point",
    "and",
    "distance",
    "means",
    "divergence",
    "between",
    "two",
    "distributions",
    "over",
    "tokens",
    "scored",
    "on",
    "shared",
    "reference",
    "texts",
    "while",
    "numbers",
    "like",
    "1024",
    "and",
    "3.14",
    "or",
    "symbols",
    "#",
    "{",
    "}",
    "(",
    ")",
    "appear",
    "in",
    "code",
    "def",
    "return",
    "import",
    "class",
]


def sample_texts(n: int, seed: int = 0, min_words: int = 1, max_words: int = 60) -> list[str]:
    """`n` pseudo-random texts of mixed lengths (including very short ones)."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        k = rng.randint(min_words, max_words)
        texts.append(" ".join(rng.choice(WORDS) for _ in range(k)))
    return texts


def train_tokenizer(style: str, vocab_size: int = 400, corpus: list[str] | None = None) -> PreTrainedTokenizerFast:
    """A BPE tokenizer trained on `corpus` (default: `sample_texts`); style "gpt2" (no BOS) or "llama"
    (adds BOS)."""
    if style == "gpt2":
        specials, bos, eos = ["<|endoftext|>"], "<|endoftext|>", "<|endoftext|>"
    elif style == "llama":
        specials, bos, eos = ["<unk>", "<s>", "</s>"], "<s>", "</s>"
    else:
        raise ValueError(f"unknown tokenizer style {style!r}")
    tok = Tokenizer(models.BPE(unk_token="<unk>" if style == "llama" else None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus or sample_texts(300, seed=123), trainer=trainer)
    if style == "llama":
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, unk_token="<unk>" if style == "llama" else None
    )


def build_model(
    style: str,
    vocab_size: int,
    seed: int = 0,
    max_positions: int = 64,
    hidden: int = 32,
    layers: int = 2,
    init_scale: float = 0.3,
    heads: int = 4,
) -> torch.nn.Module:
    """A random-init causal LM: GPT-2 architecture for style "gpt2", Llama for "llama"."""
    torch.manual_seed(seed)
    if style == "gpt2":
        config = GPT2Config(
            vocab_size=vocab_size,
            n_positions=max_positions,
            n_embd=hidden,
            n_layer=layers,
            n_head=heads,
            initializer_range=init_scale,
            bos_token_id=0,
            eos_token_id=0,
        )
        model = GPT2LMHeadModel(config)
    else:
        config = LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=max(1, heads // 2),
            max_position_embeddings=max_positions,
            initializer_range=init_scale,
            tie_word_embeddings=False,
            bos_token_id=1,
            eos_token_id=2,
        )
        model = LlamaForCausalLM(config)
    return model.eval()


def save_tiny_model(
    directory: str | Path, style: str = "gpt2", seed: int = 0, max_positions: int = 64, **model_kwargs
) -> Path:
    """Build a tokenizer + model of `style` and `save_pretrained` both into `directory`."""
    directory = Path(directory)
    tokenizer = train_tokenizer(style)
    model = build_model(style, vocab_size=len(tokenizer), seed=seed, max_positions=max_positions, **model_kwargs)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
