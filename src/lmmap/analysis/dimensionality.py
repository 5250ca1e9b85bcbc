"""How many dimensions the map needs: PCA of Q and the components reaching each variance level."""

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
