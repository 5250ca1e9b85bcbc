"""The interactive model map (results/map.html): one self-contained HTML file that opens offline.

Drawn with plotly, chosen because it writes one standalone file with plotly.js embedded (no CDN), draws
the scatter as SVG (every point a DOM node, which a headless browser test can count), gives hover,
zoom and pan out of the box, and switches colourings with declarative `updatemenus` (JSON arguments to
plotly's own restyle/relayout, no hand-written JavaScript). Bokeh needs JavaScript callbacks for the
same switching and renders points on a canvas; Vega-Lite (altair) would need a second spec per colouring.

The figure: one trace holds every model (its marker colours are what the colour menu swaps), then one
legend-only trace per category or one colour-bar-only trace per numeric variable (shown with their
variable), the landmark labels and the highlighted model. Plotly has no text input, so the closest
declarative search is a second menu listing every model by name: choosing one marks it with an arrow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from lmmap.palette import CONTINUOUS, NEUTRAL, category_colours, human_size, numeric_ticks

NUMERIC = ("mean_loglik", "benchmark_mean", "size", "created")
LABELS = {
    "type": "type",
    "family": "family",
    "best_domain": "best domain",
    "mean_loglik": "mean log-likelihood",
    "benchmark_mean": "benchmark mean",
    "best_task": "best task",
    "size": "size (parameters)",
    "created": "creation date",
}


def default_landmarks(points: pd.DataFrame, kl: np.ndarray, limit: int = 20) -> list[str]:
    """One model per type, most numerous types first: the largest when sizes are known, else the most
    central (smallest mean estimated KL to the other models of its type)."""
    chosen = []
    for _, members in sorted(points.groupby("type").groups.items(), key=lambda item: (-len(item[1]), item[0])):
        rows = points.index.get_indexer(members)
        sizes = points["size"].to_numpy(dtype=float)[rows] if "size" in points else np.full(len(rows), np.nan)
        if np.isfinite(sizes).any():
            best = rows[np.nanargmax(sizes)]
        else:
            best = rows[kl[np.ix_(rows, rows)].mean(axis=1).argmin()]
        chosen.append(points["model_id"].iloc[best])
    return chosen[:limit]


def hover_text(points: pd.DataFrame, neighbours: list[list[tuple[str, float]]]) -> list[str]:
    """Per model: id, family, type, size, date, mean log-likelihood, benchmark mean and its neighbours."""
    texts = []
    for row, near in zip(points.to_dict("records"), neighbours):
        lines = [f"<b>{row['model_id']}</b>"]
        for column in ("family", "type"):
            if column in row and pd.notna(row[column]):
                lines.append(f"{column}: {row[column]}")
        lines.append(f"size: {human_size(10 ** row['size']) if pd.notna(row.get('size')) else 'unknown'}")
        if pd.notna(row.get("created_date")):
            lines.append(f"created: {row['created_date']}")
        lines.append(f"mean log-likelihood: {row['mean_loglik']:.1f} nats per text")
        if pd.notna(row.get("benchmark_mean")):
            lines.append(f"benchmark mean: {row['benchmark_mean']:.1f}")
        lines.append("nearest (estimated KL, bits per byte):")
        lines += [f"  {i}. {name}  {bpb:.4f}" for i, (name, bpb) in enumerate(near, 1)]
        texts.append("<br>".join(lines))
    return texts


def colouring(points: pd.DataFrame, variable: str, fixed: dict[str, str] | None) -> tuple[list[str], list[dict]]:
    """(colour of every point, the key traces: one per category, or one colour bar) of `variable`."""
    values = points[variable]
    if variable in NUMERIC or pd.api.types.is_numeric_dtype(values):  # e.g. a sheet's own numeric column
        v = values.to_numpy(dtype=float)
        lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
        scaled = np.clip((v - lo) / ((hi - lo) or 1.0), 0, 1)
        sampled = sample_colorscale(CONTINUOUS, [float(s) if np.isfinite(s) else 0.0 for s in scaled])
        colours = [c if np.isfinite(x) else NEUTRAL for c, x in zip(sampled, v)]
        ticks = numeric_ticks(variable, lo, hi)
        bar = {"title": {"text": LABELS.get(variable, variable)}, "len": 0.75}
        if ticks:
            bar |= {"tickvals": ticks[0], "ticktext": ticks[1]}
        key = {
            "name": variable,
            "showlegend": False,
            "marker": {
                "color": [lo],
                "colorscale": CONTINUOUS.capitalize(),
                "cmin": lo,
                "cmax": hi,
                "showscale": True,
                "colorbar": bar,
            },
        }
        return colours, [key]
    lut = category_colours(values, fixed)
    colours = [lut.get(str(v), NEUTRAL) if pd.notna(v) else NEUTRAL for v in values]
    keys = [
        {"name": name, "showlegend": True, "legendgroup": variable, "marker": {"color": colour, "size": 9}}
        for name, colour in lut.items()
    ]
    return colours, keys


def build_figure(
    points: pd.DataFrame,
    variables: list[str],
    neighbours: list[list[tuple[str, float]]],
    landmarks: list[str],
    fixed_colours: dict[str, dict[str, str]] | None = None,
    title: str = "Model map",
) -> go.Figure:
    """The interactive map of `points` (model_id, x, y and a column per variable)."""
    fixed_colours = fixed_colours or {}
    schemes = {v: colouring(points, v, fixed_colours.get(v)) for v in variables}
    first = variables[0]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=points["x"],
            y=points["y"],
            mode="markers",
            name="models",
            showlegend=False,
            hovertext=hover_text(points, neighbours),
            hoverinfo="text",
            marker={"color": schemes[first][0], "size": 9, "line": {"color": "black", "width": 0.5}},
        )
    )
    owner = [None]  # the variable each trace belongs to (None: always shown)
    for variable in variables:
        for key in schemes[variable][1]:
            fig.add_trace(
                go.Scatter(x=[None], y=[None], mode="markers", hoverinfo="skip", visible=variable == first, **key)
            )
            owner.append(variable)
    marked = points[points["model_id"].isin(landmarks)]
    fig.add_trace(
        go.Scatter(
            x=marked["x"],
            y=marked["y"],
            mode="text",
            text=marked["model_id"],
            textposition="top center",
            textfont={"size": 10},
            hoverinfo="skip",
            cliponaxis=False,
            showlegend=False,
            name="landmarks",
        )
    )
    owner.append(None)
    own_colours = [trace.marker.color for trace in fig.data]
    colour_menu = [
        {
            "label": LABELS.get(v, v),
            "method": "update",
            "args": [
                {"visible": [o is None or o == v for o in owner], "marker.color": [schemes[v][0], *own_colours[1:]]},
                {"legend.title.text": LABELS.get(v, v)},
            ],
        }
        for v in variables
    ]
    labels = [
        {
            "text": text,
            "x": x,
            "y": 1.045,
            "xref": "paper",
            "yref": "paper",
            "showarrow": False,
            "xanchor": "right",
            "yanchor": "middle",
        }
        for text, x in (("colour by", 0.12), ("find a model", 0.52))
    ]
    find_menu = [{"label": "(none)", "method": "relayout", "args": [{"annotations": labels}]}]
    for row in points.sort_values("model_id").itertuples():
        arrow = {
            "x": row.x,
            "y": row.y,
            "text": row.model_id,
            "showarrow": True,
            "arrowhead": 2,
            "arrowcolor": "red",
            "arrowwidth": 2,
            "ax": 40,
            "ay": -40,
            "bgcolor": "white",
            "bordercolor": "red",
            "font": {"color": "red"},
        }
        find_menu.append({"label": row.model_id, "method": "relayout", "args": [{"annotations": [*labels, arrow]}]})
    fig.update_layout(
        title={"text": title, "x": 0.5, "y": 0.98, "yanchor": "top"},
        template="plotly_white",
        height=800,
        hovermode="closest",
        dragmode="pan",
        hoverlabel={"bgcolor": "white", "font": {"size": 12}},
        xaxis={"title": "t-SNE 1", "showticklabels": False, "zeroline": False},
        yaxis={"title": "t-SNE 2", "showticklabels": False, "zeroline": False},
        legend={"title": {"text": LABELS.get(first, first)}, "itemsizing": "constant"},
        margin={"t": 100},
        annotations=labels,
        updatemenus=[
            {
                "buttons": colour_menu,
                "direction": "down",
                "x": 0.13,
                "xanchor": "left",
                "y": 1.045,
                "yanchor": "middle",
                "name": "colour",
            },
            {
                "buttons": find_menu,
                "direction": "down",
                "x": 0.53,
                "xanchor": "left",
                "y": 1.045,
                "yanchor": "middle",
                "name": "find",
            },
        ],
    )
    return fig


def write_html(fig: go.Figure, path) -> None:
    """One file, plotly.js embedded: opens without a network."""
    fig.write_html(
        path,
        include_plotlyjs=True,
        full_html=True,
        config={"scrollZoom": True, "displaylogo": False, "responsive": True},
    )
