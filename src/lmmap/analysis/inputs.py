"""Reading the pipeline's result files for the analyses, aligned on model ids (docs/architecture.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from lmmap.errors import InputError
from lmmap.storage import load_npz

log = logging.getLogger(__name__)


def load_coordinates(path: str | Path) -> dict[str, np.ndarray]:
    return load_npz(path, required=("Q", "model_ids", "text_ids", "domains"))


def coordinates_in_order(path: str | Path, model_ids: list[str], where: str | Path) -> np.ndarray:
    """The rows of the coordinates Q at `path` in the order of `model_ids` (a map's row order: t-SNE
    depends on it); `model_ids` (read from `where`) must be exactly the coordinates' models."""
    coords = load_coordinates(path)
    row_of = {m: i for i, m in enumerate(coords["model_ids"].astype(str))}
    if sorted(model_ids) != sorted(row_of):
        raise InputError(where, "models differ from the coordinates'", field="model_id")
    return coords["Q"][[row_of[m] for m in model_ids]]


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


class AnalysisData:
    """The matrix L, the coordinates Q and the tables, all aligned on the matrix's model order."""

    @classmethod
    def load(
        cls,
        matrix_path: str,
        models_table: str,
        coordinates: str | None = None,
        benchmarks: str | None = None,
        need_benchmarks: bool = False,
    ) -> AnalysisData:
        data = cls()
        matrix = load_matrix(matrix_path)
        data.model_ids = matrix["model_ids"].astype(str).tolist()
        data.L, data.domains = matrix["L"], matrix["domains"].astype(str)
        data.Q, data.clip_value = None, None
        if coordinates:
            coords = load_coordinates(coordinates)
            if coords["model_ids"].astype(str).tolist() != data.model_ids:
                raise InputError(coordinates, "models differ from the matrix's", field="model_ids")
            data.Q = coords["Q"]
            data.clip_value = float(coords["clip_value"]) if "clip_value" in coords else None
        data.models = align(read_models(models_table), data.model_ids, models_table)
        data.models_path = models_table
        data.benchmarks, data.tasks = None, []
        if benchmarks:
            table = read_benchmarks(benchmarks)
            data.tasks = task_columns(table)
            data.benchmarks = align(table, data.model_ids, benchmarks, allow_missing=True)
        elif need_benchmarks:
            raise InputError("--benchmarks", "this analysis needs benchmark scores")
        return data

    def require_column(self, column: str, purpose: str) -> None:
        """The models table must have `column` (a config choice such as `group_by`), named in the error."""
        if column not in self.models.columns:
            raise InputError(self.models_path, f"no such column {purpose}", field=column)

    def targets(self) -> pd.DataFrame:
        """Benchmark targets (tasks + mean) of the models that have all of them, indexed by model id."""
        frame = self.benchmarks.set_index("model_id")[[*self.tasks, "mean"]]
        complete = frame.dropna()
        if len(complete) < len(frame):
            log.warning("%d model(s) lack some benchmark score and are left out", len(frame) - len(complete))
        return complete

    def clipped_L(self) -> np.ndarray:
        """L clipped as for the coordinates (the same input for features Q and L)."""
        return self.L if self.clip_value is None else np.maximum(self.L, self.clip_value)

    def mean_loglik(self) -> pd.Series:
        return pd.Series(self.L.mean(axis=1), index=self.model_ids, name="mean_loglik")
