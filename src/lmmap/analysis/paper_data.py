"""Paper-data mode: converting the paper's released pickles, once, into the pipeline's safe formats.

Released files (downloaded by the user): `raw_log-likelihood_1018.pkl` (dict model -> 10,000
log-likelihoods, in the order of `texts-10k-pile.jsonl`) and `model-data-1018.pkl` (list of dicts
with `model_name`, `model_type`, `model_size`, `created_at`, benchmark scores `score_v1_<task>`, ...).
Unpickling can execute code, so it happens only with an explicit opt-in, and even then only the
constructors listed in SAFE_GLOBALS (builtin containers, numbers, strings, dates, numpy arrays and
scalars, pandas Timestamps) may be called. Everything downstream
reads the npz/csv files written here, which follow docs/architecture.md.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from lmmap.errors import InputError
from lmmap.sheet import read_sheet, slugify
from lmmap.texts import TextSet

OPT_IN_FIELD = "paper.allow_pickle"
MODEL_FIELDS = ("model_name", "model_type", "model_size", "created_at")
TASKS = {
    "score_v1_ARC": "ARC",
    "score_v1_HellaSwag": "HellaSwag",
    "score_v1_MMLU": "MMLU",
    "score_v1_TruthfulQA": "TruthfulQA",
    "score_v1_Winogrande": "Winogrande",
    "score_v1_GSM8K": "GSM8K",
}
MEAN_FIELD = "score_v1_6-taskmean"
# The exact globals the released pickles need, by pickle protocol 2-5 and numpy 1.x/2.x module names:
# containers and numbers, numpy arrays and scalars, pandas Timestamps/NaT with a UTC timezone. Nothing
# else resolves: no module prefix, no dotted attribute chain, no loader, no other callable.
SAFE_GLOBALS = frozenset(
    {
        *(
            (module, name)
            for module in ("builtins", "__builtin__")  # protocol 2 names the Python 2 module
            for name in (
                "list",
                "dict",
                "set",
                "frozenset",
                "tuple",
                "int",
                "float",
                "complex",
                "str",
                "bytes",
                "bytearray",
                "bool",
            )
        ),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),  # protocol 2 stores bytes as latin-1 text (str -> bytes only)
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("pytz", "_UTC"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        *(
            (module, name)
            for module in ("numpy.core.multiarray", "numpy._core.multiarray")
            for name in ("_reconstruct", "scalar")
        ),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
        ("pandas._libs.tslibs.nattype", "_nat_unpickle"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds only plain data: a global outside SAFE_GLOBALS is refused by name."""

    def find_class(self, module: str, name: str):
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} (not one of the plain-data types the released pickles need)"
        )


def read_pickle(path: str | Path, allow_pickle: bool):
    if not allow_pickle:
        raise InputError(
            path,
            "reading a pickle can execute code; check where the file comes from, then "
            f"opt in by setting `{OPT_IN_FIELD}: true` in the config",
            field=OPT_IN_FIELD,
        )
    try:
        with open(path, "rb") as fh:
            return _RestrictedUnpickler(fh).load()
    except FileNotFoundError:
        raise InputError(path, "file does not exist") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as exc:
        raise InputError(path, f"not a readable released pickle ({exc})") from None


def loglik_matrix(raw: object, path: str | Path, model_names: list[str], n_texts: int) -> np.ndarray:
    """Rows of the raw dict in `model_names` order as float64 [K, N]; checks length and finiteness."""
    if not isinstance(raw, dict):
        raise InputError(path, f"expected a dict model -> log-likelihoods, found {type(raw).__name__}")
    rows = []
    for name in model_names:
        if name not in raw:
            raise InputError(path, "model of the model data has no log-likelihoods", record=name)
        row = np.asarray(raw[name], dtype=np.float64).ravel()
        if row.shape != (n_texts,):
            raise InputError(path, f"{row.size} values, expected one per text ({n_texts})", record=name)
        if not np.isfinite(row).all():
            raise InputError(path, f"non-finite value at text {int(np.flatnonzero(~np.isfinite(row))[0])}", record=name)
        rows.append(row)
    return np.vstack(rows)


