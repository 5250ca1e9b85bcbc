"""Publishing analysis results: figures (PNG + PDF) and tables (CSV + Markdown + LaTeX), each with a
provenance sidecar. Every analysis writes through these two functions, so all outputs look alike."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from lmmap.figures import save_figure
from lmmap.provenance import write_provenance
from lmmap.storage import write_text

TABLE_FORMATS = ("csv", "md", "tex")


def publish_figure(fig, stem: str | Path, step: str, inputs: Mapping | Iterable = (),
                   params: Mapping | None = None, started: float | None = None,
                   extra: Mapping | None = None) -> list[Path]:
    """Save `fig` as <stem>.png and <stem>.pdf and give each its provenance sidecar."""
    paths = save_figure(fig, stem)
    for path in paths:
        write_provenance(path, step, inputs, params, extra, started)
    return paths


def publish_csv(frame: pd.DataFrame, path: str | Path, step: str, inputs: Mapping | Iterable = (),
                params: Mapping | None = None, started: float | None = None,
                extra: Mapping | None = None) -> Path:
    """A plain CSV data file (e.g. every prediction) with its sidecar."""
    write_text(path, frame.to_csv(index=False))
    write_provenance(path, step, inputs, params, extra, started)
    return Path(path)


def publish_table(frame: pd.DataFrame, stem: str | Path, step: str, inputs: Mapping | Iterable = (),
                  params: Mapping | None = None, started: float | None = None,
                  extra: Mapping | None = None, digits: int = 3) -> list[Path]:
    """Write <stem>.csv (full precision), <stem>.md and <stem>.tex (rounded), each with a sidecar."""
    # object columns keep integers integral (an all-numeric frame would reach tabulate as floats)
    shown = frame.astype({c: object for c in frame.select_dtypes("integer").columns})
    rendered = {
        "csv": frame.to_csv(index=False),
        "md": shown.to_markdown(index=False, floatfmt=f".{digits}f") + "\n",
        "tex": frame.to_latex(index=False, float_format=f"%.{digits}f", escape=True),
    }
    paths = []
    for fmt in TABLE_FORMATS:
        path = Path(f"{stem}.{fmt}")
        write_text(path, rendered[fmt])
        write_provenance(path, step, inputs, params, extra, started)
        paths.append(path)
    return paths
