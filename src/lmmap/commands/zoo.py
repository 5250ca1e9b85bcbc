"""Commands that build the demo zoo: its tokenizer and training data, then its models."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from lmmap import zoo
from lmmap.commands import Step
from lmmap.storage import atomic_path
from lmmap.texts import iter_jsonl, load_text_set

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("zoo-data", help="train the zoo tokenizer and tokenise its training chunks")
    p.add_argument("--corpus", required=True, help="demo corpus documents JSONL (split: train is used)")
    p.add_argument("--texts", required=True, help="reference text set JSONL (kept out of training)")
    p.add_argument("--vocab-size", type=int, required=True, help="vocabulary of the zoo's BPE tokenizer")
    p.add_argument(
        "--tokenizer-sample", type=int, required=True, help="train the tokenizer on every k-th training chunk"
    )
    p.add_argument(
        "--min-line-chars",
        type=int,
        required=True,
        help="drop training chunks sharing a line this long with a reference/held-out text",
    )
    p.add_argument("--tokenizer-out", required=True, help="tokenizer JSON to write")
    p.add_argument("--data-out", required=True, help="token npz to write")
    p.set_defaults(func=run_zoo_data)

    p = subparsers.add_parser("build-zoo", help="build zoo models (bases, fine-tunes, merges, variants) from recipes")
    p.add_argument(
        "--recipes", required=True, help='JSON list of {"slug", "recipe", "parents"}, built in order (parents first)'
    )
    p.add_argument("--tokenizer", required=True, help="zoo tokenizer JSON")
    p.add_argument("--data", help="zoo token npz (needed by trained models)")
    p.add_argument("--zoo-dir", required=True, help="where model directories live")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.set_defaults(func=run_zoo_build)

    p = subparsers.add_parser(
        "zoo-lineage", help="tabulate the zoo's models: kind, parents, domain, format, contamination"
    )
    p.add_argument("--zoo-config", required=True, help="the config's zoo section as JSON")
    p.add_argument("--out", required=True, help="CSV to write")
    p.set_defaults(func=run_zoo_lineage)


def run_zoo_data(args: argparse.Namespace) -> int:
    step = Step("zoo-data", args, {"corpus": args.corpus, "texts": args.texts})
    documents = [doc for _, doc in iter_jsonl(args.corpus)]
    reference = load_text_set(args.texts)
    heldout = [doc["text"] for doc in documents if doc.get("split") == "heldout"]
    chunks, dropped = zoo.training_chunks(documents, reference.texts + heldout, args.min_line_chars)
    texts = [c["text"] for c in chunks]
    tokenizer = zoo.train_tokenizer(texts[:: args.tokenizer_sample], args.vocab_size)
    with atomic_path(args.tokenizer_out) as tmp:
        tokenizer.save(str(tmp))
    tokens, offsets = zoo.encode_texts(tokenizer, texts)
    ref_tokens, ref_offsets = zoo.encode_texts(tokenizer, reference.texts)
    arrays = dict(
        tokens=tokens,
        offsets=offsets,
        domains=[c["domain"] for c in chunks],
        chunk_ids=[c["id"] for c in chunks],
        reference_tokens=ref_tokens,
        reference_offsets=ref_offsets,
        reference_ids=reference.ids,
    )
    domains, counts = np.unique([c["domain"] for c in chunks], return_counts=True)
    extra = {
        "n_chunks": len(chunks),
        "n_dropped_overlap": dropped,
        "n_tokens": int(offsets[-1]),
        "chunks_per_domain": dict(zip(domains.tolist(), counts.tolist())),
        "text_set_sha256": reference.sha256,
    }
    log.info("%d training chunks (%d dropped for overlap), %d tokens", len(chunks), dropped, offsets[-1])
    step.record(args.tokenizer_out, extra)
    step.npz(args.data_out, extra, **arrays)
    return 0


def run_zoo_build(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    items = json.loads(args.recipes)
    tokenizer = zoo.wrap_tokenizer(args.tokenizer)
    data = zoo.TokenData.load(args.data) if args.data else None
    needed = {p for item in items for p in item["parents"]}
    in_memory: dict = {}  # parents stay loaded: a family's models share them

    def parent(slug: str):
        if slug not in in_memory:
            in_memory[slug] = zoo.load_for_building(Path(args.zoo_dir) / slug)
        return in_memory[slug]

    for item in items:
        cpu_started = time.process_time()
        inputs = {
            "tokenizer": args.tokenizer,
            "data": args.data,
            **{f"parent {p}": Path(args.zoo_dir) / p / "model.safetensors" for p in item["parents"]},
        }
        step = Step("build-zoo", args, inputs)
        step.params = {"recipe": item["recipe"], "parents": item["parents"], "threads": args.threads}
        recipe, out_dir = item["recipe"], Path(args.zoo_dir) / item["slug"]
        model, summary = zoo.build_model(recipe, tokenizer, data, [parent(p) for p in item["parents"]], item["slug"])
        zoo.save_model(model, tokenizer, out_dir, {"zoo_recipe.json": recipe})
        if item["slug"] in needed:
            in_memory[item["slug"]] = model
        summary["build_seconds"] = round(time.time() - step.started, 3)
        summary["cpu_seconds"] = round(time.process_time() - cpu_started, 3)
        log.info("built %s (%s) in %.2f s: %s", item["slug"], recipe["kind"], summary["build_seconds"], summary)
        step.record(out_dir / "config.json", {"zoo_model": summary})
    return 0


def run_zoo_lineage(args: argparse.Namespace) -> int:
    import pandas as pd

    step = Step("zoo-lineage", args)
    table = pd.DataFrame(zoo.lineage_rows(json.loads(args.zoo_config)))
    step.csv(table, args.out, {"n_models": len(table)})
    return 0
