"""What the Snakemake workflow needs from the package at DAG-build time: the list of models."""

from __future__ import annotations

import dataclasses

from lmmap.errors import InputError
from lmmap.sheet import ModelSpec, check_unique, read_sheet, sheet_extras

# The columns of the models table (`merge`): the sheet's fields, the slug, and what scoring measured.
MODELS_TABLE_COLUMNS = (*(f.name for f in dataclasses.fields(ModelSpec)), "slug", "n_params", "mean_loglik")
# Paper mode's models table (lmmap.analysis.paper_data.models_table) adds the paper's own labels.
PAPER_MODELS_TABLE_COLUMNS = (*MODELS_TABLE_COLUMNS, "model_type", "type_fig1", "downloads")


def model_specs(config: dict) -> list[ModelSpec]:
    """The models to map: the sheet's rows (if any), then the demo zoo's (if enabled)."""
    specs = read_sheet(config["models"]) if config.get("models") else []
    zoo = config.get("zoo") or {}
    if zoo.get("enabled", False):
        from lmmap.zoo import zoo_specs  # the zoo needs torch only when it is built, not here

        specs += zoo_specs(zoo)
    check_unique(specs, config.get("models") or "config: zoo")
    return specs


def score_options(spec: ModelSpec) -> list[str]:
    """The optional `lmmap score` arguments that a model's sheet row sets."""
    options = []
    for flag, value in (("--revision", spec.revision), ("--gguf-file", spec.gguf_file), ("--dtype", spec.dtype)):
        if value:
            options += [flag, value]
    if spec.trust_remote_code:
        options.append("--trust-remote-code")
    return options


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
        if column not in columns:
            raise InputError(
                "config", f"'{column}' is not a models-table column; one of {', '.join(columns)}", field=field
            )


def created_since(specs: list[ModelSpec], cut_date: str | None) -> list[ModelSpec]:
    """The models created on or after `cut_date` (none without one): those placed on a published map
    rather than mapped (`publish-map --cut-date`; undated models are mapped)."""
    if not cut_date:
        return []
    import pandas as pd

    cut = pd.Timestamp(cut_date, tz="UTC")
    created = pd.to_datetime(pd.Series([spec.created for spec in specs], dtype=object), errors="coerce", utc=True)
    return [spec for spec, date in zip(specs, created) if date >= cut]
