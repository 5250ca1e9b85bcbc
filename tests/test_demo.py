"""The demo's acceptance test: the README's first command, `make demo`, run as a new user runs it (a
fresh copy of the repository, a PATH without any virtual environment, no PYTHONPATH), reproduces
every finding of the paper on its own zoo (results/analysis/findings.csv) on 2 CPU cores, writes the
report, and a re-run has nothing to do."""

import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from test_workflow import ROOT, check_demo_outputs, make, reusable_venv

FINDINGS = (
    "families cluster",
    "fine-tunes and variants sit near their base",
    "merges lie between their parents",
    "the KL approximation holds",
    "ridge on q predicts the benchmark mean better than mean log-likelihood",
    "the leakage screen flags the contaminated models",
    "... and few others",
    "the interpolation grid keeps its structure",
)
IGNORED = shutil.ignore_patterns(".git", ".venv", "results", "logs", ".snakemake", "__pycache__", "*.egg-info")


def fresh_copy(dest: Path) -> Path:
    """The repository as a clone would have it: tracked files plus new ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, text=True
    )
    if listed.returncode != 0:  # not a git checkout (an unpacked archive)
        shutil.copytree(ROOT, dest, ignore=IGNORED)
        return dest
    for name in filter(None, listed.stdout.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def new_user_environment() -> dict[str, str]:
    """The environment of a new user's shell: the system PATH, no virtual environment, no PYTHONPATH."""
    keep = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return keep | {"PATH": os.confstr("CS_PATH")}


@pytest.mark.slow
@pytest.mark.demo
def test_make_demo_reproduces_the_papers_findings(tmp_path):
    repo = fresh_copy(tmp_path / "repo")
    env = new_user_environment()
    result = make("demo", "CORES=2", cwd=repo, env=env, timeout=2400)
    assert result.returncode == 0, (
        f"make demo: exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
    )

    demo = yaml.safe_load((repo / "config/config.yaml").read_text())
    (grid,) = demo["zoo"]["interpolation"]
    results = repo / "results"
    check_demo_outputs(results, n_models=40, n_texts=demo["texts"]["n"], n_grid=len(grid["points"]) ** 2)
    assert (results / "report.html").stat().st_size > 100_000
    findings = pd.read_csv(results / "analysis/findings.csv", keep_default_na=False)
    assert set(FINDINGS) <= set(findings["finding"]), findings["finding"].tolist()
    failed = findings[findings["holds"] == "no"]
    assert failed.empty, "findings that do not hold:\n" + failed.to_string()
    check_placement(results / "placement", n_placed=10)

    rerun = subprocess.run(
        [f"{reusable_venv() or repo / '.venv'}/bin/snakemake", "--cores", "2", "-n"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Nothing to be done" in rerun.stdout + rerun.stderr, rerun.stdout[-3000:] + rerun.stderr[-3000:]


def check_placement(placement: Path, n_placed: int) -> None:
    """The later zoo models placed on the published map from their scores on its LS text sample. Each
    one within the map (no farther from it than its models are from each other) has a parent or base
    among its 3 nearest mapped models, and at least 80% of their true benchmark means lie inside the
    reported intervals. The contaminated models learnt half the reference texts: they are outside the
    map (on the full map too, their nearest models are each other, not their bases), and the leakage
    screen flags them."""
    placed = pd.read_csv(placement / "placed.csv")
    assert len(placed) == n_placed and set(placed["texts"]) == {"sample"}
    checked = pd.read_csv(placement / "acceptance.csv")
    assert len(checked) == n_placed  # every placed model is a merge, reduced-precision or contaminated one
    inside = checked[checked["within_map"]]
    assert set(checked.loc[~checked["within_map"], "kind"]) <= {"contaminated"}, checked.to_string()
    assert len(inside) >= 0.7 * n_placed, checked.to_string()
    missed = inside[~inside["relative_in_top"]]
    assert missed.empty, "placed models without a relative among their 3 nearest:\n" + missed.to_string()
    assert inside["inside_interval"].mean() >= 0.8, checked.to_string()
    contaminated = checked[checked["kind"] == "contaminated"]
    assert (contaminated["leakage_z"] > 3.5).all(), contaminated.to_string()
