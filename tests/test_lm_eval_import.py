"""Bring your own benchmark results: lm-evaluation-harness results files in its --output_path layout."""

import json
from pathlib import Path

import pandas as pd
import pytest

from lmmap.analysis.inputs import read_benchmarks
from lmmap.cli import main


def _results(directory: Path, name: str, timestamp: str, results: dict, **extra) -> Path:
    """A results file as `lm_eval --output_path DIR` writes it: DIR/<sanitised model name>/results_<time>.json."""
    path = directory / name.replace("/", "__") / f"results_{timestamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "results": results,
        "configs": {},
        "versions": dict.fromkeys(results, 1.0),
        "n-shot": dict.fromkeys(results, 0),
        "config": {"model": "hf", "model_args": f"pretrained={name},dtype=float32", "batch_size": "auto"},
        "model_name_sanitized": name.replace("/", "__"),
        **extra,
    }
    path.write_text(json.dumps(record))
    return path


def test_import_lm_eval_results_into_the_scores_table(tmp_path):
    out_dir = tmp_path / "lm_eval_out"
    _results(
        out_dir,
        "org/model-a",
        "2026-11-30T10-00-00.000000",
        {
            "arc_easy": {
                "alias": "arc_easy",
                "acc,none": 0.5,
                "acc_stderr,none": 0.01,
                "acc_norm,none": 0.625,
                "acc_norm_stderr,none": 0.01,
            },
            "lambada_openai": {"alias": "lambada_openai", "perplexity,none": 30.1, "acc,none": 0.25},
        },
        model_name="org/model-a",
    )
    # an earlier run of model b, replaced by a later one; model b's name only in model_args
    _results(
        out_dir, "org/model-b", "2026-11-29T09-00-00.000000", {"arc_easy": {"acc,none": 0.1, "acc_norm,none": 0.1}}
    )
    _results(
        out_dir, "org/model-b", "2026-11-30T09-00-00.000000", {"arc_easy": {"acc,none": 0.3, "acc_norm,none": 0.4}}
    )
    # a group reported with its subtasks: the group's score stands for them
    _results(
        out_dir,
        "org/model-c",
        "2026-11-30T11-00-00.000000",
        {
            "mmlu": {"acc,none": 0.4},
            "mmlu_anatomy": {"acc,none": 0.2},
            "arc_easy": {"acc_norm,none": 0.7},
            "lambada_openai": {"acc,none": 0.5},
        },
        group_subtasks={"mmlu": ["mmlu_anatomy"]},
    )
    scores = tmp_path / "results/benchmarks/scores.csv"
    assert main(["import-lm-eval", str(out_dir), "--out", str(scores), "--model-id", "org/model-c=zoo/c"]) == 0
    table = read_benchmarks(scores).set_index("model_id")
    assert list(table.columns) == ["arc_easy", "lambada_openai", "mmlu", "mean"]
    assert table.loc["org/model-a", "arc_easy"] == 62.5  # acc_norm preferred, on 0-100
    assert table.loc["org/model-a", "lambada_openai"] == 25.0  # no acc_norm: acc
    assert table.loc["org/model-b", "arc_easy"] == 40.0  # the later run
    assert table.loc["zoo/c", "mmlu"] == 40.0 and "mmlu_anatomy" not in table
    assert table.loc["zoo/c", "mean"] == pytest.approx((70 + 50 + 40) / 3)
    assert pd.isna(table.loc["org/model-a", "mean"])  # lacks mmlu: no partial mean
    assert Path(f"{scores}.prov.json").is_file()

    assert main(["import-lm-eval", str(out_dir), "--tasks", "arc_easy", "--out", str(scores)]) == 0
    table = read_benchmarks(scores).set_index("model_id")
    assert list(table.columns) == ["arc_easy", "mean"] and table["mean"].equals(table["arc_easy"])
    # model c reports arc_easy as acc_norm only: asked for acc alone, the import says which task lacks it
    assert main(["import-lm-eval", str(out_dir), "--tasks", "arc_easy", "--metrics", "acc", "--out", str(scores)]) == 2


def test_import_lm_eval_refuses_what_it_cannot_read(tmp_path, capsys):
    bad = tmp_path / "results_x.json"
    bad.write_text(json.dumps({"config": {}}))
    assert main(["import-lm-eval", str(bad), "--out", str(tmp_path / "s.csv")]) == 2
    assert "no `results` mapping" in capsys.readouterr().err
    assert main(["import-lm-eval", str(tmp_path / "absent"), "--out", str(tmp_path / "s.csv")]) == 2
