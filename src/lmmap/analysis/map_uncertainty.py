"""How much the map would move with another draw of texts: a bootstrap over the texts.

Each replicate draws N texts uniformly with replacement (lmmap.resampling with uniform pi and n = N:
weights sqrt(count), the ordinary bootstrap), re-centres them into coordinates, and gives
- the KL estimate ||y_i - y_j||^2 / (2N): its spread over replicates is each estimate's standard error;
- a t-SNE map, started from the reference map and run for fewer iterations than it (the replicate
  stays in the reference's basin: what varies is the data, not t-SNE's random start), then aligned to
  the reference by orthogonal Procrustes with translation and scale. Reflections are allowed (a
  t-SNE map has no handedness); the scale is fitted because a t-SNE layout keeps growing with its
  iterations, so a replicate run for fewer of them is smaller for no reason in the data.
Each model's replicate positions give its 2x2 covariance: the 1-sigma ellipse on the map.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy.linalg import orthogonal_procrustes

from lmmap.coords import kl_estimate, squared_distances
from lmmap.embedding import tsne_embedding
from lmmap.resampling import draw_texts, resampled_coordinates


def procrustes_align(X: np.ndarray, reference: np.ndarray, scale: bool = True) -> np.ndarray:
    """X [K, 2] moved onto `reference` by the translation, orthogonal map (and scale) that minimise
    the summed squared distance between matching rows."""
    X_centre, ref_centre = X.mean(axis=0), reference.mean(axis=0)
    A, B = X - X_centre, reference - ref_centre
    rotation, singular_sum = orthogonal_procrustes(A, B)
    factor = singular_sum / np.sum(A**2) if scale else 1.0
    return factor * A @ rotation + ref_centre


@dataclasses.dataclass(frozen=True)
class Bootstrap:
    kl: np.ndarray  # [K, K] the full map's KL estimate
    kl_se: np.ndarray  # [K, K] its standard error over the replicates
    positions: np.ndarray | None  # [R, K, 2] aligned replicate maps (None without a reference map)
    unique_texts: np.ndarray  # [R] distinct texts per replicate


def bootstrap_map(
    Q: np.ndarray,
    replicates: int,
    seed: int = 0,
    reference: np.ndarray | None = None,
    perplexity: float = 30.0,
    max_iter: int = 300,
) -> Bootstrap:
    """`replicates` bootstrap draws of the N texts of Q: KL standard errors, and with a `reference`
    map ([K, 2], rows as in Q) each replicate's t-SNE map aligned to it."""
    if replicates < 2:
        raise ValueError(f"a standard error needs at least 2 replicates, got {replicates}")
    n_texts = Q.shape[1]
    uniform = np.full(n_texts, 1.0 / n_texts)
    kl = kl_estimate(Q)
    # sums of deviations from the full estimate: no R x K x K array, and no cancellation
    total, total_sq = np.zeros_like(kl), np.zeros_like(kl)
    positions, unique = [], []
    for replicate in range(replicates):
        sample = draw_texts(uniform, n_texts, seed + replicate)
        Y, _ = resampled_coordinates(Q[:, sample.indices], sample.weights)
        deviation = squared_distances(Y) / (2.0 * n_texts) - kl
        total += deviation
        total_sq += deviation**2
        unique.append(len(sample))
        if reference is not None:
            xy = tsne_embedding(Y, perplexity=perplexity, max_iter=max_iter, seed=seed + replicate, init=reference)
            positions.append(procrustes_align(xy, reference))
    kl_se = np.sqrt(np.maximum(total_sq - total**2 / replicates, 0.0) / (replicates - 1))
    return Bootstrap(kl, kl_se, np.stack(positions) if positions else None, np.array(unique))


def positional_spread(positions: np.ndarray, reference: np.ndarray) -> pd.DataFrame:
    """Per model: the 2x2 covariance of its replicate positions as an ellipse (1-sigma along its two
    principal axes, the major axis's angle) and the RMS distance of the replicates from the reference."""
    centred = positions - positions.mean(axis=0)
    covariance = np.einsum("rki,rkj->kij", centred, centred) / (len(positions) - 1)
    variances, axes = np.linalg.eigh(covariance)  # ascending: the major axis is the last
    major = axes[:, :, 1]
    return pd.DataFrame(
        {
            "sigma_major": np.sqrt(np.maximum(variances[:, 1], 0.0)),
            "sigma_minor": np.sqrt(np.maximum(variances[:, 0], 0.0)),
            "angle_deg": np.degrees(np.arctan2(major[:, 1], major[:, 0])) % 180.0,
            "rms_displacement": np.sqrt(np.mean(np.sum((positions - reference) ** 2, axis=2), axis=0)),
        }
    )


def model_table(model_ids: list[str], reference: np.ndarray, boot: Bootstrap) -> pd.DataFrame:
    """One row per model: its place, positional spread, and its nearest model's KL with standard error."""
    kl = boot.kl + np.diag(np.full(len(model_ids), np.inf))
    nearest = kl.argmin(axis=1)
    rows = np.arange(len(model_ids))
    table = pd.DataFrame({"model_id": model_ids, "x": reference[:, 0], "y": reference[:, 1]})
    table = pd.concat([table, positional_spread(boot.positions, reference)], axis=1)
    return table.assign(
        nearest=np.asarray(model_ids)[nearest],
        kl_nearest=boot.kl[rows, nearest],
        kl_nearest_se=boot.kl_se[rows, nearest],
    )


def pair_table(model_ids: list[str], boot: Bootstrap) -> pd.DataFrame:
    """Every pair i < j: the KL estimate, its bootstrap standard error and their ratio."""
    i, j = np.triu_indices(len(model_ids), k=1)
    ids = np.asarray(model_ids)
    kl, se = boot.kl[i, j], boot.kl_se[i, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(kl > 0, se / kl, np.nan)
    return pd.DataFrame({"model_a": ids[i], "model_b": ids[j], "kl": kl, "kl_se": se, "relative_se": relative})


def ellipse_figure(points: pd.DataFrame, hue: str, replicates: int, max_iter: int, colours=None):
    """The map with every model's 1-sigma ellipse of its bootstrap positions, coloured by `hue`."""
    from matplotlib.patches import Ellipse

    from lmmap.figures import plot_map
    from lmmap.palette import category_colours

    fig = plot_map(
        points,
        hue=hue,
        title=f"Map uncertainty: 1-σ ellipses over {replicates} text bootstraps (t-SNE {max_iter} iterations each)",
        colours=colours,
    )
    ax = fig.axes[0]
    lut = category_colours(points[hue], colours) if not pd.api.types.is_numeric_dtype(points[hue]) else {}
    for row in points.itertuples(index=False):
        ax.add_patch(
            Ellipse(
                (row.x, row.y),
                width=2 * row.sigma_major,
                height=2 * row.sigma_minor,
                angle=row.angle_deg,
                facecolor=lut.get(str(getattr(row, hue)), "grey"),
                edgecolor="black",
                linewidth=0.4,
                alpha=0.25,
            )
        )
    return fig
