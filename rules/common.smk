# Helpers shared by all the rules files (config validation, the model list, input functions).

import json
import os
import re
import shlex
import sys
from pathlib import Path

from snakemake.utils import validate

# The workflow runs this checkout's package, installed or not (cluster jobs included).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)


def job_environment() -> str:
    """The shell prefix of every job. `python` is the interpreter Snakemake runs in (its virtual
    environment need not be on PATH; cluster jobs start Snakemake with the same interpreter), except
    under --sdm conda/apptainer/env-modules, where it is the rule's own environment's."""
    # (doubled braces: Snakemake formats the prefix like any shell command)
    exports = [f"export PYTHONPATH={shlex.quote(SRC)}" "${{PYTHONPATH:+:$PYTHONPATH}}"]
    if not workflow.deployment_settings.deployment_method:
        exports.append(f"export PATH={shlex.quote(os.path.dirname(os.path.abspath(sys.executable)))}:$PATH")
    return "; ".join([*exports, "set -euo pipefail", ""])


shell.prefix(job_environment())

from lmmap.workflow import check_config_columns, model_specs, score_options  # noqa: E402

validate(config, schema="../config/schemas/config.schema.yaml")
check_config_columns(config)

MODELS = {spec.slug: spec for spec in model_specs(config)}
if not MODELS:
    raise ValueError("config: no models to map: set `models` (a model sheet) or enable the demo `zoo`")


from lmmap.analysis.targets import grid_definitions  # noqa: E402

# The weight-interpolation grids (rules/interpolation.smk): {grid slug: lmmap.interpolate.Grid}, and
# each grid model by slug: (grid slug, alpha, beta, spec). Grid models are scored, never mapped.
GRID_DEFS = grid_definitions(config)
GRID_POINTS = {
    spec.slug: (slug, alpha, beta, spec) for slug, grid in GRID_DEFS.items() for alpha, beta, spec in grid.points
}


def model_spec(wildcards):
    """The sheet row of a mapped model, or of an interpolation grid model (`lmmap.interpolate`)."""
    if wildcards.model in MODELS:
        return MODELS[wildcards.model]
    return GRID_POINTS[wildcards.model][3]


def zoo_model_input(wildcards):
    """A zoo model must be built before it is scored; other sources are read as they are."""
    source = model_spec(wildcards).source
    return [f"{source}/config.json"] if source.startswith("results/zoo/") else []


def zoo_score_jobs():
    """{group: [{model_id, source, out}]}: the demo zoo is scored in one job per `zoo.job_group`
    (an architecture, or an interpolation grid), since starting torch costs more than scoring a
    small model."""
    if not config["zoo"]["enabled"]:
        return {}
    from lmmap import zoo

    jobs = {}
    for members in zoo.build_groups(config["zoo"]).values():
        for member in members:
            jobs.setdefault(zoo.job_group(member.spec), []).append(
                {
                    "model_id": member.spec.model_id,
                    "source": member.spec.source,
                    "out": f"results/scores/{member.slug}.npz",
                }
            )
    for slug, grid in GRID_DEFS.items():
        if grid.zoo:  # merged by rules/interpolation.smk, scored here
            for *_, spec in grid.points:
                jobs.setdefault(zoo.job_group(spec), []).append(
                    {
                        "model_id": spec.model_id,
                        "source": spec.source,
                        "out": f"results/interpolation/{slug}/scores/{spec.slug}.npz",
                    }
                )
    return jobs


def individually_scored():
    """A wildcard pattern for the models scored one per job: every model outside the demo zoo."""
    zoo_slugs = [Path(job["out"]).stem for jobs in ZOO_SCORE_JOBS.values() for job in jobs]
    if not zoo_slugs:
        return r"[A-Za-z0-9._-]+"
    return r"(?!(?:" + "|".join(map(re.escape, zoo_slugs)) + r")$)[A-Za-z0-9._-]+"


ZOO_SCORE_JOBS = zoo_score_jobs()


def output_path(output, name) -> Path:
    """The path of output `name` (its first file if it has several, as a multiext output has)."""
    path = getattr(output, name)
    return Path(path if isinstance(path, str) else path[0])


def stem(name):
    """A params function: output `name`'s path without its extension, for the steps that write one stem
    in several formats. Shell lines take their paths from the rule's outputs this way, so that renaming
    an output cannot leave a step writing where no rule looks."""
    return lambda wildcards, output: str(output_path(output, name).with_suffix(""))


def folder(name):
    """A params function: the folder of output `name`."""
    return lambda wildcards, output: str(output_path(output, name).parent)


# the models the map is built without (their scoring is neither run nor waited for)
EXCLUDED = set(config["merge"]["exclude"])
if unknown := EXCLUDED - {spec.model_id for spec in MODELS.values()}:
    raise ValueError(f"config merge.exclude: not models to map: {sorted(unknown)}")


def merge_score_inputs():
    """The scores of every model but those of `merge.exclude` (e.g. models whose scoring failed under
    --keep-going), which the map is built without; the merge names them in its log and provenance."""
    return [f"results/scores/{slug}.npz" for slug, spec in MODELS.items() if spec.model_id not in EXCLUDED]


def batch_tokens_option():
    """`--batch-tokens N` when the config fixes the budget; otherwise the engine picks per device."""
    budget = config["scoring"]["batch_tokens"]
    return ["--batch-tokens", budget] if budget else []


def text_source():
    """The input of prepare_texts: the demo corpus, or the configured JSONL file."""
    texts = config["texts"]
    return "results/corpus/documents.jsonl" if texts["source"] == "demo" else texts["path"]


def shipped_file(path):
    """A config path that may name a file shipped in this checkout (config/paper/types.tsv): relative
    to the working directory where it exists there, else to the checkout (runs with --directory)."""
    if not path or Path(path).is_absolute() or Path(path).exists():
        return path
    shipped = Path(workflow.basedir) / path
    return str(shipped) if shipped.exists() else path


TYPE_COLOURS = shipped_file(config["map"]["type_colours"])


def type_colours_option():
    """`--type-colours TSV` when the config fixes the type colours (map.type_colours), for every figure."""
    return ["--type-colours", TYPE_COLOURS] if TYPE_COLOURS else []


def map_figures():
    return expand("results/figures/map_{hue}.{ext}", hue=config["map"]["hues"], ext=["png", "pdf"])


def all_outputs():
    return [
        "results/matrix/loglik.npz",
        "results/coords/coordinates.npz",
        *map_figures(),
        *expand("results/figures/{name}.{ext}", name=["pca_variance", "kl_heatmap"], ext=["png", "pdf"]),
        "results/tables/pca_components.csv",
        "results/map.html",
        "results/audit.json",
        "results/audit.html",
    ]


def interpolation_clip(wildcards, input):
    """`--clip-value V`, `--map-coordinates NPZ` (the map's stored clip value: the grid is appended to
    the map, the authors' `append`) or nothing (`analysis.interpolation.clip_value`: number, map, null)."""
    if input.coords:
        return ["--map-coordinates", input.coords]
    value = config["analysis"]["interpolation"]["clip_value"]
    return ["--clip-value", value] if value is not None else []
