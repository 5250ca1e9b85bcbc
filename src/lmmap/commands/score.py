"""`lmmap score`: score one model on a text set (the Scores contract + provenance sidecar)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time

from lmmap.commands import Step, positive_int
from lmmap.errors import InputError
from lmmap.loading import load_model
from lmmap.scoring import ScoreOptions, score_texts
from lmmap.sheet import DTYPES, ModelSpec
from lmmap.texts import TextSet, load_text_set

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score one model on a text set",
        description="Compute the log-likelihood of every text of a text set under one causal LM (the "
        "paper's convention by default: tokenizer's own special tokens, first token unscored, "
        "truncated at the model's maximum length). Writes loglik, n_tokens, truncated, "
        "text_ids, text_set_sha256 and model_id to OUT (npz) with a provenance sidecar.",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--source",
        "--model",
        dest="source",
        required=True,
        help="a local model directory, a Hugging Face id (offline cache) or a .gguf file",
    )
    model.add_argument("--model-id", help="the model's id in outputs (default: SOURCE)")
    model.add_argument("--revision", help="Hugging Face revision (branch, tag or commit) to load")
    model.add_argument("--gguf-file", help="GGUF file inside SOURCE (a directory or hub id)")
    model.add_argument(
        "--dtype",
        default="auto",
        choices=DTYPES,
        help="weights dtype; auto = float32 on CPU, float16 on GPU (as the paper)",
    )
    model.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the model's own Python code (only for sources you trust)",
    )
    model.add_argument(
        "--allow-network", action="store_true", help="let Hugging Face downloads happen (default: offline, cache only)"
    )
    parser.add_argument("--out", required=True, help="output npz")
    parser.add_argument("--checkpoint-dir", help="directory for resumable checkpoints (kept after success)")
    parser.add_argument(
        "--token-logprobs",
        metavar="OUT2",
        help="also write per-token log-probs (offsets, logprobs, token_ids) to this npz",
    )
    add_scoring_arguments(parser)
    parser.set_defaults(func=run_score)

    many = subparsers.add_parser(
        "score-many",
        help="score several models one after another in one process",
        description="Like `score` for each model of --jobs, in one process: for many small models "
        "(the demo zoo) starting Python, torch and transformers once per model costs more "
        "than scoring. Each model gets its own npz and provenance sidecar.",
    )
    many.add_argument(
        "--jobs",
        required=True,
        help='JSON list of {"model_id", "source", "out"} (optional: revision, gguf_file, dtype, trust_remote_code)',
    )
    many.add_argument(
        "--allow-network", action="store_true", help="let Hugging Face downloads happen (default: offline, cache only)"
    )
    add_scoring_arguments(many)
    many.set_defaults(func=run_score_many, checkpoint_dir=None, token_logprobs=None)


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    run = parser.add_argument_group("scoring")
    run.add_argument("--texts", required=True, help="text set JSONL (id, domain, text per line)")
    run.add_argument(
        "--device", help="cpu, cuda, cuda:N, or auto (spread over all GPUs); default: the first GPU if any, else cpu"
    )
    run.add_argument(
        "--batch-tokens",
        type=positive_int,
        help="padded tokens per forward pass (default: 2048 on CPU, 32768 on GPU); "
        "halved automatically on out-of-memory",
    )
    run.add_argument(
        "--max-length",
        type=positive_int,
        help="truncate texts at this many tokens (default: the model's maximum length)",
    )
    run.add_argument(
        "--convention",
        choices=("paper", "harness"),
        default="paper",
        help="paper: first token unscored, truncation; harness: lm-evaluation-harness "
        "rolling windows, every token scored after a prefix token",
    )
    run.add_argument(
        "--checkpoint-seconds", type=float, default=60.0, help="how often finished batches are checkpointed"
    )


def run_score(args: argparse.Namespace) -> int:
    spec = ModelSpec(
        model_id=args.model_id or args.source,
        source=args.source,
        revision=args.revision,
        gguf_file=args.gguf_file,
        dtype=args.dtype,
        trust_remote_code=args.trust_remote_code,
    )
    score_to_file(spec, load_text_set(args.texts), args.out, args)
    return 0


def run_score_many(args: argparse.Namespace) -> int:
    text_set = load_text_set(args.texts)
    for job in read_jobs(args.jobs):
        out = job.pop("out")
        score_to_file(ModelSpec(**job), text_set, out, args)


def read_jobs(text: str) -> list[dict]:
    """--jobs, checked before any model is loaded: a list of objects with string ids, sources and outs
    (an id of 1 or null must not be scored as "1" or "None") and only ModelSpec's other fields."""
    try:
        jobs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError("--jobs", f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(jobs, list) or not all(isinstance(job, dict) for job in jobs):
        raise InputError("--jobs", "must be a JSON list of objects")
    allowed = {f.name for f in dataclasses.fields(ModelSpec)} | {"out"}
    for k, job in enumerate(jobs):
        for field in ("model_id", "source", "out"):
            if not isinstance(job.get(field), str):
                raise InputError("--jobs", "missing or not a string", record=k, field=field)
        unknown = sorted(set(job) - allowed)
        if unknown:
            raise InputError("--jobs", f"unknown field(s) {unknown}", record=k)
    return jobs
    return 0


def score_to_file(spec: ModelSpec, text_set: TextSet, out: str, args: argparse.Namespace) -> None:
    """Load `spec`, score `text_set`, write `out` (+ token log-probs if asked) with provenance."""
    step = Step("score", args, {"texts": args.texts}, exclude=("jobs",))
    step.params |= {"model": spec.as_dict(), "out": out}
    loaded = load_model(spec, device=args.device, allow_network=args.allow_network)
    loaded.info["load_seconds"] = round(time.time() - step.started, 3)
    log.info(
        "loaded %s (%s parameters, %s, %s) in %.1f s; scoring %d texts",
        spec.model_id,
        f"{loaded.info['n_params']:,}",
        loaded.info["dtype"],
        loaded.info["device"],
        loaded.info["load_seconds"],
        len(text_set),
    )
    options = ScoreOptions(
        convention=args.convention,
        batch_tokens=args.batch_tokens,
        max_length=args.max_length,
        token_logprobs=bool(args.token_logprobs),
        checkpoint_seconds=args.checkpoint_seconds,
    )
    weights = loaded.info.get("weights") or {}
    result = score_texts(
        loaded.model,
        loaded.tokenizer,
        text_set.texts,
        options,
        checkpoint_dir=args.checkpoint_dir,
        weights_digest=weights.get("digest"),
    )
    if not result.n_tokens.any():  # e.g. a tokenizer that yields one token per text: a map point of 0s
        raise InputError(
            spec.source,
            f"no text of {args.texts} has a scored token under this model's tokenizer",
            record=spec.model_id,
        )
    if result.info["n_texts_without_scored_tokens"]:
        log.warning(
            "%d text(s) have no scored token (log-likelihood 0): see the provenance",
            result.info["n_texts_without_scored_tokens"],
        )
    extra = {"model": loaded.info, "text_set_sha256": text_set.sha256, "scoring": result.info}
    # both files name the texts and the model they belong to (the merge checks them)
    identity = {"text_ids": text_set.ids, "text_set_sha256": text_set.sha256, "model_id": spec.model_id}
    step.npz(out, extra, loglik=result.loglik, n_tokens=result.n_tokens, truncated=result.truncated, **identity)
    if args.token_logprobs:
        tl = result.token_logprobs
        step.npz(
            args.token_logprobs,
            extra,
            offsets=tl.offsets,
            logprobs=tl.logprobs,
            token_ids=tl.token_ids,
            **identity,
        )
    log.info(
        "wrote %s: %d texts, %d tokens, %.0f tokens/s, %d truncated",
        out,
        len(text_set),
        result.info["tokens_scored"],
        result.info["tokens_per_s"],
        result.info["n_truncated"],
    )
