"""Figures of the map: t-SNE scatter, PCA variance curve, clustered KL heatmap (PNG + PDF)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lmmap.storage import atomic_path  # noqa: E402

FORMATS = ("png", "pdf")


def save_figure(fig: plt.Figure, stem: str | Path) -> list[Path]:
    """Save `fig` as <stem>.png and <stem>.pdf atomically and close it."""
    paths = []
    for fmt in FORMATS:
        path = Path(f"{stem}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def plot_map(points: pd.DataFrame, hue: str, title: str, annotate: bool = False,
             palette: str | None = None) -> plt.Figure:
    """Scatter of the t-SNE coordinates (`x`, `y`) coloured by column `hue`."""
    import seaborn as sns  # imported where used: it costs seconds, and most steps draw no scatter

    fig, ax = plt.subplots(figsize=(8, 6.5))
    numeric = pd.api.types.is_numeric_dtype(points[hue])
    sns.scatterplot(data=points, x="x", y="y", hue=hue, ax=ax, s=45, edgecolor="black", linewidth=0.3,
                    palette=palette or ("viridis" if numeric else "tab20"))
    if annotate:
        for row in points.itertuples():
            ax.annotate(row.model_id, (row.x, row.y), fontsize=6, alpha=0.8,
                        xytext=(3, 3), textcoords="offset points")
    ax.set(title=title, xlabel="t-SNE 1", ylabel="t-SNE 2", xticks=[], yticks=[])
    ax.legend(title=hue, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def plot_pca_variance(cumulative: np.ndarray, marks: dict[float, int]) -> plt.Figure:
    """Cumulative explained variance against the number of components, marking each level."""
    fig, ax = plt.subplots(figsize=(6, 4))
    components = np.arange(1, len(cumulative) + 1)
    ax.plot(components, cumulative, marker="o", markersize=3)
    for level, needed in sorted(marks.items()):
        ax.axhline(level, color="grey", linestyle=":", linewidth=1)
        ax.axvline(needed, color="grey", linestyle=":", linewidth=1)
        ax.annotate(f"{level:.0%}: {needed} components", (needed, level), xytext=(5, -12),
                    textcoords="offset points", fontsize=8)
    ax.set(xlabel="number of principal components", ylabel="cumulative explained variance",
           ylim=(0, 1.02), title="PCA of the model coordinates Q")
    return fig


def plot_kl_heatmap(kl: np.ndarray, labels: list[str], groups: list[str]) -> plt.Figure:
    """Clustered heatmap of the KL estimate, with a colour strip for each model's group."""
    import seaborn as sns
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    frame = pd.DataFrame(kl, index=labels, columns=labels)
    lut = dict(zip(sorted(set(groups)), sns.color_palette("tab20", len(set(groups)))))
    colours = pd.Series([lut[g] for g in groups], index=labels, name="type")
    size = min(4 + 0.18 * len(labels), 30)
    # cluster on the KL values themselves as distances, not on rows of the matrix as feature vectors
    tree = linkage(squareform(kl, checks=False), method="average")
    grid = sns.clustermap(frame, row_colors=colours, col_colors=colours, cmap="mako_r", figsize=(size, size),
                          cbar_kws={"label": "KL estimate (nats per text)"},
                          row_linkage=tree, col_linkage=tree,
                          xticklabels=len(labels) <= 80, yticklabels=len(labels) <= 80)
    grid.ax_heatmap.tick_params(labelsize=6)
    return grid.figure
