"""Recall, false flags and AUC of the leakage screen on planted data at the paper's size (K = 1,018).

Each seed draws a planted matrix (`lmmap.analysis.planted`: 29 families, six task scores linear in
hidden traits, 20 models with a constant log-likelihood excess on every text), runs both screening
methods and pools the planted and other models over the seeds. Writes benchmarks/results/leakage.md.
About 3 minutes on 2 cores. Usage: python benchmarks/bench_leakage.py [--seeds 10] [--excess 10 20 25 30]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from lmmap.analysis import leakage
from lmmap.analysis.planted import planted_leakage, screen_metrics

THRESHOLDS = (2.0, 2.5, 3.0, 3.5, 4.0)


def measure(models: int, excess: float, seeds: int) -> pd.DataFrame:
    z = {method: [] for method in leakage.METHODS}
    leaked = []
    for seed in range(seeds):
        data = planted_leakage(K=models, excess=excess, seed=seed)
        frame = data.frame()
        for method in leakage.METHODS:
            screen, _ = leakage.leakage_screen(frame, data.domain_means(), 3.0, method=method, predictors=data.tasks)
            z[method].append(screen.set_index("model_id").loc[frame["model_id"], "residual_z"].to_numpy())
        leaked.append(data.leaked)
    leaked = np.concatenate(leaked)
    return pd.concat(
        [
            screen_metrics(np.concatenate(z[m]), leaked, THRESHOLDS).assign(method=m, excess=excess)
            for m in leakage.METHODS
        ],
        ignore_index=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1018)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--excess",
        type=float,
        nargs="+",
        default=[10.0, 20.0, 25.0, 30.0],
        help="nats per text added to the planted models (model noise SD: 5)",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "leakage.md"))
    args = parser.parse_args()
    table = pd.concat([measure(args.models, e, args.seeds) for e in args.excess], ignore_index=True)
    table = table[["excess", "method", "threshold", "recall", "false_flag_rate", "auc"]].round(4)
    print(table.to_string(index=False))
    Path(args.out).write_text(
        f"# Leakage screen on planted data\n\nK = {args.models}, {args.seeds} seeds pooled; "
        f"`python benchmarks/bench_leakage.py`.\n\n" + table.to_markdown(index=False) + "\n",
        encoding="utf-8",
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