def model_records(data: object, path: str | Path) -> list[dict]:
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InputError(path, "expected a list of dicts (one per model)")
    for i, record in enumerate(data):
        for field in (*MODEL_FIELDS, *TASKS, MEAN_FIELD):
            if field not in record:
                raise InputError(path, "field is missing", record=record.get("model_name", i), field=field)
    names = [str(r["model_name"]) for r in data]
    if len(set(names)) != len(names):
        raise InputError(path, "a model appears twice", field="model_name")
    return data


def read_types(path: str | Path | None) -> dict[str, str]:
    """model_id -> the paper's 12-class Fig. 1 type, from the `type` column of config/paper/models.tsv."""
    if not path:
        return {}
    return {spec.model_id: spec.type for spec in read_sheet(path)}  # the sheet's plain-TSV rules


def timestamp(value: object) -> str:
    """The full ISO creation time (the map's row order needs more than the day), "" when unknown."""
    return pd.Timestamp(value).isoformat() if pd.notna(value) else ""


def parameters(size: object) -> float:
    """The released `model_size` as a parameter count (values under a million are billions)."""
    value = pd.to_numeric(size, errors="coerce")
    if pd.isna(value):
        return float("nan")
    return float(value) * 1e9 if value < 1e6 else float(value)


def models_table(records: list[dict], L: np.ndarray, types: dict[str, str]) -> pd.DataFrame:
    """models.csv: the sheet columns + slug, n_params, mean_loglik (docs/architecture.md), and the
    paper's two labels under names that cannot be confused: `model_type` (29 classes, the model data's
    `model_type`, the grouping of the ridge CV) and `type_fig1` (12 classes, Fig. 1's colours). The
    sheet columns `family` and `type` hold the same two labels for the generic steps (maps, figures)."""
    names = [str(r["model_name"]) for r in records]
    model_type = [str(r["model_type"]) for r in records]
    type_fig1 = [types.get(n, t) for n, t in zip(names, model_type)]
    table = pd.DataFrame(
        {
            "model_id": names,
            "source": names,
            "revision": "",
            "gguf_file": "",
            "dtype": "auto",
            "family": model_type,
            "type": type_fig1,
            "size": [r["model_size"] for r in records],
            "created": [timestamp(r["created_at"]) for r in records],
            "trust_remote_code": False,
            "slug": [slugify(n) for n in names],
            "n_params": [parameters(r["model_size"]) for r in records],
            "mean_loglik": L.mean(axis=1),
            "model_type": model_type,
            "type_fig1": type_fig1,
        }
    )
    if any("downloads" in r for r in records):
        table["downloads"] = pd.to_numeric(pd.Series([r.get("downloads") for r in records]), errors="coerce")
    return table


def benchmark_table(records: list[dict]) -> pd.DataFrame:
    """scores.csv: model_id, one column per task (0-100), mean (the released 6-task mean)."""
    frame = pd.DataFrame({"model_id": [str(r["model_name"]) for r in records]})
    for field, task in TASKS.items():
        frame[task] = pd.to_numeric(pd.Series([r[field] for r in records]), errors="coerce")
    frame["mean"] = pd.to_numeric(pd.Series([r[MEAN_FIELD] for r in records]), errors="coerce")
    return frame


def convert(
    loglik_path: str | Path,
    model_data_path: str | Path,
    text_set: TextSet,
    allow_pickle: bool,
    types_path: str | Path | None = None,
) -> tuple[dict[str, np.ndarray], pd.DataFrame, pd.DataFrame]:
    """(matrix arrays for loglik.npz, models table, benchmark table) from the released files."""
    records = model_records(read_pickle(model_data_path, allow_pickle), model_data_path)
    names = [str(r["model_name"]) for r in records]
    L = loglik_matrix(read_pickle(loglik_path, allow_pickle), loglik_path, names, len(text_set))
    matrix = {
        "L": L,
        "model_ids": np.array(names),
        "text_ids": np.array(text_set.ids),
        "domains": np.array(text_set.domains),
        "text_set_sha256": np.array(text_set.sha256),
    }
    return matrix, models_table(records, L, read_types(types_path)), benchmark_table(records)
