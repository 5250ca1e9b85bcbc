#!/usr/bin/env bash
# GPU check of the scoring engine: random-init Llama-architecture models of ~1B and ~7B parameters in
# bf16 on one GPU (compute does not depend on weight values). Measures the chip's bf16 matmul rate,
# tokens/s of the authors' method (a) and of lmmap (c), the fraction of the matmul rate lmmap reaches,
# and the projected time for 10,000 Pile texts. Writes benchmarks/results/scoring-gpu.md.
# Budget: under 8 minutes on an H100/H200.   Usage: bash benchmarks/gpu_check.sh [N_TEXTS]
set -euo pipefail
cd "$(dirname "$0")/.."
N_TEXTS="${1:-500}"
timeout 480 python - "$N_TEXTS" <<'PY'
import datetime as dt, sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, "benchmarks"); sys.path.insert(0, "tests")
from bench_scoring import authors_method, load_texts
from lmmap.scoring import ScoreOptions, score_texts
from tiny_models import train_tokenizer
from transformers import LlamaConfig, LlamaForCausalLM

assert torch.cuda.is_available(), "no CUDA device"
texts, source = load_texts(int(sys.argv[1]), None)
tokenizer = train_tokenizer("llama", vocab_size=32000, corpus=texts)
chip = torch.cuda.get_device_name()

def matmul_tflops(n=8192, reps=20):
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
    a @ b; torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(reps): a @ b
    torch.cuda.synchronize(); return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12

SIZES = {"llama-1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                          num_attention_heads=32, num_key_value_heads=4),
         "llama-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                          num_attention_heads=32, num_key_value_heads=32)}
rate = matmul_tflops()
lines = [f"# Scoring on GPU ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {chip})", "",
         f"bf16 matmul: {rate:.0f} TFLOP/s; {len(texts)} texts from {source}", "",
         "| model | params | method | texts | tokens/s | × (a) | TFLOP/s | % matmul | peak GiB | 10k texts (min) |",
         "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
for name, dims in SIZES.items():
    config = LlamaConfig(vocab_size=32000, max_position_embeddings=4096, **dims, attn_implementation="sdpa")
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    n_params = sum(p.numel() for p in model.parameters())
    tokens_per_text = np.mean([len(ids) for ids in tokenizer(texts)["input_ids"]])
    results = {}
    for method, subset in (("a", texts[:48]), ("c", texts)):
        fn = authors_method if method == "a" else (lambda m, t, x: score_texts(m, t, x, ScoreOptions(), progress=False).loglik)
        fn(model, tokenizer, subset[:4]); torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter(); out = fn(model, tokenizer, subset); torch.cuda.synchronize()
        seconds = time.perf_counter() - t
        tokens = sum(len(ids) for ids in tokenizer(subset)["input_ids"])
        results[method] = (tokens / seconds, out)
        tflops = 2 * n_params * tokens / seconds / 1e12
        ten_k = 10_000 * tokens_per_text / (tokens / seconds) / 60
        lines.append(f"| {name} | {n_params / 1e9:.2f}B | {method} | {len(subset)} | {tokens / seconds:.0f} | "
                     f"{tokens / seconds / results['a'][0]:.1f} | {tflops:.0f} | {100 * tflops / rate:.0f}% | "
                     f"{torch.cuda.max_memory_allocated() / 2**30:.1f} | {ten_k:.1f} |")
        print(lines[-1], flush=True)
    diff = np.abs(results["c"][1][:48] - results["a"][1]) / np.abs(results["a"][1])
    lines.append(f"| {name} | | (c) vs (a) bf16 agreement | 48 | max rel. diff {diff.max():.1e} | | | | | |")
    del model; torch.cuda.empty_cache()
report = "\n".join(lines) + "\n"
print(report)
Path("benchmarks/results/scoring-gpu.md").write_text(report)
PY
