"""How many dimensions the map needs: PCA of Q and the components reaching each variance level (the
table, the curve and its figure, lmmap.figures.plot_pca_variance, come from one computation)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmmap.embedding import components_needed, pca_cumulative_variance


def dimensionality_table(Q: np.ndarray, levels: list[float]) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows (level, components, K, N) and the cumulative explained-variance curve itself."""
    cumulative = pca_cumulative_variance(Q)
    table = pd.DataFrame(
        {
            "variance_level": [float(level) for level in levels],
            "components": [components_needed(cumulative, level) for level in levels],
            "n_models": Q.shape[0],
            "n_texts": Q.shape[1],
        }
    )
    return table, cumulative


def variance_curve(cumulative: np.ndarray, table: pd.DataFrame) -> pd.DataFrame:
    """The curve, one row per number of components, with a `reaches_<level>` flag on the row where
    each level of `table` (dimensionality_table) is first reached."""
    curve = pd.DataFrame({"components": np.arange(1, len(cumulative) + 1), "cumulative_variance": cumulative})
    for level, needed in zip(table["variance_level"], table["components"]):
        curve[f"reaches_{level:g}"] = curve["components"] == needed
    return curve
