"""The demo's acceptance test: the default config, run end to end on 2 CPU cores, reproduces every
finding of the paper on its own zoo (results/analysis/findings.csv), and a re-run has nothing to do."""

import pandas as pd
import pytest
import yaml

from test_workflow import ROOT, check_demo_outputs, snakemake

FINDINGS = ("families cluster", "fine-tunes and variants sit near their base", "merges lie between their parents",
            "the KL approximation holds", "ridge on q predicts the benchmark mean better than mean log-likelihood",
            "the leakage screen flags the contaminated models", "... and few others",
            "the interpolation grid keeps its structure")


@pytest.mark.slow
@pytest.mark.demo
def test_demo_reproduces_the_papers_findings(tmp_path):
    snakemake("--cores", "2", "--directory", str(tmp_path), "--configfile", str(ROOT / "config/config.yaml"),
              timeout=1800)
    demo = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    (grid,) = demo["zoo"]["interpolation"]
    check_demo_outputs(tmp_path / "results", n_models=40, n_texts=demo["texts"]["n"], n_grid=len(grid["points"]) ** 2)
    findings = pd.read_csv(tmp_path / "results/analysis/findings.csv", keep_default_na=False)
    assert set(FINDINGS) <= set(findings["finding"]), findings["finding"].tolist()
    failed = findings[findings["holds"] == "no"]
    assert failed.empty, "findings that do not hold:\n" + failed.to_string()
    assert "Nothing to be done" in snakemake("--cores", "2", "--directory", str(tmp_path), "--configfile",
                                             str(ROOT / "config/config.yaml"), "-n")
