"""Colours of every figure: one palette per variable, shared by the static figures and the interactive map.

A categorical variable gets its colours from a fixed table when one is given (the paper's Fig. 1 type
colours, config/paper/types.tsv), else from a qualitative palette of distinct hues. Colours are assigned
over all the models' categories in sorted order, so that a figure showing only some models (the
leakage scatter: the scored ones) still gives each category the colour it has everywhere else.

Numeric variables get a continuous colour bar: model size on a log10 scale with readable ticks (100M,
1B, 10B), creation dates (decimal years) ticked at calendar dates, scores and log-likelihoods linear.
Only the standard library here: the interactive map and the matplotlib figures both use it.
"""

from __future__ import annotations

import colorsys
import csv
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

# tab10 without its grey (kept for missing or catch-all categories): hues that read as unrelated
QUALITATIVE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
NEUTRAL = "#b0b0b0"
NEUTRAL_CATEGORIES = ("unknown", "others", "other", "nan", "none", "")
CONTINUOUS = "viridis"


def categories(values: Iterable) -> list[str]:
    """The distinct non-missing values, as strings, in sorted order."""
    return sorted({str(v) for v in values if v is not None and v == v})


def distinct_hues(n: int) -> list[str]:
    """`n` colours of evenly spaced hues, alternately darker and lighter, neighbours far apart in hue."""
    step = next(s for s in (7, 5, 3, 1) if math.gcd(s, n) == 1 or s == 1)
    colours = []
    for i in range(n):
        hue = (i * step % n) / n
        r, g, b = colorsys.hls_to_rgb(hue, 0.42 if i % 2 else 0.62, 0.75)
        colours.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return colours


def category_colours(values: Iterable, fixed: Mapping[str, str] | None = None) -> dict[str, str]:
    """{category: hex colour} for every category among `values`: `fixed` colours first, neutral grey for
    catch-all names (unknown, others), then the qualitative palette (distinct hues past nine)."""
    fixed = dict(fixed or {})
    names = categories(values)
    free = [c for c in names if c not in fixed and c.lower() not in NEUTRAL_CATEGORIES]
    palette = list(QUALITATIVE) if len(free) <= len(QUALITATIVE) else distinct_hues(len(free))
    taken = {c.lower() for c in fixed.values()}
    palette = [c for c in palette if c not in taken] + [c for c in palette if c in taken]
    colours = {c: fixed.get(c, NEUTRAL) for c in names if c in fixed or c.lower() in NEUTRAL_CATEGORIES}
    colours |= dict(zip(free, palette))
    # legend order: by name, catch-all categories last
    return {c: colours[c] for c in sorted(names, key=lambda c: (c.lower() in NEUTRAL_CATEGORIES, c))}


def rgba_to_hex(text: str) -> str:
    """'r,g,b[,a]' with components in 0-1 (the paper's TSV) -> '#rrggbb'."""
    r, g, b = (float(x) for x in text.split(",")[:3])
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def read_colour_table(path: str | Path | None) -> dict[str, str]:
    """{category: hex} from a TSV whose first column names the category and whose `colour_rgba`
    (r,g,b,a in 0-1) or `colour` (hex) column gives its colour; {} without a path."""
    if not path:
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader((line for line in handle if not line.startswith("#")), delimiter="\t"))
    if not rows:
        return {}
    key = next(iter(rows[0]))
    return {row[key]: rgba_to_hex(row["colour_rgba"]) if row.get("colour_rgba") else row["colour"] for row in rows}


def human_size(n_params: float) -> str:
    """Parameter counts as people write them: 124M, 1.5B, 70B, 350K."""
    if n_params is None or n_params != n_params or n_params <= 0:
        return "unknown"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n_params >= scale:
            return f"{n_params / scale:.3g}{suffix}"
    return f"{n_params:.0f}"


def size_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Ticks for log10(parameters) in [lo, hi]: powers of ten, and 3x steps when the range is narrow."""
    factors = (1, 3) if hi - lo < 2.5 else (1,)
    ticks = [math.log10(f) + e for e in range(math.floor(lo), math.ceil(hi) + 1) for f in factors]
    ticks = [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]
    if len(ticks) < 3:  # a range within a decade or so: name its ends too, unless a tick is close
        ticks = sorted([*ticks, *(end for end in (lo, hi) if all(abs(end - t) > 0.15 for t in ticks))])
    return ticks, [human_size(10**t) for t in ticks]


def date_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Ticks for decimal years in [lo, hi] at calendar dates: years, or months for a short span."""
    months = next(m for m in (1, 2, 3, 6, 12, 24, 60) if (hi - lo) * 12 / m <= 8)
    ticks, labels = [], []
    index = math.floor(lo * 12 / months) * months  # months since year 0, aligned to the step
    while index / 12 <= hi + 1e-9:
        year, month = divmod(index, 12)
        value = year + _day_fraction(year, month)
        if value >= lo - 1e-9:
            ticks.append(value)
            labels.append(str(year) if months % 12 == 0 else f"{year}-{month + 1:02d}")
        index += months
    return ticks or [lo, hi], labels or [f"{lo:.2f}", f"{hi:.2f}"]


def _day_fraction(year: int, month: int) -> float:
    """The decimal-year offset of the first day of `month` (0-based), as tsne_map.decimal_year counts."""
    import datetime as dt

    return (dt.date(year, month + 1, 1).timetuple().tm_yday - 1) / 365.25


def numeric_ticks(variable: str, lo: float, hi: float) -> tuple[list[float], list[str]] | None:
    """Colour-bar ticks for the variables with their own scale (size, created); None: the default."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return None
    if variable == "size":
        return size_ticks(lo, hi)
    if variable == "created":
        return date_ticks(lo, hi)
    return None
