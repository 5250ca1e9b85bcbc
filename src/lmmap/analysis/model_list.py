"""The model list (paper Appendix L): id, name, model type, size, date, downloads, mean
log-likelihood, benchmark mean."""

from __future__ import annotations

import numpy as np
import pandas as pd


def model_type_column(models: pd.DataFrame) -> str:
    """The paper's 29-class `model_type` where the table has it (paper mode), else the sheet's `family`."""
    return "model_type" if "model_type" in models else "family"


def model_list(
    model_ids: list[str], L: np.ndarray, models: pd.DataFrame, benchmarks: pd.DataFrame | None
) -> pd.DataFrame:
    """Rows alphabetical by model id and numbered from 1, as in the paper; inputs aligned to ids.
    `downloads` is listed when the models table has it (the released model data does)."""
    created = models["created"] if "created" in models else pd.Series("", index=models.index)
    size = pd.to_numeric(models.get("n_params", models.get("size")), errors="coerce")
    type_column = model_type_column(models)
    types = models[type_column] if type_column in models else pd.Series(None, index=models.index, dtype=object)
    frame = pd.DataFrame(
        {
            "name": model_ids,
            "model_type": types.astype(object).fillna("unknown").astype(str).to_numpy(),
            "size_billions": (size / 1e9).to_numpy(),  # full precision: 135M is 0.135, not 0.000
            "date": created.fillna("").astype(str).str[:10].to_numpy(),
            "mean_loglik": L.mean(axis=1),
            "benchmark_mean": benchmarks["mean"].to_numpy() if benchmarks is not None else np.nan,
        }
    )
    if "downloads" in models:
        frame.insert(4, "downloads", pd.to_numeric(models["downloads"], errors="coerce").astype("Int64").to_numpy())
    frame = frame.sort_values("name", kind="stable").reset_index(drop=True)
    frame.insert(0, "id", np.arange(1, len(frame) + 1))
    return frame


def readable_model_list(table: pd.DataFrame) -> pd.DataFrame:
    """The list as people read it: the size as "135M" or "7B" in place of `size_billions`, and the
    log-likelihood and benchmark mean at the precision they mean (2 and 1 decimals)."""
    from lmmap.palette import human_size

    shown = table.copy()
    shown.insert(
        shown.columns.get_loc("size_billions"),
        "size",
        [human_size(v * 1e9) if pd.notna(v) else "unknown" for v in table["size_billions"]],
    )
    shown = shown.drop(columns="size_billions")
    shown["mean_loglik"] = table["mean_loglik"].map(lambda v: f"{v:.2f}" if pd.notna(v) else "")
    shown["benchmark_mean"] = table["benchmark_mean"].map(lambda v: f"{v:.1f}" if pd.notna(v) else "")
    return shown
