"""Reading the pipeline's result files for the analyses, aligned on model ids (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lmmap.errors import InputError
from lmmap.storage import load_npz


def load_coordinates(path: str | Path) -> dict[str, np.ndarray]:
    return load_npz(path, required=("Q", "model_ids", "text_ids", "domains"))


def load_matrix(path: str | Path) -> dict[str, np.ndarray]:
    return load_npz(path, required=("L", "model_ids", "text_ids", "domains"))


def load_kl_estimate(path: str | Path) -> pd.DataFrame:
    """The pairwise KL estimate as a square frame indexed by model id."""
    arrays = load_npz(path, required=("KL", "model_ids"))
    ids = arrays["model_ids"].astype(str)
    return pd.DataFrame(arrays["KL"], index=ids, columns=ids)


def read_csv(path: str | Path, required: tuple[str, ...]) -> pd.DataFrame:
    """A CSV table keyed by `model_id`, with `required` columns and unique ids."""
    try:
        frame = pd.read_csv(path, dtype={"model_id": str})
    except FileNotFoundError:
        raise InputError(path, "file does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a readable CSV table ({exc})") from None
    for column in ("model_id", *required):
        if column not in frame.columns:
            raise InputError(path, "required column is missing", record="header", field=column)
    duplicated = frame["model_id"][frame["model_id"].duplicated()]
    if len(duplicated):
        raise InputError(path, "model id appears twice", record=duplicated.iloc[0], field="model_id")
    return frame.set_index("model_id", drop=False)


def read_models(path: str | Path) -> pd.DataFrame:
    return read_csv(path, required=("type",))


def read_benchmarks(path: str | Path) -> pd.DataFrame:
    """Benchmark scores (0-100): every column but `model_id` is a task, `mean` their mean."""
    frame = read_csv(path, required=("mean",))
    for column in task_columns(frame) + ["mean"]:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            raise InputError(
                path,
                f"'{frame[column][bad].iloc[0]}' is not a number",
                record=frame["model_id"][bad].iloc[0],
                field=column,
            )
        frame[column] = values
    return frame


def task_columns(benchmarks: pd.DataFrame) -> list[str]:
    return [c for c in benchmarks.columns if c not in ("model_id", "mean")]


def align(frame: pd.DataFrame, model_ids, path: str | Path, allow_missing: bool = False) -> pd.DataFrame:
    """Rows of `frame` in the order of `model_ids`; models it lacks are an error unless allowed (NaN)."""
    model_ids = [str(m) for m in model_ids]
    missing = [m for m in model_ids if m not in frame.index]
    if missing and not allow_missing:
        raise InputError(
            path,
            f"{len(missing)} model(s) of the matrix are missing, e.g. '{missing[0]}'",
            record=missing[0],
            field="model_id",
        )
    aligned = frame.reindex(model_ids)
    aligned["model_id"] = model_ids
    return aligned
