"""The interactive map (in headless Chromium when installed) and `lmmap neighbours`."""

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from lmmap.cli import main
from lmmap.coords import kl_estimate, nats_to_bits_per_byte
from lmmap.neighbours import nearest, nearest_all
from lmmap.provenance import read_provenance
from synthetic_maps import save_matrix_and_coordinates

K, N = 24, 60
TYPES = ["llama", "mistral", "others"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """24 models of 3 types on 60 texts of 2 domains, with benchmarks for all but two models."""
    root = tmp_path_factory.mktemp("explore")
    rng = np.random.default_rng(1)
    ids = [f"org/model-{i:02d}" for i in range(K)]
    domains = np.repeat(["code", "wiki"], N // 2)
    L = -300 + rng.normal(size=(K, 2)) @ rng.normal(size=(2, N)) * 4 + rng.normal(size=(K, N))
    save_matrix_and_coordinates(root, L, ids, domains, stored_clip=0.0)
    models = pd.DataFrame(
        {
            "model_id": ids,
            "type": [TYPES[i % 3] for i in range(K)],
            "family": [f"fam{i % 4}" for i in range(K)],
            "n_params": np.geomspace(1e8, 7e10, K),
            "created": [f"2023-{1 + i % 12:02d}-15" for i in range(K)],
        }
    )
    models.to_csv(root / "models.csv", index=False)
    models.assign(x=rng.normal(size=K), y=rng.normal(size=K)).to_csv(root / "tsne.csv", index=False)
    bench = pd.DataFrame({"model_id": ids, "arc": rng.uniform(20, 80, K), "mmlu": rng.uniform(20, 80, K)})
    bench.loc[:1, ["arc", "mmlu"]] = np.nan
    bench["mean"] = bench[["arc", "mmlu"]].mean(axis=1)
    bench.to_csv(root / "scores.csv", index=False)
    with open(root / "texts.jsonl", "w") as handle:
        for j in range(N):
            handle.write(json.dumps({"id": f"t{j}", "domain": domains[j], "text": "x" * 500}) + "\n")
    (root / "types.tsv").write_text("type\tcolour_rgba\nllama\t1,0,0,1\n")
    return root


@pytest.fixture(scope="module")
def html(results):
    out = results / "map.html"
    assert (
        main(
            [
                "interactive-map",
                "--matrix",
                str(results / "loglik.npz"),
                "--coordinates",
                str(results / "coordinates.npz"),
                "--models-table",
                str(results / "models.csv"),
                "--embedding",
                str(results / "tsne.csv"),
                "--texts",
                str(results / "texts.jsonl"),
                "--benchmarks",
                str(results / "scores.csv"),
                "--type-colours",
                str(results / "types.tsv"),
                "--max-landmarks",
                "20",
                "--neighbours",
                "5",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


def test_neighbours_match_the_kl_estimate():
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(8, 50))
    ids = [f"m{i}" for i in range(8)]
    table = nearest(Q, ids, "m3", k=3, text_bytes=100.0)
    kl = kl_estimate(Q)[3]
    expected = [ids[j] for j in np.argsort(np.where(np.arange(8) == 3, np.inf, kl))[:3]]
    assert table["model_id"].tolist() == expected
    assert table["kl_nats"].to_numpy() == pytest.approx(kl[[ids.index(m) for m in expected]])
    assert table["kl_bits_per_byte"].to_numpy() == pytest.approx(nats_to_bits_per_byte(table["kl_nats"], 100.0))
    index, kl_all = nearest_all(Q, 3)
    assert [ids[j] for j in index[3]] == expected and kl_all[3] == pytest.approx(table["kl_nats"])


def test_neighbours_command(results, capsys):
    assert (
        main(
            [
                "neighbours",
                "org/model-05",
                "--map",
                str(results / "coordinates.npz"),
                "--texts",
                str(results / "texts.jsonl"),
                "-k",
                "4",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "org/model-05" in out.splitlines()[0] and "kl_bits_per_byte" in out
    assert len(re.findall(r"org/model-\d\d", out)) == 5  # the heading + 4 rows
    assert main(["neighbours", "model-0", "--map", str(results / "coordinates.npz")]) == 2
    assert "did you mean" in capsys.readouterr().err


def in_page(text: str) -> str:
    """`text` as plotly writes strings into the page (HTML-sensitive characters escaped)."""
    return json.dumps(text)[1:-1].replace("/", "\\u002f").replace("<", "\\u003c").replace(">", "\\u003e")


def test_interactive_map_file(html):
    text = html.read_text()
    assert not re.search(r"<script[^>]*\bsrc=", text) and len(text) > 1_000_000  # plotly.js inside: offline
    assert in_page("<b>org/model-05</b><br>family: fam1<br>type: others<br>size: ") in text
    assert in_page("nearest (estimated KL, bits per byte):") in text
    assert read_provenance(html)["variables"][:2] == ["type", "family"]
    assert "#ff0000" in text  # the given type colour


def chromium() -> str | None:
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


@pytest.mark.skipif(chromium() is None, reason="needs a headless Chromium (apt-get install chromium)")
def test_interactive_map_in_a_browser(html, results):
    """Chromium renders the file offline: one SVG point per model, the colour menu, the landmark labels,
    and, hovering a named model's point (plotly's own Fx.hover), its hover label."""
    dom = rendered(html, HOVER.replace("MODEL", "org/model-05"))
    assert len(re.findall(r'class="point"', dom)) >= K
    assert re.search(r'class="updatemenu-header-group".*?>type<', dom, re.S)  # colour menu, on "type"
    assert "colour by" in dom and "find a model" in dom
    landmark = read_provenance(html)["landmarks"][0]
    assert re.search(rf'class="textpoint".*?{re.escape(landmark)}', dom, re.S)
    label = re.search(r'<g class="hovertext".*?</g>', dom, re.S)
    assert label, "no hover label rendered"
    shown = re.sub(r"<[^>]+>", " ", label.group(0))
    assert "org/model-05" in shown and "nearest (estimated KL, bits per byte):" in shown and "2. org/model-" in shown


@pytest.mark.skipif(chromium() is None, reason="needs a headless Chromium (apt-get install chromium)")
def test_colour_menu_in_a_browser(html):
    """Choosing "size" in the colour menu (its own arguments, as a click applies them) shows a log-scale
    colour bar with readable ticks and hides the type legend."""
    dom = rendered(html, SELECT.replace("LABEL", "size (parameters)"))
    bar = re.search(r'class="[^"]*\bcolorbar".*', dom, re.S)
    assert bar and all(f">{tick}<" in bar.group(0) for tick in ("100M", "1B", "10B"))
    assert not re.search(r'class="legendtext"[^>]*>mistral<', dom)


@pytest.mark.skipif(chromium() is None, reason="needs a headless Chromium (apt-get install chromium)")
def test_find_menu_in_a_browser(html):
    """Choosing a model in the "find a model" menu marks it with a labelled arrow."""
    dom = rendered(html, SELECT.replace("updatemenus[0]", "updatemenus[1]").replace("LABEL", "org/model-05"))
    assert re.search(r'class="annotation".*?org/model-05', dom, re.S)
    assert re.search(r'class="annotation-arrow-g"', dom)


def rendered(html, script: str) -> str:
    """The DOM of the map after `script` ran in headless Chromium (the file itself is not changed)."""
    page = html.with_name("map-test.html")
    page.write_text(html.read_text().replace("</body>", script + "</body>"))
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--virtual-time-budget=15000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


HOVER = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const gd = document.querySelector(".plotly-graph-div");
  const i = gd.data[0].hovertext.findIndex((t) => t.startsWith("<b>MODEL</b>"));
  Plotly.Fx.hover(gd, [{curveNumber: 0, pointNumber: i}]);
}, 500));
</script>
"""
SELECT = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const gd = document.querySelector(".plotly-graph-div");
  const button = gd.layout.updatemenus[0].buttons.find((b) => b.label === "LABEL");
  Plotly[button.method](gd, ...button.args);  // as a click on the menu applies it
}, 500));
</script>
"""


def test_a_numeric_column_of_the_sheet_colours_the_map_on_a_colour_bar():
    import numpy as np
    import pandas as pd

    from lmmap.analysis import interactive_map

    points = pd.DataFrame({"params_active": [1.0, 2.0, np.nan], "license": ["mit", "apache-2.0", None]})
    colours, keys = interactive_map.colouring(points, "params_active", None)
    assert len(keys) == 1 and keys[0]["marker"]["showscale"] and len(colours) == 3
    colours, keys = interactive_map.colouring(points, "license", None)
    assert {k["name"] for k in keys} == {"mit", "apache-2.0"}
