# Helpers shared by all the rules files (config validation, the model list, input functions).

import json
import shlex
import sys
from pathlib import Path

from snakemake.utils import validate

# The workflow runs this checkout's package, installed or not (cluster jobs included).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# (doubled braces: Snakemake formats the prefix like any shell command)
shell.prefix("export PYTHONPATH=" + shlex.quote(SRC) + "${{PYTHONPATH:+:$PYTHONPATH}}; set -euo pipefail; ")

from lmmap.workflow import model_specs, score_options  # noqa: E402

validate(config, schema="../config/schemas/config.schema.yaml")

MODELS = {spec.slug: spec for spec in model_specs(config)}
if not MODELS:
    raise ValueError("config: no models to map: set `models` (a model sheet) or enable the demo `zoo`")


def model_spec(wildcards):
    return MODELS[wildcards.model]


def zoo_model_input(wildcards):
    """A zoo model must be built before it is scored; other sources are read as they are."""
    source = model_spec(wildcards).source
    return [f"{source}/config.json"] if source.startswith("results/zoo/") else []


def score_files():
    return [f"results/scores/{slug}.npz" for slug in MODELS]


def scoring_failed(slug):
    """Whether a model's last scoring job failed (or was killed): it left its log but no scores."""
    return Path(f"logs/score_model/{slug}.log").exists() and not Path(f"results/scores/{slug}.npz").exists()


def merge_score_inputs():
    """Every model's scores. With `merge: {allow_missing: true}`, models whose scoring already failed
    are left out, so the run after a `--keep-going` run builds the map from the models that
    succeeded; the merge names the absent ones in its log and provenance. Delete a model's log to
    score it again."""
    if not config["merge"]["allow_missing"]:
        return score_files()
    return [f"results/scores/{slug}.npz" for slug in MODELS if not scoring_failed(slug)]


def text_source():
    """The input of prepare_texts: the demo corpus, or the configured JSONL file."""
    texts = config["texts"]
    return "results/corpus/documents.jsonl" if texts["source"] == "demo" else texts["path"]


def map_figures():
    return expand("results/figures/map_{hue}.{ext}", hue=config["map"]["hues"], ext=["png", "pdf"])


def all_outputs():
    return [
        "results/matrix/loglik.npz",
        "results/coords/coordinates.npz",
        *map_figures(),
        *expand("results/figures/{name}.{ext}", name=["pca_variance", "kl_heatmap"], ext=["png", "pdf"]),
        "results/tables/pca_components.csv",
        "results/audit.json",
    ]
