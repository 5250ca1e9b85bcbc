"""What rules/analysis.smk needs at DAG-build time: the interpolation grids and the analyses' outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCHMARKS = "results/benchmarks/scores.csv"
NEEDS_BENCHMARKS = ("benchmark_mean", "best_task")
A = "results/analysis"


def grid_definitions(config: dict) -> dict:
    """{grid slug: lmmap.interpolate.Grid} of every weight-interpolation grid under `config`, when
    `analysis.interpolation.enabled`: the demo zoo's (`zoo.interpolation`) and the configured triples
    of mapped models (`interpolation.triples`, e.g. config/paper/interpolation.yaml)."""
    if not config["analysis"]["interpolation"]["enabled"]:
        return {}
    from lmmap.errors import InputError
    from lmmap.interpolate import check_endpoints, configured_grids

    grids = []
    zoo = config.get("zoo") or {}
    if zoo.get("enabled"):
        from lmmap.zoo import interpolation_grids as zoo_grids

        grids += zoo_grids(zoo)
    if (config.get("interpolation") or {}).get("triples"):
        from lmmap.workflow import model_specs

        grids += configured_grids(config, {spec.model_id: spec for spec in model_specs(config)})
    found = {}
    for grid in grids:
        if grid.slug in found:
            raise InputError("config: interpolation", "two grids have the same name", record=grid.name)
        check_endpoints(grid)
        found[grid.slug] = grid
    return found


def interpolation_grids(config: dict) -> dict[str, list]:
    """{grid slug: [(alpha, beta, spec), ...]} of every interpolation grid under `config`."""
    return {slug: list(grid.points) for slug, grid in grid_definitions(config).items()}


def grid_points_json(points: list) -> str:
    return json.dumps([{"alpha": a, "beta": b, "model_id": spec.model_id} for a, b, spec in points])


def map_variables(config: dict, with_benchmarks: bool) -> list[str]:
    return [v for v in config["analysis"]["map_variables"] if (v in NEEDS_BENCHMARKS) == with_benchmarks]


def benchmarks_available(config: dict, workflow) -> bool:
    """Benchmark analyses run when configured and some rule (demo tasks, paper data) writes the
    scores, or they already exist; evaluate after every rule file is included."""
    if not config["analysis"]["benchmarks"]:
        return False
    if Path(BENCHMARKS).exists() or any(BENCHMARKS in map(str, rule.output) for rule in workflow.rules):
        return True
    print(f"lmmap: no rule writes {BENCHMARKS}; skipping the benchmark analyses", file=sys.stderr)
    return False


def _files(stem: str, extensions: tuple[str, ...]) -> list[str]:
    return [f"{stem}{ext}" for ext in extensions]


def analysis_outputs(config: dict, grids: dict, workflow) -> list[str]:
    """Every analysis output under `config` (for `rule all`)."""
    table, figure = (".csv", ".md", ".tex", ".html"), (".png", ".pdf")
    outputs = [f"{A}/maps/map_{v}{ext}" for v in map_variables(config, False) for ext in figure]
    outputs += _files(f"{A}/dimensionality", table) + _files(f"{A}/model_list", table)
    if benchmarks_available(config, workflow):
        outputs += [f"{A}/maps/map_{v}{ext}" for v in map_variables(config, True) for ext in figure]
        for stem, kinds in (
            ("prediction/ridge", table),
            ("prediction/ridge_scatter", figure),
            ("baseline/loglik_correlation", table),
            ("baseline/loglik_scatter", figure),
            ("leakage/leakage", table),
            ("leakage/leakage_map", figure),
        ):
            outputs += _files(f"{A}/{stem}", kinds)
    if config["analysis"]["kl_validation"]["enabled"]:
        outputs += _files(f"{A}/kl_validation/summary", table) + _files(f"{A}/kl_validation/scatter", figure)
    if config["analysis"]["resampling_error"]["enabled"]:
        outputs += _files(f"{A}/resampling_error/matching", table) + _files(f"{A}/resampling_error/errors", figure)
    if config["analysis"]["map_uncertainty"]["enabled"]:
        outputs += _files(f"{A}/map_uncertainty/models", table) + _files(f"{A}/map_uncertainty/ellipses", figure)
    for grid in grids:
        outputs += _files(f"{A}/interpolation/{grid}", figure)
    return outputs + _files(f"{A}/findings", table)


def findings_inputs(config: dict, grids: dict, workflow) -> dict[str, str | list[str]]:
    """The tables `analyze findings` reads under `config`, by its option names."""
    inputs: dict[str, str | list[str]] = {"kl_estimate": "results/coords/kl_estimate.npz"}
    if (config.get("zoo") or {}).get("enabled"):
        inputs["lineage"] = "results/zoo/lineage.csv"
    if config["analysis"]["kl_validation"]["enabled"]:
        inputs["kl_summary"] = f"{A}/kl_validation/summary.csv"
    if benchmarks_available(config, workflow):
        inputs |= {
            "ridge": f"{A}/prediction/ridge.csv",
            "baseline": f"{A}/baseline/loglik_correlation.csv",
            "leakage": f"{A}/leakage/leakage.csv",
        }
    if grids:
        inputs["grid_summaries"] = [f"{A}/interpolation/{grid}_summary.csv" for grid in grids]
    return inputs


def findings_arguments(inputs: dict[str, str | list[str]]) -> str:
    """The command-line options of `analyze findings` for `inputs` (shell-quoted)."""
    import shlex

    parts = []
    for name, paths in inputs.items():
        parts += [f"--{name.replace('_', '-')}", *([paths] if isinstance(paths, str) else paths)]
    return shlex.join(parts)
