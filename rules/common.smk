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

from lmmap.workflow import (  # noqa: E402
    build_groups,
    check_config_columns,
    created_since,
    grid_definitions,
    job_group,
    model_specs,
    score_options,
)

validate(config, schema="../config/schemas/config.schema.yaml")
check_config_columns(config)

# Where the workflow keeps what it builds (the package takes these as arguments).
ZOO_DIR = "results/zoo"  # demo zoo models, <slug>/ each
GRID_DIR = "results/interpolation"  # interpolation grids, <grid>/models/<slug>/ each
ANALYSIS_DIR = "results/analysis"
BENCHMARKS = "results/benchmarks/scores.csv"
ZOO_LINEAGE = f"{ZOO_DIR}/lineage.csv"

MODELS = {spec.slug: spec for spec in model_specs(config, ZOO_DIR)}
if not MODELS:
    raise ValueError("config: no models to map: set `models` (a model sheet) or enable the demo `zoo`")

ZOO_CONFIG = config["zoo"]
ZOO_GROUPS = build_groups(ZOO_CONFIG, ZOO_DIR) if ZOO_CONFIG["enabled"] else {}

# The weight-interpolation grids (rules/interpolation.smk): {grid slug: lmmap.interpolate.Grid}, and
# each grid model by slug: (grid slug, alpha, beta, spec). Grid models are scored, never mapped.
GRID_DEFS = grid_definitions(config, ZOO_DIR, GRID_DIR)
GRID_POINTS = {
    spec.slug: (slug, alpha, beta, spec) for slug, grid in GRID_DEFS.items() for alpha, beta, spec in grid.points
}

# Growing a map (rules/growth.smk): the models created before growth.cut_date published as one map
# directory; the later ones scored on its text sample and placed on it rather than mapped.
GROWTH = config["growth"]
MAP_DIR = "results/map"
PLACEMENT_DIR = "results/placement"
PLACED = {spec.slug: spec for spec in created_since(list(MODELS.values()), GROWTH["cut_date"])}
MAP_FILES = [
    f"{MAP_DIR}/{name}"
    for name in ("map.npz", "models.csv", "ridge.npz", "leakage.json", "texts_sample.jsonl", "manifest.json")
]
TABLE_FORMATS = (".csv", ".md", ".tex", ".html")
PLACEMENT_TABLE = [f"{PLACEMENT_DIR}/placed{ext}" for ext in TABLE_FORMATS]
PLACEMENT_CHECK = [
    f"{PLACEMENT_DIR}/{stem}{ext}" for stem in ("acceptance", "acceptance_summary") for ext in TABLE_FORMATS
]


def model_spec(wildcards):
    """The sheet row of a mapped model, or of an interpolation grid model (`lmmap.interpolate`)."""
    if wildcards.model in MODELS:
        return MODELS[wildcards.model]
    return GRID_POINTS[wildcards.model][3]


def zoo_model_input(wildcards):
    """A zoo model must be built before it is scored; other sources are read as they are."""
    spec = model_spec(wildcards)
    return [f"{spec.source}/config.json"] if spec.is_zoo else []


