"""The model sheet: one validated row per model to map.

Columns (tab-separated, header required): `model_id`, `source` (a Hugging Face repo id, a local
directory, or a `.gguf` file), and optional `revision`, `gguf_file`, `dtype`, `family`, `type`,
`size` (parameters, e.g. 135M, 7B or a number), `created` (ISO date), `trust_remote_code`. Any other
column is kept as the user's own (e.g. `license`, `params_active`): carried into the models table and
usable as a map colour (`sheet_extras`); its name must be an identifier and not one the table computes.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from lmmap.errors import InputError

COLUMNS = (
    "model_id",
    "source",
    "revision",
    "gguf_file",
    "dtype",
    "family",
    "type",
    "size",
    "created",
    "trust_remote_code",
)
REQUIRED = ("model_id", "source")
ZOO_ID_PREFIX = "zoo/"  # model ids of the demo zoo (lmmap.zoo), reserved: a sheet row may not use it
DTYPES = ("auto", "float32", "float16", "bfloat16")
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMBT]?)\s*$", re.IGNORECASE)
_SCALE = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ].*)?$")
_EXTRA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")  # `org/name` or `name`: never a path (`/`, `.`, `~`)
COMPUTED = ("slug", "n_params", "mean_loglik", "x", "y")  # columns the pipeline adds to the models table


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    model_id: str
    source: str
    revision: str | None = None
    gguf_file: str | None = None
    dtype: str = "auto"
    family: str = "unknown"
    type: str = "unknown"
    size: float | None = None
    created: str | None = None
    trust_remote_code: bool = False

    @property
    def slug(self) -> str:
        return slugify(self.model_id)

    @property
    def is_zoo(self) -> bool:
        """A demo zoo model (lmmap.zoo): the workflow builds its weights before anything loads them."""
        return self.model_id.startswith(ZOO_ID_PREFIX)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"slug": self.slug}

    @classmethod
    def from_dict(cls, record: dict) -> ModelSpec:
        """The spec of a models.json entry (its slug and the sheet's own extra columns left aside)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})


def is_hub_source(source: str) -> bool:
    """True for a Hugging Face repo id (`org/name`); False for a local directory or file."""
    if source.lower().endswith(".gguf") or Path(source).exists():
        return False
    return bool(_HUB_ID.match(source))


def slugify(model_id: str) -> str:
    """A file-name- and wildcard-safe form of a model id: `org/name` -> `org--name`."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id.replace("/", "--")).strip("._")
    return slug or "_"


def parse_size(text: str) -> float:
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a parameter count such as 135M, 7B or 1.2e9")
    return float(match.group(1)) * _SCALE[match.group(2).upper()]


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("", "false", "0", "no"):
        return False
    raise ValueError(f"'{text}' is not true/false")


def _row_to_spec(path: Path, line: int, row: dict) -> ModelSpec:
    for name in REQUIRED:
        if not (row.get(name) or "").strip():
            raise InputError(path, "is empty", record=f"line {line}", field=name)
    values = {k: (row.get(k) or "").strip() for k in COLUMNS}
    parsers = {"size": parse_size, "trust_remote_code": parse_bool}
    kwargs: dict = {}
    for name, text in values.items():
        if name in parsers:
            try:
                kwargs[name] = parsers[name](text) if (text or name == "trust_remote_code") else None
            except ValueError as exc:
                raise InputError(path, str(exc), record=f"line {line}", field=name) from None
        elif text:
            kwargs[name] = text
    if kwargs.get("dtype", "auto") not in DTYPES:
        raise InputError(
            path, f"'{kwargs['dtype']}' is not one of {', '.join(DTYPES)}", record=f"line {line}", field="dtype"
        )
    if kwargs["model_id"].startswith(ZOO_ID_PREFIX):
        raise InputError(
            path, f"ids starting with '{ZOO_ID_PREFIX}' are the demo zoo's", record=f"line {line}", field="model_id"
        )
    if "created" in kwargs and not _DATE.match(kwargs["created"]):
        raise InputError(
            path, f"'{kwargs['created']}' is not an ISO date (YYYY-MM-DD)", record=f"line {line}", field="created"
        )
    return ModelSpec(**kwargs)


def read_sheet(path: str | Path) -> list[ModelSpec]:
    """Read and validate a model sheet; ids and their slugs must be unique (extra columns: `sheet_extras`)."""
    return _read(path)[0]


def sheet_extras(path: str | Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The sheet's own extra columns, in sheet order, and {model_id: {column: text}} (empty cells left out)."""
    _, names, extras = _read(path)
    return names, extras


def _read(path: str | Path) -> tuple[list[ModelSpec], list[str], dict[str, dict[str, str]]]:
    """Read and validate a model sheet; ids and their slugs must be unique.

    Plain TSV: a cell is the text between tabs, no quoting (a stray `"` must not swallow tabs and
    lines); `#` lines are comments only before the header (after it, `#` may start a model id);
    every row has exactly the header's cells."""
    path = Path(path)
    try:
        lines = path.read_bytes().decode("utf-8-sig").split("\n")  # -sig: a spreadsheet's BOM is no column
    except FileNotFoundError:
        raise InputError(path, "model sheet does not exist") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"invalid UTF-8 at byte {exc.start}: save the sheet as UTF-8") from None
    numbered = [(i + 1, line.removesuffix("\r")) for i, line in enumerate(lines)]
    numbered = [(n, line) for n, line in numbered if line.strip()]
    while numbered and numbered[0][1].startswith("#"):
        numbered.pop(0)
    if not numbered:
        raise InputError(path, "model sheet is empty (a header line is required)")
    header_line, header_text = numbered[0]
    header = [h.strip() for h in header_text.split("\t")]
    where = f"line {header_line} (header)"
    extra = [h for h in header if h not in COLUMNS]
    bad = [h for h in extra if not _EXTRA.match(h) or h in COMPUTED]
    if bad:
        raise InputError(
            path,
            f"column(s) {bad}: an extra column's name must be an identifier (letters, digits, "
            f"_) and none of {list(COMPUTED)}; the sheet's own columns are {list(COLUMNS)}",
            record=where,
        )
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise InputError(path, f"column(s) {repeated} appear more than once", record=where)
    for name in REQUIRED:
        if name not in header:
            raise InputError(path, "required column is missing", record=where, field=name)
    specs, extras = [], {}
    for line, text in numbered[1:]:
        cells = text.split("\t")
        if len(cells) != len(header):
            raise InputError(
                path,
                f"{len(cells)} cells, but the header has {len(header)} (cells are "
                "separated by tabs; quotes are not special)",
                record=f"line {line}",
            )
        row = dict(zip(header, cells))
        specs.append(_row_to_spec(path, line, row))
        extras[specs[-1].model_id] = {k: row[k].strip() for k in extra if row[k].strip()}
    check_unique(specs, path)
    return specs, extra, extras


def check_unique(specs: list[ModelSpec], path: str | Path) -> None:
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.slug in seen:
            raise InputError(
                path,
                f"duplicate model id: '{spec.model_id}' and '{seen[spec.slug]}' map to the same slug '{spec.slug}'",
                record=spec.model_id,
                field="model_id",
            )
        seen[spec.slug] = spec.model_id


def created_on_or_after(created, cut_date: str | None):
    """A boolean array: which of the `created` dates (ISO strings, None for undated) fall on or after
    `cut_date` (all False without one; undated models never do). The growth cut: models created since
    are placed on a published map rather than mapped."""
    import numpy as np
    import pandas as pd

    dates = pd.to_datetime(pd.Series(list(created), dtype=object), errors="coerce", utc=True)
    if not cut_date:
        return np.zeros(len(dates), dtype=bool)
    return (dates >= pd.Timestamp(cut_date, tz="UTC")).to_numpy()
