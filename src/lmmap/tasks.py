"""Demo benchmarks: multiple-choice tasks built from held-out demo-corpus chunks, scored the way the
lm-evaluation-harness scores multiple choice.

An item is a context and a few candidate continuations, one of them the text that really follows.
Kinds of task:
- `continuation`: the true continuation against spans of about the same length from other chunks of
  the task's domains (hard for a small model: it must use the context);
- `word-order`: the true continuation against copies with their words shuffled;
- `spelling`: the true continuation against copies with letters swapped inside words.
A model picks the continuation with the highest log-likelihood given the context (`acc`), or the
highest per character (`acc_norm`, the harness's length normalisation).

The task builders need no torch; `evaluate_tasks` imports it when it runs.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lmmap.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("continuation", "word-order", "spelling")
METRICS = ("acc", "acc_norm")
CONFIG_WHERE = "config: tasks"
_WORDS = re.compile(r"\S+|\s+")


@dataclasses.dataclass(frozen=True)
class TaskParams:
    n_items: int
    n_choices: int
    context_chars: tuple[int, int]  # where the context may end
    continuation_chars: int  # a continuation is this long, extended to the end of its word
    seed: int


# --------------------------------------------------------------------------------------------------
# Building tasks (pure Python)


def heldout_chunks(
    documents: list[dict], domains: list[str] | None, max_bytes: int = 1024, min_bytes: int = 256
) -> list[dict]:
    """The held-out documents' chunks (`id`, `domain`, `text`) of the given domains (None: all)."""
    from lmmap.texts import chunk_document

    chunks = []
    for doc in documents:
        if doc.get("split") != "heldout" or (domains is not None and doc["domain"] not in domains):
            continue
        for index, piece in enumerate(chunk_document(doc["text"], max_bytes, min_bytes)):
            chunks.append({"id": f"{doc['doc_id']}#{index}", "domain": doc["domain"], "text": piece})
    return chunks


def _cut_after_word(text: str, start: int, length: int) -> int:
    """The end of the word that reaches `start + length` characters (or the end of the text)."""
    match = re.compile(r"\s").search(text, start + length)
    return match.start() if match else len(text)


_WORD_END = re.compile(r"(?<=\S)\s")


def _split_point(text: str, lo: int, hi: int, rng: random.Random) -> int | None:
    """A position in [lo, hi) where a word ends (contexts end there: the harness's token split of
    context + continuation is only sound at word boundaries)."""
    spots = [m.start() for m in _WORD_END.finditer(text[:hi]) if m.start() >= lo]
    return rng.choice(spots) if spots else None


def _span(text: str, start: int, length: int) -> str:
    return text[start : _cut_after_word(text, start + 1, length)]


def _shuffled_words(span: str, rng: random.Random) -> str:
    """The span with its words in another order (whitespace kept in place)."""
    parts = _WORDS.findall(span)
    words = [p for p in parts if not p.isspace()]
    order = list(range(len(words)))
    for _ in range(10):
        rng.shuffle(order)
        if order != sorted(order):
            break
    it = iter(words[i] for i in order)
    return "".join(p if p.isspace() else next(it) for p in parts)


def _misspelt(span: str, rng: random.Random, n_swaps: int = 1) -> str:
    """The span with `n_swaps` pairs of adjacent letters swapped inside words."""
    chars = list(span)
    spots = [
        i for i in range(len(chars) - 1) if chars[i].isalpha() and chars[i + 1].isalpha() and chars[i] != chars[i + 1]
    ]
    for i in rng.sample(spots, min(n_swaps, len(spots))):
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def _distractors(
    kind: str, item_chunk: dict, span: str, pool: list[dict], params: TaskParams, rng: random.Random
) -> list[str] | None:
    n = params.n_choices - 1
    if kind == "word-order":
        options = {_shuffled_words(span, rng) for _ in range(4 * n)} - {span}
    elif kind == "spelling":
        options = {_misspelt(span, rng) for _ in range(4 * n)} - {span}
    else:
        others = [c for c in pool if c["id"] != item_chunk["id"]]
        options = set()
        for other in rng.sample(others, min(len(others), 4 * n)):
            start = _split_point(other["text"], 1, len(other["text"]) - params.continuation_chars, rng)
            if start is not None:
                options.add(_span(other["text"], start, params.continuation_chars))
        options -= {span}
    options = sorted(options)
    return rng.sample(options, n) if len(options) >= n else None


def build_items(kind: str, chunks: list[dict], params: TaskParams, task_name: str) -> list[dict]:
    """`params.n_items` items of one task (seeded): {id, domain, context, choices, label}."""
    if kind not in KINDS:
        raise InputError(CONFIG_WHERE, f"'{kind}' is not one of {', '.join(KINDS)}", record=task_name, field="kind")
    rng = random.Random(f"{params.seed}:{task_name}")
    items = []
    for chunk in rng.sample(chunks, len(chunks)):
        text = chunk["text"]
        cut = _split_point(
            text, params.context_chars[0], min(params.context_chars[1], len(text) - params.continuation_chars), rng
        )
        if cut is None:
            continue
        span = _span(text, cut, params.continuation_chars)
        wrong = _distractors(kind, chunk, span, chunks, params, rng)
        if not wrong or len(span.split()) < 3:
            continue
        choices = wrong + [span]
        rng.shuffle(choices)
        items.append(
            {
                "id": chunk["id"],
                "domain": chunk["domain"],
                "context": text[:cut],
                "choices": choices,
                "label": choices.index(span),
            }
        )
        if len(items) == params.n_items:
            return items
    raise InputError(
        CONFIG_WHERE,
        f"the held-out chunks give only {len(items)} items of the {params.n_items} asked for",
        record=task_name,
        field="n_items",
    )


