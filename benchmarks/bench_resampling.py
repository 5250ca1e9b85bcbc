"""Map error of resampled text subsets at the paper's size, on synthetic data (K = 1,018, N = 10,000).

The synthetic log-likelihoods have what makes likelihood-variance (LS) sampling pay off on real data:
texts differ in how much the models disagree on them (a per-text scale, log-normal, multiplying the
model x text interaction), on top of a text difficulty, a model level, 29 families of models in a
20-dimensional latent space and per-entry noise. The matrix is clipped (2% quantile) and double-centred
like a real map; then `lmmap.analysis.resampling_error` measures uniform, LS and KL sampling over the
seeds, prints the error table and the draws matching uniform's error at N/2 and N, and writes
benchmarks/results/resampling.md. With `--bootstrap-replicates R` it also times R replicates of the
map-uncertainty bootstrap (t-SNE per replicate from the reference map). About 2 minutes on 2 cores.
Usage: python benchmarks/bench_resampling.py [--models 1018] [--texts 10000] [--seeds 20]
[--disagreement-sigma 0.45] [--bootstrap-replicates 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lmmap.analysis import resampling_error
from lmmap.coords import clip_matrix, double_centre

FRACTIONS = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0]


def synthetic_loglik(K: int, N: int, sigma: float, seed: int = 0) -> np.ndarray:
    """K x N log-likelihoods whose across-model spread varies by text (log-normal scale, `sigma`)."""
    rng = np.random.default_rng(seed)
    families = rng.integers(0, 29, K)
    latent = rng.normal(size=(29, 20))[families] + 0.5 * rng.normal(size=(K, 20))
    disagreement = rng.lognormal(0.0, sigma, N)  # how much models differ on each text
    interaction = (latent @ rng.normal(size=(20, N)) + rng.normal(size=(K, N))) * disagreement
    difficulty = rng.normal(-600, 150, N)
    return difficulty + 3.0 * interaction - rng.gamma(2.0, 30.0, (K, 1))


def time_bootstrap(Q: np.ndarray, replicates: int) -> float:
    """Seconds per map-uncertainty replicate (coordinates, KL, t-SNE of 500 iterations, Procrustes)."""
    from lmmap.analysis.map_uncertainty import bootstrap_map
    from lmmap.embedding import tsne_embedding

    reference = tsne_embedding(Q, perplexity=30, max_iter=250, seed=0)  # any map will do as the start
    start = time.perf_counter()
    bootstrap_map(Q, replicates, seed=0, reference=reference, max_iter=500)
    return (time.perf_counter() - start) / replicates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1018, help="K")
    parser.add_argument("--texts", type=int, default=10000, help="N")
    parser.add_argument("--seeds", type=int, default=20, help="samples per method and number of draws")
    parser.add_argument(
        "--disagreement-sigma",
        type=float,
        default=0.45,
        help="log-normal sigma of the per-text scale (0.45: the demo map's spread of per-text disagreement)",
    )
    parser.add_argument("--bootstrap-replicates", type=int, default=0, help="time this many bootstrap replicates")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "resampling.md"))
    args = parser.parse_args()

    clipped, _ = clip_matrix(synthetic_loglik(args.models, args.texts, args.disagreement_sigma), 0.02)
    Q = double_centre(clipped)
    del clipped
    start = time.perf_counter()
    draws = resampling_error.draw_grid(args.texts, FRACTIONS)
    measured = resampling_error.measure_errors(Q, ["uniform", "ls", "kl"], draws, args.seeds)
    seconds = time.perf_counter() - start
    table = resampling_error.error_table(measured, args.texts)
    summary = resampling_error.matching_draws(table, args.texts)
    per_replicate = time_bootstrap(Q, args.bootstrap_replicates) if args.bootstrap_replicates else None

    pd.set_option("display.width", 160)
    print(table.round(4).to_string(index=False))
    print(summary.round(4).to_string(index=False))
    timing = f"{len(measured)} resampled maps in {seconds:.0f} s ({seconds / len(measured):.2f} s each)"
    if per_replicate is not None:
        timing += f"; the map-uncertainty bootstrap: {per_replicate:.1f} s per replicate (t-SNE 500 iterations)"
    print(timing)
    Path(args.out).write_text(
        f"# Map error of resampled text subsets (synthetic, paper's size)\n\n"
        f"K = {args.models}, N = {args.texts}, per-text disagreement log-normal (sigma "
        f"{args.disagreement_sigma}), {args.seeds} seeds per point; {timing}.\n"
        f"`python benchmarks/bench_resampling.py --seeds {args.seeds} --disagreement-sigma "
        f"{args.disagreement_sigma} --bootstrap-replicates {args.bootstrap_replicates}`\n\n## Relative Frobenius error of the squared distances\n\n"
        + table.to_markdown(index=False, floatfmt=".4f")
        + "\n\n## Draws matching uniform's error at N/2 and N (log-log interpolation on the measured means)\n\n"
        + summary.to_markdown(index=False, floatfmt=".4f")
        + "\n"
    )


if __name__ == "__main__":
    main()
