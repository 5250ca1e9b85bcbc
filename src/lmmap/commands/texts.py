"""Commands that build the demo corpus and the reference text set."""

from __future__ import annotations

import argparse
import json

from lmmap import demo_corpus
from lmmap.commands import Step, positive_int
from lmmap.errors import InputError
from lmmap.storage import atomic_path
from lmmap.texts import chunk_corpus, read_documents, read_source_jsonl, write_text_set


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo-corpus", help="collect the demo corpus from files on this machine")
    p.add_argument("--out", required=True, help="documents JSONL to write")
    p.add_argument("--domains", nargs="+", required=True, help="demo domains")
    p.add_argument(
        "--fractions",
        nargs=3,
        type=float,
        required=True,
        metavar=("REFERENCE", "TRAIN", "HELDOUT"),
        help="share of documents per split",
    )
    p.add_argument("--max-docs-per-domain", type=int, required=True, help="documents kept per domain")
    p.add_argument("--max-doc-bytes", type=int, required=True, help="cut longer documents")
    p.set_defaults(func=run_demo_corpus)

    p = subparsers.add_parser("prepare-texts", help="build the reference text set (JSONL + sha256)")
    p.add_argument(
        "--input", required=True, help="texts in the paper's JSONL schema, or a documents JSONL with --chunk"
    )
    p.add_argument("--out", required=True, help="text set JSONL to write")
    p.add_argument(
        "--chunk", action="store_true", help="input holds documents (doc_id, domain, text) to chunk the paper's way"
    )
    p.add_argument("--split", help="with --chunk: use only documents of this split")
    p.add_argument("--n", type=positive_int, help="number of texts to sample (default: all)")
    p.add_argument("--seed", type=int, required=True, help="seed of the sample of texts")
    p.add_argument("--max-bytes", type=positive_int, required=True, help="with --chunk: longest chunk in UTF-8 bytes")
    p.add_argument("--min-bytes", type=int, required=True, help="with --chunk: shorter chunks are dropped")
    p.set_defaults(func=run_prepare_texts)


def run_demo_corpus(args: argparse.Namespace) -> int:
    step = Step("demo-corpus", args)
    fractions = dict(zip(demo_corpus.SPLITS, args.fractions))
    docs = demo_corpus.build_documents(args.domains, fractions, args.max_docs_per_domain, args.max_doc_bytes)
    with atomic_path(args.out) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
    step.record(args.out, {"n_documents": len(docs)})
    return 0


def run_prepare_texts(args: argparse.Namespace) -> int:
    step = Step("prepare-texts", args, {"source": args.input})
    if args.chunk:
        try:
            records = chunk_corpus(
                read_documents(args.input, args.split), args.n, args.seed, args.max_bytes, args.min_bytes
            )
        except ValueError as exc:  # too few chunks for --n, or --max-bytes below one character
            raise InputError(args.input, str(exc)) from None
    else:
        records = read_source_jsonl(args.input)
        if args.n is not None:
            records = records[: args.n]  # the paper's set is already a seeded sample: keep its order
    sha = write_text_set(args.out, records)
    domains = sorted({r["domain"] for r in records})
    step.record(args.out, {"text_set_sha256": sha, "n_texts": len(records), "domains": domains})
    return 0
