"""The report's landing page (report/workflow.rst) renders for every shipped config, findings table first."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "demo": ["config/config.yaml"],
    "test": ["config/config.yaml", "config/test/config.yaml"],
    "paper": ["config/config.yaml", "config/paper/config.yaml"],
}


def merged(paths: list[str]) -> dict:
    """The configs layered as `--configfile A B` layers them (nested mappings updated)."""

    def update(base: dict, new: dict) -> dict:
        for key, value in new.items():
            base[key] = update(base.get(key) or {}, value) if isinstance(value, dict) else value
        return base

    config: dict = {}
    for path in paths:
        update(config, yaml.safe_load((ROOT / path).read_text()))
    return config


@pytest.mark.parametrize("name", CONFIGS)
def test_landing_page_shows_the_findings(name, tmp_path, monkeypatch):
    """Rendered as Snakemake renders it (Jinja with `snakemake.config`, then docutils, from the working
    directory): the findings table is an HTML table, and the page says what was run on what."""
    from docutils.core import publish_parts
    from jinja2 import Environment

    from lmmap.analysis.findings import table
    from lmmap.analysis.outputs import publish_table

    (tmp_path / "results/analysis").mkdir(parents=True)
    rows = [
        {"finding": "families cluster", "measure": "silhouette", "value": 0.031, "needs": "> 0", "holds": "yes"},
        {
            "finding": "merges lie between their parents",
            "measure": "share",
            "value": 1.0,
            "needs": "= 1",
            "holds": "yes",
            "out_of": 6,
        },
    ]
    frame, shown = table(rows)
    publish_table(frame, tmp_path / "results/analysis/findings", step="unit", display=shown)
    monkeypatch.chdir(tmp_path)

    class Snakemake:
        config = merged(CONFIGS[name])

    text = Environment().from_string((ROOT / "report/workflow.rst").read_text()).render(snakemake=Snakemake)
    html = publish_parts(text, writer="html", settings_overrides={"halt_level": 2})["html_body"]
    assert "<table" in html and "families cluster" in html and "0.031" in html
    assert "6 of 6" in html  # a share as people read it (the CSV keeps 1.0)
    assert ("released data" in html) == (name == "paper")
    assert ("embedded demo" in html) == (name != "paper")
