"""One colour per category in every figure; numeric variables on colour bars with readable ticks."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from lmmap import figures, palette
from lmmap.analysis import plots, tsne_map

TYPES = ["llama-2", "mistral", "others", "qwen", "gemma", "phi"]


def legend_colours(legend) -> dict[str, str]:
    """{label: hex colour} of a matplotlib legend's entries (markers, scatter handles or patches)."""
    found = {}
    for handle, text in zip(legend.legend_handles, legend.get_texts()):
        if hasattr(handle, "get_markerfacecolor"):
            colour = handle.get_markerfacecolor()
        else:
            colour = handle.get_facecolor()
            if np.ndim(colour) == 2:
                if not len(colour):  # a ring (facecolors="none"), e.g. the flagged models
                    continue
                colour = colour[0]
        found[text.get_text()] = to_hex(colour)
    return found


@pytest.fixture(scope="module")
def models():
    rng = np.random.default_rng(0)
    K = 30
    return pd.DataFrame(
        {
            "model_id": [f"m{i}" for i in range(K)],
            "type": [TYPES[i % 6] for i in range(K)],
            "x": rng.normal(size=K),
            "y": rng.normal(size=K),
            "mean_loglik": rng.normal(-300, 5, K),
            "benchmark_mean": rng.uniform(20, 70, K),
            "size": np.log10(np.geomspace(1.2e8, 7e10, K)),
            "created": np.linspace(2022.1, 2024.6, K),
        }
    )


def test_category_colours():
    fixed = {"mistral": "#d62728"}
    lut = palette.category_colours(["b", "a", "mistral", None, "others", "a"], fixed)
    assert list(lut) == ["a", "b", "mistral", "others"]  # by name, the catch-all last
    assert lut["mistral"] == "#d62728" and lut["others"] == palette.NEUTRAL
    assert len(set(lut.values())) == 4 and "#d62728" not in (lut["a"], lut["b"])  # a fixed colour is not reused
    many = palette.category_colours([f"c{i}" for i in range(20)])
    assert len(set(many.values())) == 20
    assert palette.read_colour_table("config/paper/types.tsv")["mistral"] == "#d62728"


def test_one_colour_per_category_across_figures(models):
    """The map, the KL heatmap strip, the baseline and leakage scatters (the latter on a subset of the
    models, as when some lack scores) give each type the same colour."""
    fixed = palette.read_colour_table("config/paper/types.tsv")
    expected = palette.category_colours(models["type"], fixed)
    seen = {}
    fig = figures.plot_map(models, "type", "map", colours=fixed)
    seen["map"] = legend_colours(fig.axes[0].get_legend())
    fig = figures.plot_map(models, "type", colours=fixed, label=tsne_map.variable_label("type"))
    seen["variable map"] = legend_colours(fig.axes[0].get_legend())
    kl = np.abs(models[["x"]].to_numpy() - models[["x"]].to_numpy().T)
    fig = figures.plot_kl_heatmap(kl, models["model_id"].tolist(), models["type"].tolist(), "type", fixed)
    seen["kl heatmap"] = legend_colours(fig.legends[0])
    indexed = models.set_index("model_id")
    fig = plots.baseline_scatter(
        indexed["mean_loglik"],
        indexed[["benchmark_mean"]],
        indexed["type"],
        pd.DataFrame({"target": ["benchmark_mean"], "pearson": [0.5]}),
        fixed,
    )
    seen["baseline"] = legend_colours(fig.axes[0].get_legend())
    scored = models[models["type"] != "phi"].assign(flagged=False)
    fig = plots.leakage_scatter(scored, (np.array([20, 70]), np.array([-300, -290])), expected)
    seen["leakage"] = legend_colours(fig.axes[0].get_legend())
    for name, colours in seen.items():
        shown = {label: colour for label, colour in colours.items() if label in expected}
        assert shown == {t: expected[t] for t in shown}, name
        assert len(shown) >= 5, name
    assert expected["mistral"] == "#d62728"  # the paper's colour


@pytest.mark.parametrize(
    "variable, ticks", [("size", ["1B", "10B"]), ("created", ["2023-01", "2024-01"]), ("benchmark_mean", None)]
)
def test_numeric_variables_get_a_colour_bar(models, variable, ticks):
    fig = figures.plot_map(models, variable, label=tsne_map.variable_label(variable))
    bar = fig.axes[1]  # the colour bar's axes
    labels = [t.get_text() for t in bar.get_yticklabels()]
    assert fig.axes[0].get_legend() is None  # no step legend: every model has a value here
    if ticks:
        assert all(t in labels for t in ticks), labels
    assert bar.get_ylabel() == tsne_map.TITLES[variable]


def test_human_size_and_ticks():
    assert [palette.human_size(n) for n in (124e6, 1.5e9, 7e10, 350e3)] == ["124M", "1.5B", "70B", "350K"]
    assert palette.size_ticks(8.0, 10.0)[1] == ["100M", "300M", "1B", "3B", "10B"]
    assert palette.size_ticks(5.1, 5.9)[1] == ["126K", "300K", "794K"]  # within a decade: its ends too
    assert palette.date_ticks(2023.0, 2023.5)[1][:2] == ["2023-01", "2023-02"]
