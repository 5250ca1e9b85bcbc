"""What the Snakemake workflow needs from the package at DAG-build time: the list of models and the
weight-interpolation grids. Where their files live is the workflow's: rules/common.smk passes the
directories (`zoo_dir`, `grid_dir`)."""

from __future__ import annotations

import dataclasses
import json

from lmmap import zoo
from lmmap.errors import InputError
from lmmap.sheet import ModelSpec, check_unique, created_on_or_after, read_sheet, sheet_extras

# The columns of the models table (`merge`): the sheet's fields, the slug, and what scoring measured.
MODELS_TABLE_COLUMNS = (*(f.name for f in dataclasses.fields(ModelSpec)), "slug", "n_params", "mean_loglik")
# Paper mode's models table (lmmap.analysis.paper_data.models_table) adds the paper's own labels.
PAPER_MODELS_TABLE_COLUMNS = (*MODELS_TABLE_COLUMNS, "model_type", "type_fig1", "downloads")
# map colourings derived from L, Q and the benchmark scores (lmmap.analysis.tsne_map.map_variables)
DERIVED_VARIABLES = ("best_domain", "mean_loglik", "benchmark_mean", "best_task", "size", "created")
# The sheet fields that `lmmap score` and `lmmap download` take as options.
SCORE_FIELDS = ("revision", "gguf_file", "dtype", "trust_remote_code")
DOWNLOAD_FIELDS = ("revision", "gguf_file")


def model_specs(config: dict, zoo_dir: str) -> list[ModelSpec]:
    """The models to map: the sheet's rows (if any), then the demo zoo's (if enabled, built into `zoo_dir`)."""
    specs = read_sheet(config["models"]) if config.get("models") else []
    zoo_config = config.get("zoo") or {}
    if zoo_config.get("enabled", False):
        specs += zoo.zoo_specs(zoo_config, zoo_dir)
    check_unique(specs, config.get("models") or "config: zoo")
    return specs


def grid_definitions(config: dict, zoo_dir: str, grid_dir: str) -> dict:
    """{grid slug: lmmap.interpolate.Grid} of every weight-interpolation grid under `config`, when
    `analysis.interpolation.enabled`: the demo zoo's (`zoo.interpolation`) and the configured triples
    of mapped models (`interpolation.triples`, e.g. config/paper/interpolation.yaml); grid models are
    stored under `grid_dir`."""
    if not config["analysis"]["interpolation"]["enabled"]:
        return {}
    from lmmap.interpolate import check_endpoints, configured_grids

    grids = []
    zoo_config = config.get("zoo") or {}
    if zoo_config.get("enabled"):
        grids += zoo.interpolation_grids(zoo_config, zoo_dir, grid_dir)
    if (config.get("interpolation") or {}).get("triples"):
        models = {spec.model_id: spec for spec in model_specs(config, zoo_dir)}
        grids += configured_grids(config, models, grid_dir)
    found = {}
    for grid in grids:
        if grid.slug in found:
            raise InputError("config: interpolation", "two grids have the same name", record=grid.name)
        check_endpoints(grid)
        found[grid.slug] = grid
    return found


def grid_points_json(points: list) -> str:
    """The `lmmap analyze interpolation --grid` argument: each grid model's α, β and id."""
    return json.dumps([{"alpha": a, "beta": b, "model_id": spec.model_id} for a, b, spec in points])


def sheet_options(spec: ModelSpec, fields: tuple[str, ...]) -> list[str]:
    """The optional command-line arguments (`--revision R`, `--trust-remote-code`, ...) that a model's
    sheet row sets among `fields` (SCORE_FIELDS, DOWNLOAD_FIELDS)."""
    options = []
    for field in fields:
        value, flag = getattr(spec, field), "--" + field.replace("_", "-")
        if value is True:
            options.append(flag)
        elif value:
            options += [flag, value]
    return options


def score_options(spec: ModelSpec) -> list[str]:
    return sheet_options(spec, SCORE_FIELDS)