def write_items(path: str | Path, items: list[dict]) -> None:
    from lmmap.storage import write_text

    write_text(path, "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))


def read_items(path: str | Path) -> list[dict]:
    from lmmap.texts import iter_jsonl

    items = []
    for lineno, obj in iter_jsonl(path):
        for field, kind in (("context", str), ("choices", list), ("label", int)):
            if not isinstance(obj.get(field), kind):
                raise InputError(path, f"missing or not a {kind.__name__}", record=f"line {lineno}", field=field)
        if not 0 <= obj["label"] < len(obj["choices"]):
            raise InputError(path, "label is not the index of a choice", record=f"line {lineno}", field="label")
        items.append(obj)
    if not items:
        raise InputError(path, "task has no items")
    return items


# --------------------------------------------------------------------------------------------------
# Scoring (imports torch)


def encode_requests(tokenizer, requests: list[tuple[str, str]]) -> list[tuple[list[int], int]]:
    """Token ids of each context + continuation and how many trailing ones are the continuation's:
    the harness's split (encode the whole, then the context; the rest is the continuation), with the
    tokenizer's own special tokens (a BOS where it adds one). Each distinct context is encoded once."""
    contexts = sorted({context for context, _ in requests})
    context_lengths = dict(zip(contexts, (len(ids) for ids in tokenizer(contexts).input_ids)))
    wholes = tokenizer([context + continuation for context, continuation in requests]).input_ids
    return [(whole, max(1, len(whole) - context_lengths[context])) for whole, (context, _) in zip(wholes, requests)]


def continuation_logliks(
    model, tokenizer, requests: list[tuple[str, str]], max_length: int, batch_tokens: int
) -> np.ndarray:
    """log p(continuation | context) for every (context, continuation), by the scoring engine (the
    same exact batched forward pass as the reference texts); contexts are cut from the left to fit
    `max_length`."""
    from lmmap.loading import pad_token_id
    from lmmap.scoring import Row, score_rows

    rows = []
    for i, (ids, n_cont) in enumerate(encode_requests(tokenizer, requests)):
        if n_cont >= max_length:
            raise InputError(
                CONFIG_WHERE,
                f"a continuation of {n_cont} tokens does not fit the model's {max_length}",
                field="continuation_chars",
            )
        ids = np.asarray(ids[-max_length:], dtype=np.int64)
        rows.append(Row(i, ids, max(1, len(ids) - n_cont)))
    logprobs = score_rows(model, rows, pad_token_id(tokenizer), batch_tokens)
    return np.array([lp.astype(np.float64).sum() for lp in logprobs])


def score_items(logliks: list[np.ndarray], items: list[dict]) -> dict:
    """acc and acc_norm (log-likelihood per character of the choice) of one task, 0-1."""
    correct = {"acc": [], "acc_norm": []}
    for ll, item in zip(logliks, items):
        lengths = np.array([len(choice) for choice in item["choices"]], dtype=float)
        correct["acc"].append(int(np.argmax(ll)) == item["label"])
        correct["acc_norm"].append(int(np.argmax(ll / lengths)) == item["label"])
    return {name: float(np.mean(values)) for name, values in correct.items()} | {"n_items": len(items)}


def evaluate_tasks(loaded, tasks: dict[str, list[dict]], batch_tokens: int) -> dict[str, dict]:
    """{task: {acc, acc_norm, n_items}} for one loaded model (a `lmmap.loading.LoadedModel`); the
    requests of all tasks are scored together, so batches are full and the scorer is set up once."""
    items = [item for task_items in tasks.values() for item in task_items]
    requests = [(item["context"], choice) for item in items for choice in item["choices"]]
    flat = continuation_logliks(loaded.model, loaded.tokenizer, requests, loaded.info["max_length"], batch_tokens)
    bounds = np.cumsum([0] + [len(item["choices"]) for item in items])
    per_item = iter(flat[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
    return {name: score_items([next(per_item) for _ in task_items], task_items) for name, task_items in tasks.items()}


def benchmark_table(rows: list[dict], metrics: dict[str, str]) -> pd.DataFrame:
    """The leaderboard: one row per model, each task's chosen metric on 0-100, and their mean.
    `rows` are long-format records {model_id, task, acc, acc_norm}."""
    import pandas as pd

    long = pd.DataFrame(rows)
    long["score"] = [100.0 * row[metrics[row["task"]]] for _, row in long.iterrows()]
    wide = long.pivot(index="model_id", columns="task", values="score")[list(metrics)]
    wide["mean"] = wide.mean(axis=1)
    return wide.reset_index()