def zoo_score_jobs():
    """{group: [{model_id, source, out}]}: the demo zoo is scored in one job per `job_group`
    (an architecture, or an interpolation grid), since starting torch costs more than scoring a
    small model."""
    jobs = {}
    for members in ZOO_GROUPS.values():
        for member in members:
            jobs.setdefault(job_group(member.spec), []).append(
                {
                    "model_id": member.spec.model_id,
                    "source": member.spec.source,
                    "out": f"results/scores/{member.slug}.npz",
                }
            )
    for slug, grid in GRID_DEFS.items():
        if grid.zoo:  # merged by rules/interpolation.smk, scored here
            for *_, spec in grid.points:
                jobs.setdefault(job_group(spec), []).append(
                    {
                        "model_id": spec.model_id,
                        "source": spec.source,
                        "out": f"{GRID_DIR}/{slug}/scores/{spec.slug}.npz",
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
    """One map per colouring; the benchmark colourings only when there are scores."""
    hues = [h for h in config["map"]["hues"] if h not in NEEDS_BENCHMARKS or benchmarks_available()]
    return expand("results/figures/map_{hue}.{ext}", hue=hues, ext=["png", "pdf"])


def map_outputs():
    """The map and what describes it."""
    return [
        "results/matrix/loglik.npz",
        "results/coords/coordinates.npz",
        *map_figures(),
        *expand("results/figures/{name}.{ext}", name=["pca_variance", "kl_heatmap"], ext=["png", "pdf"]),
        "results/tables/pca_components.csv",
        "results/map.html",
    ]


AUDIT_OUTPUTS = ["results/audit.json", "results/audit.html"]


# ---------------------------------------------------------------------------------------- analyses
# (evaluated once all the rules files are read, since benchmarks_available asks which rules exist)

NEEDS_BENCHMARKS = ("benchmark_mean", "best_task")  # map colours that need benchmark scores


def benchmarks_available() -> bool:
    """Benchmark analyses run when configured and some rule (demo tasks, paper data) writes the
    scores, or they already exist."""
    if not config["analysis"]["benchmarks"]:
        return False
    if Path(BENCHMARKS).exists() or any(BENCHMARKS in map(str, r.output) for r in workflow.rules):
        return True
    print(f"lmmap: no rule writes {BENCHMARKS}; skipping the benchmark analyses", file=sys.stderr)
    return False


def benchmarks_input(wildcards):
    """The benchmark scores, for the steps that use them when they exist."""
    return [BENCHMARKS] if benchmarks_available() else []


def _files(stem: str, extensions: tuple[str, ...]) -> list[str]:
    return [f"{ANALYSIS_DIR}/{stem}{ext}" for ext in extensions]


def analysis_outputs():
    """Every analysis output under the config."""
    table, figure = (".csv", ".md", ".tex", ".html"), (".png", ".pdf")
    outputs = _files("dimensionality", table) + _files("model_list", table)
    if benchmarks_available():
        for stem, kinds in (
            ("prediction/ridge", table),
            ("prediction/ridge_scatter", figure),
            ("baseline/loglik_correlation", table),
            ("baseline/loglik_scatter", figure),
            ("leakage/leakage", table),
            ("leakage/leakage_map", figure),
        ):
            outputs += _files(stem, kinds)
    if config["analysis"]["kl_validation"]["enabled"]:
        outputs += _files("kl_validation/summary", table) + _files("kl_validation/scatter", figure)
    if config["analysis"]["resampling_error"]["enabled"]:
        outputs += _files("resampling_error/matching", table) + _files("resampling_error/errors", figure)
    if config["analysis"]["map_uncertainty"]["enabled"]:
        outputs += _files("map_uncertainty/models", table) + _files("map_uncertainty/ellipses", figure)
    for grid in GRID_DEFS:
        outputs += _files(f"interpolation/{grid}", figure)
    return outputs + _files("findings", table)


def findings_inputs(wildcards=None) -> dict[str, str | list[str]]:
    """The tables `analyze findings` reads under the config, by its option names."""
    inputs: dict[str, str | list[str]] = {"kl_estimate": "results/coords/kl_estimate.npz"}
    if ZOO_GROUPS:
        inputs["lineage"] = ZOO_LINEAGE
    if config["analysis"]["kl_validation"]["enabled"]:
        inputs["kl_summary"] = f"{ANALYSIS_DIR}/kl_validation/summary.csv"
    if benchmarks_available():
        inputs |= {
            "ridge": f"{ANALYSIS_DIR}/prediction/ridge.csv",
            "baseline": f"{ANALYSIS_DIR}/baseline/loglik_correlation.csv",
            "leakage": f"{ANALYSIS_DIR}/leakage/leakage.csv",
        }
    if GRID_DEFS:
        inputs["grid_summaries"] = [f"{ANALYSIS_DIR}/interpolation/{grid}_summary.csv" for grid in GRID_DEFS]
    return inputs


def findings_arguments(wildcards) -> str:
    """The command-line options of `analyze findings` (shell-quoted)."""
    parts = []
    for name, paths in findings_inputs().items():
        parts += [f"--{name.replace('_', '-')}", *([paths] if isinstance(paths, str) else paths)]
    return shlex.join(parts)


def audited_outputs():
    """What the audit traces back to its raw inputs: every final result but the audit's own."""
    return [*map_outputs(), *analysis_outputs()]


def growth_outputs():
    """The published map, and with models after the cut their placement (and on the demo zoo, its
    check against the zoo's lineage)."""
    if not GROWTH["enabled"]:
        return []
    outputs = list(MAP_FILES)
    if PLACED:
        outputs += [*PLACEMENT_TABLE, f"{PLACEMENT_DIR}/placed.png"]
        if ZOO_GROUPS and benchmarks_available():
            outputs += PLACEMENT_CHECK
    return outputs


def get_final_output():
    """Every final output of the run (`rule all`)."""
    return [*audited_outputs(), *AUDIT_OUTPUTS, *([ZOO_LINEAGE] if ZOO_GROUPS else []), *growth_outputs()]


def interpolation_clip(wildcards, input):
    """`--clip-value V`, `--map-coordinates NPZ` (the map's stored clip value: the grid is appended to
    the map, the authors' `append`) or nothing (`analysis.interpolation.clip_value`: number, map, null)."""
    if input.coords:
        return ["--map-coordinates", input.coords]
    value = config["analysis"]["interpolation"]["clip_value"]
    return ["--clip-value", value] if value is not None else []