def check_config_columns(config: dict) -> None:
    """Columns the config names must exist in the models table (the sheet's extra columns included):
    found at start-up, not after scoring."""
    named = [("map.hues", hue) for hue in (config.get("map") or {}).get("hues") or []]
    prediction = (config.get("analysis") or {}).get("prediction") or {}
    if "group_by" in prediction:
        named.append(("analysis.prediction.group_by", prediction["group_by"]))
    paper_mode = (config.get("paper") or {}).get("enabled", False)
    columns = [
        *(PAPER_MODELS_TABLE_COLUMNS if paper_mode else MODELS_TABLE_COLUMNS),
        *(sheet_extras(config["models"])[0] if config.get("models") else []),
    ]
    for field, column in named:
        if column not in columns and not (field == "map.hues" and column in DERIVED_VARIABLES):
            raise InputError(
                "config", f"'{column}' is not a models-table column; one of {', '.join(columns)}", field=field
            )


def created_since(specs: list[ModelSpec], cut_date: str | None) -> list[ModelSpec]:
    """The models created on or after `cut_date` (none without one): those placed on a published map
    rather than mapped (`publish-map --cut-date`; undated models are mapped)."""
    late = created_on_or_after([spec.created for spec in specs], cut_date)
    return [spec for spec, placed in zip(specs, late) if placed]


# The demo benchmarks (rules/tasks.smk): which models are evaluated together


def evaluation_batches(specs: list[ModelSpec]) -> dict[str, list[ModelSpec]]:
    """Models evaluated in one job: the zoo's in one job per `job_group` (starting torch
    costs more than evaluating a small model), every other model on its own."""
    batches: dict[str, list[ModelSpec]] = {}
    for spec in specs:
        key = f"zoo-{job_group(spec)}" if spec.is_zoo else f"model-{spec.slug}"
        batches.setdefault(key, []).append(spec)
    return batches


def sheet_rows_json(specs: list[ModelSpec]) -> str:
    """The `lmmap evaluate-tasks --models` argument for `specs`."""
    return json.dumps([{k: v for k, v in spec.as_dict().items() if k != "slug"} for spec in specs])


def zoo_config_files(specs: list[ModelSpec]) -> list[str]:
    """The zoo models among `specs` must be built before they are evaluated (their config.json)."""
    return [f"{s.source}/config.json" for s in specs if s.is_zoo]


# The demo zoo (rules/zoo.smk): which build and scoring jobs make and read its models


def build_groups(zoo_config: dict, zoo_dir: str) -> dict[str, list[zoo.ZooModel]]:
    """{family: its models in build order (parents first)}: what one build job makes. One process
    per family, because starting torch and transformers costs more than building a small model; a
    family's models also share their parents in memory. (Interpolation grids are merged by
    rules/interpolation.smk, one job per grid point, as the paper's 7B grids are.)"""
    groups: dict[str, list[zoo.ZooModel]] = {}
    for model in zoo.zoo_models(zoo_config, zoo_dir):
        groups.setdefault(model.spec.family, []).append(model)
    return groups


def job_group(spec) -> str:
    """Which scoring or evaluation job handles a zoo model: one per architecture, because a process
    pays ~10 s to import torch and transformers' modelling code, more than scoring a small model
    costs; an interpolation grid (not on the map) gets a job of its own."""
    return spec.family if spec.family.startswith(zoo.GRID_FAMILY_PREFIX) else spec.type


def config_files(slugs, zoo_dir: str) -> list[str]:
    """The `config.json` of each zoo model: what the workflow waits for (it appears last)."""
    return [f"{zoo_dir}/{slug}/config.json" for slug in slugs]


def recipes_json(models: list[zoo.ZooModel]) -> str:
    """The `lmmap build-zoo --recipes` argument for `models`."""
    return json.dumps([{"slug": m.slug, "recipe": m.recipe, "parents": list(m.parents)} for m in models])


def outside_parents(models: list[zoo.ZooModel]) -> list[str]:
    """Slugs of the parents of `models` that another build job makes."""
    return sorted({p for m in models for p in m.parents} - {m.slug for m in models})
