"""The model list (paper Appendix L): id, name, type, size, date, mean log-likelihood, benchmark mean."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmmap.analysis.tsne_map import map_order


def model_list(model_ids: list[str], L: np.ndarray, models: pd.DataFrame,
               benchmarks: pd.DataFrame | None) -> pd.DataFrame:
    """Rows in the map's order (creation date, then name), numbered from 1; inputs aligned to ids."""
    created = models["created"] if "created" in models else None
    size = pd.to_numeric(models.get("n_params", models.get("size")), errors="coerce")
    frame = pd.DataFrame({
        "name": model_ids,
        "type": models["type"].fillna("unknown").to_numpy(),
        "size_billions": (size / 1e9).round(3).to_numpy(),
        "date": created.fillna("").astype(str).str[:10].to_numpy() if created is not None else "",
        "mean_loglik": L.mean(axis=1),
        "benchmark_mean": benchmarks["mean"].to_numpy() if benchmarks is not None else np.nan,
    })
    frame = frame.iloc[map_order(model_ids, created)].reset_index(drop=True)
    frame.insert(0, "id", np.arange(1, len(frame) + 1))
    return frame
