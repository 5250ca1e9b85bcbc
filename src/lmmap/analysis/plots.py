"""The analyses' figures (matplotlib/seaborn, Agg backend via lmmap.figures)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import lmmap.figures  # noqa: F401  (selects the Agg backend before pyplot is imported)
from lmmap.figures import label_points
from lmmap.palette import category_colours


def _grid(n_panels: int, size: float = 3.2):
    cols = min(4, max(1, n_panels))
    rows = math.ceil(n_panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 1.0, size * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n_panels])


def _identity_line(ax, x, y):
    lo, hi = float(np.nanmin([np.nanmin(x), np.nanmin(y)])), float(np.nanmax([np.nanmax(x), np.nanmax(y)]))
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle=":", linewidth=1)


def _colourbar(fig, axes, values: np.ndarray, label: str, cmap: str = "viridis"):
    norm = plt.Normalize(float(np.nanmin(values)), float(np.nanmax(values)))
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=axes, label=label, shrink=0.8)
    return norm


def prediction_scatter(
    predictions: pd.DataFrame,
    colour: pd.Series,
    title: str,
    cmap: str = "gnuplot_r",
    summary: pd.DataFrame | None = None,
):
    """True score against the seed-averaged prediction (paper Figs. 8, 18), one panel per target,
    points coloured by mean log-likelihood in the paper's colour map. With `summary` (the ridge
    table's rows of these features and CV) each panel states the table's r, mean ± std over seeds,
    the number the findings report; without it, the r of the seed-averaged predictions drawn."""
    targets = list(dict.fromkeys(predictions["target"]))
    fig, axes = _grid(len(targets))
    norm = _colourbar(fig, axes, colour.to_numpy(dtype=float), "mean log-likelihood", cmap)
    reported = summary.set_index("target") if summary is not None else None
    for ax, target in zip(axes, targets):
        part = predictions[predictions["target"] == target]
        ax.scatter(
            part["predicted"],
            part["true"],
            c=colour.reindex(part["model_id"]).to_numpy(),
            cmap=cmap,
            norm=norm,
            s=14,
            edgecolors="black",
            linewidths=0.2,
        )
        _identity_line(ax, part["predicted"], part["true"])
        if reported is not None and target in reported.index:
            row = reported.loc[target]
            label = f"{target}\nr = {row['pearson_mean']:.3f} ± {row['pearson_std']:.3f} over seeds"
            if target == "mean":  # the target of the findings table's ridge row
                label = label.replace("mean\n", "mean (the findings' ridge row)\n", 1)
        else:
            r = np.corrcoef(part["true"], part["predicted"])[0, 1] if part["predicted"].std() > 0 else np.nan
            label = f"{target} (r = {r:.3f})"
        ax.set_title(label, fontsize=9)
        ax.set(xlabel="predicted (mean over seeds)", ylabel="true")
    fig.suptitle(title)
    return fig


def baseline_scatter(
    mean_loglik: pd.Series,
    targets: pd.DataFrame,
    types: pd.Series,
    correlations: pd.DataFrame,
    colours: dict[str, str] | None = None,
):
    """Benchmark score against mean log-likelihood, one panel per target, coloured by model type (the
    shared palette; `colours` fixes some types)."""
    import seaborn as sns  # imported where it draws: seconds to import, which most steps need not pay

    fig, axes = _grid(len(targets.columns))
    frame = targets.assign(mean_loglik=mean_loglik, type=types)
    lut = category_colours(types, colours)
    r = correlations.set_index("target")["pearson"]
    for i, (ax, target) in enumerate(zip(axes, targets.columns)):
        sns.scatterplot(
            data=frame,
            x="mean_loglik",
            y=target,
            hue="type",
            ax=ax,
            s=16,
            legend=i == len(axes) - 1,
            palette=lut,
            hue_order=list(lut),
        )
        ax.set(title=f"{target} (r = {r[target]:.3f})", xlabel="mean log-likelihood", ylabel="score")
    if axes and axes[-1].get_legend():
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
    return fig


def kl_scatter(table: pd.DataFrame, estimate: str, panels: dict[str, str]):
    """Measured KL (one panel per measure) against the coordinate estimate on log-log axes with equal
    limits, so y = x is the diagonal and pairs a decade apart in KL are as far apart on the page
    (on linear axes the near pairs pile up at the origin). Pearson r (the paper's measure) and
    Spearman r over all pairs; pairs with a KL <= 0 (a Monte Carlo estimate can be) cannot be drawn on
    a log axis and are counted in the title."""
    from scipy.stats import spearmanr

    fig, axes = _grid(len(panels), size=4.2)
    for ax, (column, label) in zip(axes, panels.items()):
        part = table.dropna(subset=[column, estimate])
        enough = len(part) > 2 and part[column].std() > 0 and part[estimate].std() > 0
        r = np.corrcoef(part[estimate], part[column])[0, 1] if enough else np.nan
        rho = spearmanr(part[estimate], part[column])[0] if enough else np.nan
        shown = part[(part[column] > 0) & (part[estimate] > 0)]
        ax.scatter(shown[estimate], shown[column], s=18, edgecolors="black", linewidths=0.3, zorder=3)
        title = f"{label}\nPearson r = {r:.3f}, Spearman r = {rho:.3f} ({len(part)} pairs)"
        if len(shown) < len(part):
            title += f"\n{len(part) - len(shown)} pair(s) with KL <= 0 not drawn"
        if len(shown):
            values = np.concatenate([shown[estimate].to_numpy(float), shown[column].to_numpy(float)])
            lo, hi = values.min() / 2.0, values.max() * 2.0
            ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), aspect="equal")
            ax.plot([lo, hi], [lo, hi], color="grey", linestyle=":", linewidth=1, label="y = x")
            ax.legend(loc="upper left", fontsize=7, frameon=False)
        ax.set_title(title, fontsize=9)
        ax.set(xlabel=r"estimate $\|q_i - q_j\|^2 / 2N$ (nats per text)", ylabel="measured (nats per text)")
    return fig


def leakage_scatter(
    frame: pd.DataFrame, fitted_line: tuple[np.ndarray, np.ndarray] | None, colours: dict[str, str] | None = None
):
    """Against the benchmark mean: mean log-likelihood with the robust line (method "global"), or
    the excess over what the model's group and task scores predict ("within"); flagged models in red.
    Pass the palette of all the models' types as `colours` (the frame holds only the scored ones)."""
    import seaborn as sns

    y = "mean_loglik" if fitted_line is not None else "residual"
    fig, ax = plt.subplots(figsize=(6.5, 5), layout="constrained")
    lut = category_colours(frame["type"], colours)
    shown = [t for t in lut if t in set(frame["type"].astype(str))]
    sns.scatterplot(
        data=frame,
        x="benchmark_mean",
        y=y,
        hue="type",
        ax=ax,
        s=20,
        palette={t: lut[t] for t in shown},
        hue_order=shown,
    )
    if fitted_line is not None:
        ax.plot(*fitted_line, color="black", linewidth=1, label="robust fit")
    else:
        ax.axhline(0.0, color="black", linewidth=1, label="expected (group and task scores)")
    flagged = frame[frame["flagged"]]
    ax.scatter(
        flagged["benchmark_mean"],
        flagged[y],
        s=120,
        facecolors="none",
        edgecolors="red",
        linewidths=1.5,
        label="flagged",
    )
    label_points(ax, flagged["benchmark_mean"], flagged[y], flagged["model_id"], fontsize=7, color="red")
    ylabel = (
        "mean log-likelihood per text"
        if fitted_line is not None
        else "log-likelihood excess over expected (nats per text)"
    )
    ax.set(
        xlabel="benchmark mean score",
        ylabel=ylabel,
        title="Leakage screen: log-likelihood above what the benchmark predicts",
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return fig


def interpolation_figure(grid: pd.DataFrame, name: str):
    """(a) the (alpha, beta) grid in weight space, (b) PCA of the row-centred L, (c) actual vs. linear
    prediction of the mean log-likelihood; points coloured by actual mean log-likelihood."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), layout="constrained")
    norm = plt.Normalize(grid["mean_loglik"].min(), grid["mean_loglik"].max())
    style = dict(c=grid["mean_loglik"], cmap="viridis", norm=norm, s=40, edgecolors="black", linewidths=0.3)
    weights = ("weight_x", "weight_y") if "weight_x" in grid else ("alpha", "beta")
    axes[0].scatter(grid[weights[0]], grid[weights[1]], **style)
    if "weight_x" in grid:  # the measured geometry: lengths of the two directions and their angle
        axes[0].set(
            xlabel=r"along $\theta_1 - \theta_0$ (weight-space distance)",
            ylabel="orthogonal to it",
            title="weight space (measured norms and angle)",
            aspect="equal",
        )
    else:
        axes[0].set(
            xlabel=r"$\alpha$ (towards fine-tune 1)", ylabel=r"$\beta$ (towards fine-tune 2)", title="weight space"
        )
    axes[1].scatter(grid["pc1"], grid["pc2"], **style)
    axes[1].set(xlabel="PC 1", ylabel="PC 2", title="PCA of row-centred L")
    for ax, (x, y) in ((axes[0], weights), (axes[1], ("pc1", "pc2"))):
        for row in grid[grid["endpoint"] != ""].itertuples():
            ax.annotate(
                row.endpoint, (getattr(row, x), getattr(row, y)), fontsize=8, xytext=(4, 4), textcoords="offset points"
            )
    axes[2].scatter(grid["predicted_mean_loglik"], grid["mean_loglik"], **style)
    _identity_line(axes[2], grid["predicted_mean_loglik"], grid["mean_loglik"])
    axes[2].set(xlabel="predicted (linear in endpoint log-likelihoods)", ylabel="actual", title="mean log-likelihood")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=axes, label="mean log-likelihood", shrink=0.8)
    fig.suptitle(f"Weight interpolation: {name}")
    return fig
