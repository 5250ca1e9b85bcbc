"""Figures of the map: t-SNE scatter, PCA variance curve, clustered KL heatmap (PNG + PDF).

Colours come from lmmap.palette: one colour per category in every figure, colour bars for numbers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lmmap import palette  # noqa: E402
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


def plot_map(
    points: pd.DataFrame,
    hue: str,
    title: str | None = None,
    annotate: bool = False,
    colours: Mapping[str, str] | None = None,
    label: str | None = None,
    highlight: list[str] | None = None,
) -> plt.Figure:
    """Scatter of the t-SNE coordinates (`x`, `y`) coloured by column `hue` (legend or colour-bar title
    `label`): categories from the shared palette, fixed over all the models (`colours` fixes some, e.g.
    the paper's types; models without a category are left out), numbers on a colour bar (models
    without a value in grey). `highlight` models get a red ring and their id (e.g. leakage suspects)."""
    label = label or hue
    fig, ax = plt.subplots(figsize=(8, 6.5))
    if pd.api.types.is_numeric_dtype(points[hue]):
        colour_bar_scatter(fig, ax, points["x"], points["y"], points[hue], hue, label, s=45)
    else:
        colours = palette.category_colours(points[hue], colours)
        points = points.dropna(subset=[hue]) if points[hue].notna().any() else points
        category_scatter(ax, points["x"], points["y"], points[hue], colours, s=45)
        ax.legend(title=label, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if annotate:
        label_points(ax, points["x"], points["y"], points["model_id"], fontsize=6, alpha=0.8)
    ax.set(title=title or f"Model map: {label}", xlabel="t-SNE 1", ylabel="t-SNE 2", xticks=[], yticks=[])
    if highlight:
        marked = points[points["model_id"].isin(highlight)]
        ax.scatter(
            marked["x"], marked["y"], s=180, facecolors="none", edgecolors="red", linewidths=1.5, label="flagged"
        )
        label_points(ax, marked["x"], marked["y"], marked["model_id"], fontsize=7, color="red")
    return fig


def label_points(ax, x, y, labels, **style) -> list:
    """Write `labels` next to their points, moved apart where they would overlap each other or the points
    (adjustText), with a thin line back to the point when moved far."""
    from adjustText import adjust_text  # imported where used, like seaborn

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    texts = [ax.text(xi, yi, str(label), **style) for xi, yi, label in zip(x, y, labels)]
    if texts:
        adjust_text(texts, x=x, y=y, ax=ax, arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5})
    return texts


def category_scatter(
    ax, x: pd.Series, y: pd.Series, values: pd.Series, colours: Mapping[str, str] | None = None, **style
) -> dict[str, str]:
    """One scatter per category in its palette colour (labelled for the legend); returns the palette."""
    lut = palette.category_colours(values, colours)
    names = values.astype(str).where(values.notna())
    for name, colour in lut.items():
        shown = (names == name).to_numpy()
        ax.scatter(x[shown], y[shown], color=colour, label=name, edgecolors="black", linewidths=0.3, **style)
    return lut


def colour_bar_scatter(fig, ax, x: pd.Series, y: pd.Series, values: pd.Series, variable: str, label: str, **style):
    """Scatter coloured on a continuous colour bar (ticks in the variable's own units: 1B, 2023-06);
    models without a value in grey."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    known = np.isfinite(v)
    edges = dict(edgecolors="black", linewidths=0.3, **style)
    if (~known).any():
        ax.scatter(x[~known], y[~known], color=palette.NEUTRAL, label="unknown", **edges)
    points = ax.scatter(x[known], y[known], c=v[known], cmap=palette.CONTINUOUS, **edges)
    bar = fig.colorbar(points, ax=ax, label=label, shrink=0.8)
    ticks = palette.numeric_ticks(variable, float(v[known].min()), float(v[known].max())) if known.any() else None
    if ticks:
        bar.set_ticks(ticks[0], labels=ticks[1])
    if (~known).any():
        ax.legend(loc="lower right", fontsize=7, frameon=False)
    return bar


def plot_pca_variance(cumulative: np.ndarray, marks: dict[float, int]) -> plt.Figure:
    """Cumulative explained variance against the number of components, marking each level."""
    fig, ax = plt.subplots(figsize=(6, 4))
    components = np.arange(1, len(cumulative) + 1)
    ax.plot(components, cumulative, marker="o", markersize=3)
    for level, needed in sorted(marks.items()):
        ax.axhline(level, color="grey", linestyle=":", linewidth=1)
        ax.axvline(needed, color="grey", linestyle=":", linewidth=1)
        ax.annotate(
            f"{level:.0%}: {needed} components",
            (needed, level),
            xytext=(5, -12),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set(
        xlabel="number of principal components",
        ylabel="cumulative explained variance",
        ylim=(0, 1.02),
        title="PCA of the model coordinates Q",
    )
    return fig


HEATMAP_MAX_MODELS = 1500  # up to this many the heatmap shows every model (the paper's 1,018 included)
HEATMAP_SUBSET = 300  # above, it shows this many, chosen by farthest-point sampling


def farthest_point_subset(distances: np.ndarray, count: int) -> np.ndarray:
    """Indices of `count` rows spread over the whole map: the medoid (least mean distance to the others),
    then repeatedly the row farthest from all those chosen (greedy farthest-point sampling), sorted.
    Every far family gets a representative; `count` >= the number of rows returns them all."""
    K = len(distances)
    if count >= K:
        return np.arange(K)
    chosen = [int(np.argmin(distances.mean(axis=1)))]
    nearest = np.array(distances[chosen[0]], dtype=float)
    for _ in range(count - 1):
        nearest[chosen] = -np.inf
        chosen.append(int(np.argmax(nearest)))
        np.minimum(nearest, distances[chosen[-1]], out=nearest)
    return np.sort(np.array(chosen))


def plot_kl_heatmap(
    kl: np.ndarray,
    labels: list[str],
    groups: list[str],
    group: str = "type",
    colours: Mapping[str, str] | None = None,
    max_models: int = HEATMAP_MAX_MODELS,
    subset: int = HEATMAP_SUBSET,
) -> plt.Figure:
    """Clustered heatmap of the KL estimate, with a colour strip (and its legend) for each model's group.
    The colour scale stops at the 98th percentile of the pairs, so that one far model does not wash
    out the rest (larger values show in the darkest colour). Above `max_models` models the heatmap
    shows `subset` of them chosen by farthest-point sampling (`farthest_point_subset`; the title says
    so): a 10,000 x 10,000 heatmap is unreadable, the full matrix stays in the KL data file."""
    total = len(labels)
    if total > max_models:
        shown = farthest_point_subset(np.asarray(kl), subset)
        kl = np.asarray(kl)[np.ix_(shown, shown)]
        labels, groups = [labels[i] for i in shown], [groups[i] for i in shown]
    import seaborn as sns
    from matplotlib.patches import Patch
    from scipy.cluster.hierarchy import linkage
    from scipy.spatial.distance import squareform

    frame = pd.DataFrame(kl, index=labels, columns=labels)
    lut = palette.category_colours(groups, colours)
    strip = pd.Series([lut[str(g)] for g in groups], index=labels, name=group)
    size = min(4 + 0.18 * len(labels), 30)
    pairs = kl[np.triu_indices(len(labels), 1)]
    vmax = float(np.quantile(pairs, 0.98)) if len(pairs) else None
    # cluster on the KL values themselves as distances, not on rows of the matrix as feature vectors
    tree = linkage(squareform(kl, checks=False), method="average")
    grid = sns.clustermap(
        frame,
        row_colors=strip,
        col_colors=strip,
        cmap="mako_r",
        figsize=(size, size),
        vmin=0,
        vmax=vmax,
        cbar_kws={"label": "KL estimate (nats per text)", "extend": "max"},
        row_linkage=tree,
        col_linkage=tree,
        xticklabels=len(labels) <= 80,
        yticklabels=len(labels) <= 80,
    )
    grid.ax_heatmap.tick_params(labelsize=6)
    handles = [Patch(color=colour, label=name) for name, colour in lut.items()]
    # the type legend top right (above the row labels), the colour bar's label left of it: clear of the trees
    grid.figure.legend(handles=handles, title=group, loc="upper right", fontsize=7, frameon=False)
    grid.cax.yaxis.set_label_position("left")
    grid.cax.yaxis.set_ticks_position("left")
    if total > max_models:
        grid.figure.suptitle(f"KL estimate: {len(labels)} of {total} models, chosen by farthest-point sampling", y=1.01)
    return grid.figure


def plot_placement(pmap, placement: pd.DataFrame, n_lines: int = 3) -> plt.Figure:
    """The published map (`lmmap.growth.PublishedMap`) coloured by type, with the placed models as
    stars (white: outside the map) joined to their `n_lines` nearest mapped models; placed models and
    those neighbours are labelled."""
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(8, 6.5))
    types = pmap.models["type"].astype(str) if "type" in pmap.models else pd.Series(["mapped"] * len(pmap.xy))
    lut = palette.category_colours(types)
    # one scatter and proxy legend handles: a map of 1,000 models in 29 types draws in a fraction of a second
    ax.scatter(*pmap.xy.T, c=types.map(lut).tolist(), s=30, alpha=0.8, edgecolors="black", linewidths=0.2)
    handles = [Line2D([], [], ls="", marker="o", color=colour, label=name) for name, colour in lut.items()]
    position = {model: i for i, model in enumerate(pmap.model_ids)}
    neighbours = [f"neighbour_{r}" for r in range(1, n_lines + 1) if f"neighbour_{r}" in placement]
    labelled = set()
    for row in placement.itertuples():
        for column in neighbours:
            j = position[getattr(row, column)]
            ax.plot([row.x, pmap.xy[j, 0]], [row.y, pmap.xy[j, 1]], color="grey", lw=0.7, zorder=1)
            labelled.add(j)
    inside = placement["within_map"].to_numpy(bool) if "within_map" in placement else np.ones(len(placement), bool)
    for shown, fill, label in ((inside, "black", "placed"), (~inside, "white", "placed, outside the map")):
        if shown.any():
            style = {"marker": "*", "color": fill, "markeredgecolor": "black"}
            ax.scatter(
                placement["x"][shown], placement["y"][shown], marker="*", s=200, c=fill, edgecolors="black", zorder=3
            )
            handles.append(Line2D([], [], ls="", markersize=10, label=label, **style))
    ax.legend(handles=handles, title="type", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    shown = sorted(labelled)
    label_points(
        ax,
        [*placement["x"], *pmap.xy[shown, 0]],
        [*placement["y"], *pmap.xy[shown, 1]],
        [*placement["model_id"], *(pmap.model_ids[j] for j in shown)],
        fontsize=6,
    )
    ax.set(
        title=f"{len(placement)} model(s) placed on a map of {len(pmap.model_ids)}",
        xlabel="t-SNE 1",
        ylabel="t-SNE 2",
        xticks=[],
        yticks=[],
    )
    return fig
