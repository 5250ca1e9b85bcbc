"""Time to place one new model on a published map of the paper's size (K = 1,018, N = 10,000).

A synthetic matrix (low-rank model traits plus noise, benchmark scores linear in the traits) is
published to a temporary directory (`lmmap.growth`), then one new model is placed from a score file
on all N texts and from one on the map's LS text sample: `python -m lmmap place` end to end (Python
start, reading and checking the map, KL to every mapped model, predictions, t-SNE placement, table
and figure), scoring excluded. Writes benchmarks/results/place.md. Target: under 10 s on 2 cores.
Usage: OMP_NUM_THREADS=2 python benchmarks/bench_place.py [--models 1018] [--texts 10000] [--n-draws 5000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lmmap import growth
from lmmap.storage import save_npz
from lmmap.texts import TextSet


def synthetic(models: int, texts: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    traits = rng.normal(size=(models + 1, 20))
    L = -3.0 - rng.gamma(2.0, 1.0, size=texts) + traits @ rng.normal(size=(20, texts)) * 0.2
    L += rng.normal(scale=0.3, size=L.shape)
    ids = [f"model-{k:04d}" for k in range(models + 1)]
    scores = 50 + traits[:, :6] * 5 + rng.normal(size=(models + 1, 6))
    benchmarks = pd.DataFrame(scores, index=pd.Index(ids, name="model_id"), columns=[f"task{t}" for t in range(6)])
    benchmarks["mean"] = benchmarks.mean(axis=1)
    table = pd.DataFrame(
        {
            "type": [f"type{k % 29}" for k in range(models + 1)],
            "created": pd.date_range("2020-01-01", periods=models + 1),
        },
        index=pd.Index(ids, name="model_id"),
    )
    text_set = TextSet([f"t{s}" for s in range(texts)], ["pile"] * texts, ["x" * 900] * texts, "0" * 64, "")
    return L, ids, benchmarks, table, text_set


def write_scores(path: Path, model_id: str, loglik: np.ndarray, text_ids: list[str], sha256: str) -> None:
    n = len(loglik)
    save_npz(
        path,
        loglik=loglik,
        n_tokens=np.full(n, 200),
        truncated=np.zeros(n, bool),
        text_ids=np.asarray(text_ids),
        text_set_sha256=np.str_(sha256),
        model_id=np.str_(model_id),
    )


def place_seconds(map_dir: Path, scores: Path, benchmarks: Path, out: Path) -> dict:
    """Wall and CPU seconds (user + system) of one `place` run: on a busy machine the CPU time is the
    measure that does not depend on what else runs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lmmap", "place", "--map", str(map_dir), "--scores", str(scores)]
        + ["--benchmarks", str(benchmarks), "--out-table", str(out), "--out-figure", str(out)],
        check=True,
        env=os.environ,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {"wall seconds": wall, "CPU seconds": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1018)
    parser.add_argument("--texts", type=int, default=10000)
    parser.add_argument("--n-draws", type=int, default=5000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "place.md"))
    args = parser.parse_args()
    L, ids, benchmarks, table, text_set = synthetic(args.models, args.texts)
    settings = growth.MapSettings(max_iter=250, n_draws=args.n_draws, leakage_method="within")
    started = time.perf_counter()
    pmap = growth.build_map(L[:-1], ids[:-1], text_set, table, benchmarks, settings)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        growth.publish_map(tmp / "map", pmap, text_set, "bench", {}, {})
        publish = time.perf_counter() - started
        benchmarks.to_csv(tmp / "benchmarks.csv")
        write_scores(tmp / "full.npz", ids[-1], L[-1], text_set.ids, text_set.sha256)
        drawn = pmap.sample.indices
        write_scores(tmp / "sample.npz", ids[-1], L[-1, drawn], [text_set.ids[i] for i in drawn], pmap.sample_sha256)
        rows = [
            {"scores on": f"all {args.texts:,} texts", **place_seconds(tmp / "map", tmp / "full.npz", tmp / "benchmarks.csv", tmp / "full")},
            {"scores on": f"LS sample ({args.n_draws:,} draws, {len(drawn):,} unique texts)", **place_seconds(tmp / "map", tmp / "sample.npz", tmp / "benchmarks.csv", tmp / "sample")},
        ]  # fmt: skip
    frame = pd.DataFrame(rows).round(2)
    threads = os.environ.get("OMP_NUM_THREADS", "all")
    print(frame.to_string(index=False))
    Path(args.out).write_text(
        f"# Placing one new model on a published map\n\nK = {args.models:,} mapped models, N = {args.texts:,} texts "
        f"(synthetic), {threads} BLAS thread(s), {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f} at the "
        "end. `python -m lmmap place` end to end: Python start, reading and checking the map (sha256 of every file), KL to every mapped model, "
        "predictions, out-of-sample t-SNE, table and figure; scoring excluded. Publishing the map (t-SNE at "
        f"250 iterations, ridge CV, text sample) took {publish:.0f} s once.\n\n"
        + frame.to_markdown(index=False)
        + "\n\nTarget: under 10 s on 2 cores.\n"
    )


if __name__ == "__main__":
    main()
