"""`lmmap download`: fetch a Hugging Face model into the local cache (needs network)."""

from __future__ import annotations

import argparse

from lmmap.commands import Step
from lmmap.download import download
from lmmap.sheet import ModelSpec


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "download",
        help="fetch a Hugging Face model into the local cache",
        description="Download a model repository at a pinned revision into the Hugging Face cache "
        "(HF_HOME), skipping duplicate weight formats, so that `lmmap score` can load it "
        "offline. Writes a JSON record (resolved commit, path, size) to OUT.",
    )
    parser.add_argument("--source", required=True, help="Hugging Face repo id, e.g. org/name")
    parser.add_argument("--model-id", help="the model's id in outputs (default: SOURCE)")
    parser.add_argument("--revision", help="commit, tag or branch (default: main)")
    parser.add_argument("--gguf-file", help="download only this GGUF file (plus config and tokenizer)")
    parser.add_argument("--cache-dir", help="cache directory (default: the Hugging Face cache)")
    parser.add_argument("--out", required=True, help="JSON record to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    step = Step("download", args)
    spec = ModelSpec(
        model_id=args.model_id or args.source, source=args.source, revision=args.revision, gguf_file=args.gguf_file
    )
    record = download(spec, cache_dir=args.cache_dir)
    step.json(args.out, record, extra=record)
    return 0
