"""How well a resampled text subset reproduces the map (arXiv 2505.15428, Fig. 2 and Table 1).

For each sampling method (lmmap.resampling: uniform, ls, kl) and each number of draws n, S seeded
samples give S relative Frobenius errors of the resampled squared-distance matrix against the full
map's. The summary reads off the measured curves where a method reaches the error uniform sampling
has at n = N/2 and at n = N draws: the texts a new model needs for the same map error.

Q alone suffices as input: the clipped L and Q differ by a constant per row (removed again by each
row's weighted mean) and a constant per column (removed by the column means), so resampling the
columns of Q gives the coordinates resampling the columns of the clipped L would.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmmap.coords import squared_distances
from lmmap.resampling import draw_texts, relative_distance_error, resampled_coordinates, sampling_probabilities

REFERENCE_FRACTIONS = (0.5, 1.0)  # uniform's error at these fractions of N is what the summary matches


def draw_grid(n_texts: int, fractions: list[float]) -> list[int]:
    """Numbers of draws: the fractions of N (and always N/2 and N, the summary's references)."""
    return sorted({max(1, round(f * n_texts)) for f in (*fractions, *REFERENCE_FRACTIONS)})


def measure_errors(Q: np.ndarray, methods: list[str], draws: list[int], seeds: int) -> pd.DataFrame:
    """One row per (method, n_draws, seed): the unique texts drawn and the relative distance error."""
    D_full = squared_distances(Q)
    rows = []
    for method in methods:
        pi = sampling_probabilities(Q, method)
        for n_draws in draws:
            for seed in range(seeds):
                sample = draw_texts(pi, n_draws, seed)
                Y, _ = resampled_coordinates(Q[:, sample.indices], sample.weights)
                error = relative_distance_error(D_full, squared_distances(Y))
                rows.append((method, n_draws, seed, len(sample), error))
    return pd.DataFrame(rows, columns=["method", "n_draws", "seed", "unique_texts", "error"])


def error_table(measured: pd.DataFrame, n_texts: int) -> pd.DataFrame:
    """Mean and standard deviation over seeds per (method, n_draws), in the methods' given order."""
    grouped = measured.groupby(["method", "n_draws"], sort=False)
    table = grouped.agg(
        unique_texts=("unique_texts", "mean"),
        error_mean=("error", "mean"),
        error_std=("error", "std"),
        seeds=("seed", "size"),
    ).reset_index()
    table.insert(2, "fraction_of_N", table["n_draws"] / n_texts)
    return table


def _interpolate(x_measured: np.ndarray, y_measured: np.ndarray, x: float) -> float:
    """Log-log linear interpolation of a measured curve (errors fall about as 1/sqrt(n)), NaN outside it."""
    lx = np.log(x_measured)
    if not lx.min() <= np.log(x) <= lx.max():
        return float("nan")
    return float(np.exp(np.interp(np.log(x), lx, np.log(y_measured))))


def matching_draws(table: pd.DataFrame, n_texts: int) -> pd.DataFrame:
    """For every method, the draws and unique texts at which its mean error equals uniform's at
    N/2 and at N draws, interpolated (log-log) on the measured curve; NaN where the grid does not
    reach that error."""
    uniform = table[table["method"] == "uniform"].set_index("n_draws")
    rows = []
    for fraction in REFERENCE_FRACTIONS:
        reference_draws = max(1, round(fraction * n_texts))
        target = float(uniform.loc[reference_draws, "error_mean"])
        reference_unique = float(uniform.loc[reference_draws, "unique_texts"])
        for method, curve in table.groupby("method", sort=False):
            # the error falls as n grows: interpolate n (and the unique texts) against the error
            order = np.argsort(curve["error_mean"].to_numpy())
            errors = curve["error_mean"].to_numpy()[order]
            n_draws = _interpolate(errors, curve["n_draws"].to_numpy(dtype=float)[order], target)
            unique = _interpolate(errors, curve["unique_texts"].to_numpy(dtype=float)[order], target)
            rows.append(
                {
                    "reference": f"uniform, n = {fraction:g} N",
                    "reference_error": target,
                    "reference_unique_texts": reference_unique,
                    "method": method,
                    "n_draws": n_draws,
                    "unique_texts": unique,
                    "unique_fraction_of_reference": unique / reference_unique,
                }
            )
    return pd.DataFrame(rows)


def error_figure(table: pd.DataFrame, n_models: int, n_texts: int, seeds: int):
    """Error against the number of unique texts, one line per method with a +-1 std band (log-log)."""
    import matplotlib.pyplot as plt

    from lmmap.palette import category_colours

    colours = category_colours(table["method"].unique())
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for method, curve in table.groupby("method", sort=False):
        x, mean, std = curve["unique_texts"], curve["error_mean"], curve["error_std"].fillna(0.0)
        ax.plot(x, mean, marker="o", ms=3, color=colours[method], label=method)
        ax.fill_between(x, np.maximum(mean - std, mean * 1e-3), mean + std, color=colours[method], alpha=0.2)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="unique texts in the sample",
        ylabel="relative Frobenius error of squared distances",
        title=f"Resampled map error (K = {n_models}, N = {n_texts}, {seeds} seeds, band: ±1 std)",
    )
    ax.legend(title="sampling", frameon=False)
    ax.grid(True, which="both", alpha=0.3)
    return fig
