"""Publishing analysis results: figures (PNG + PDF) and tables (CSV + Markdown + LaTeX + HTML), each
with a provenance sidecar. Every analysis writes through these functions, so all outputs look alike.

The CSV is for programs (full precision, machine-readable columns); the Markdown, LaTeX and HTML are
for people: numbers rounded to what they mean, and where a table passes a `display` frame, columns
written as people write them (a model's size as "135M", a share as "19 of 19"). The HTML table is the
one the Snakemake report shows inline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from lmmap.figures import save_figure
from lmmap.provenance import write_provenance
from lmmap.storage import write_text

TABLE_FORMATS = ("csv", "md", "tex", "html")


def publish_figure(
    fig,
    stem: str | Path,
    step: str,
    inputs: Mapping | Iterable = (),
    params: Mapping | None = None,
    started: float | None = None,
    extra: Mapping | None = None,
) -> list[Path]:
    """Save `fig` as <stem>.png and <stem>.pdf and give each its provenance sidecar."""
    paths = save_figure(fig, stem)
    for path in paths:
        write_provenance(path, step, inputs, params, extra, started)
    return paths


def publish_csv(
    frame: pd.DataFrame,
    path: str | Path,
    step: str,
    inputs: Mapping | Iterable = (),
    params: Mapping | None = None,
    started: float | None = None,
    extra: Mapping | None = None,
    float_format: str | None = None,
) -> Path:
    """A plain CSV data file (e.g. every prediction) with its sidecar."""
    write_text(path, frame.to_csv(index=False, float_format=float_format))
    write_provenance(path, step, inputs, params, extra, started)
    return Path(path)


TABLE_STYLE = (
    "<style>table.lmmap-table{border-collapse:collapse;font-family:sans-serif;font-size:13px}"
    "table.lmmap-table th,table.lmmap-table td{padding:3px 8px;border-bottom:1px solid #ddd;"
    "text-align:left;vertical-align:top}table.lmmap-table th{background:#f3f3f3}</style>"
)


def html_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """`frame` as an HTML table with its own style (scoped to class lmmap-table): a file the report
    shows inline and that the landing page can embed as it is. No scripts, no external files; cells
    escaped, floats rounded to `digits`."""
    table = frame.to_html(
        index=False, border=0, na_rep="", escape=True, classes="lmmap-table", float_format=lambda x: f"{x:.{digits}f}"
    )
    return f'<meta charset="utf-8">\n{TABLE_STYLE}\n{table}\n'


def publish_table(
    frame: pd.DataFrame,
    stem: str | Path,
    step: str,
    inputs: Mapping | Iterable = (),
    params: Mapping | None = None,
    started: float | None = None,
    extra: Mapping | None = None,
    digits: int = 3,
    display: pd.DataFrame | None = None,
) -> list[Path]:
    """Write <stem>.csv (full precision) and <stem>.md, <stem>.tex and <stem>.html (rounded to
    `digits`; from `display` where given, the frame as people read it), each with a sidecar."""
    shown = frame if display is None else display
    # object columns keep integers integral (an all-numeric frame would reach tabulate as floats)
    shown = shown.astype(dict.fromkeys(shown.select_dtypes("integer").columns, object))
    rendered = {
        "csv": frame.to_csv(index=False),
        # a display frame's text stays as written ("-2962.33" is not re-read as a number and re-rounded)
        "md": shown.to_markdown(index=False, floatfmt=f".{digits}f", disable_numparse=display is not None) + "\n",
        "tex": shown.to_latex(index=False, float_format=f"%.{digits}f", escape=True),
        "html": html_table(shown, digits),
    }
    paths = []
    for fmt in TABLE_FORMATS:
        path = Path(f"{stem}.{fmt}")
        write_text(path, rendered[fmt])
        write_provenance(path, step, inputs, params, extra, started)
        paths.append(path)
    return paths
