"""The findings table: each check on synthetic inputs where the answer is known."""

import numpy as np
import pandas as pd

from lmmap.analysis import findings


def _kl(points: dict[str, tuple[float, float]]) -> pd.DataFrame:
    ids = list(points)
    xy = np.array([points[i] for i in ids])
    return pd.DataFrame(((xy[:, None] - xy[None]) ** 2).sum(-1) / 2, index=ids, columns=ids)


LINEAGE = pd.DataFrame(
    {
        "model_id": ["a", "b", "a-ft", "a-int8", "b-ft1", "b-ft2", "b-merge"],
        "slug": ["a", "b", "a-ft", "a-int8", "b-ft1", "b-ft2", "b-merge"],
        "kind": ["base", "base", "finetune", "precision", "finetune", "finetune", "merge"],
        "family": ["A", "B", "A", "A", "B", "B", "B"],
        "parents": ["", "", "a", "a", "b", "b", "b-ft1;b-ft2"],
    }
)


def test_lineage_findings_hold_on_a_tidy_map_and_fail_on_a_scrambled_one():
    tidy = _kl(
        {
            "a": (0, 0),
            "b": (10, 0),
            "a-ft": (1, 0),
            "a-int8": (0, 0.1),
            "b-ft1": (10, 1),
            "b-ft2": (11, 0),
            "b-merge": (10.5, 0.5),
        }
    )
    rows = {row["finding"]: row for row in findings.lineage_findings(tidy, LINEAGE)}
    assert all(row["holds"] == "yes" for row in rows.values()), rows
    assert rows["fine-tunes and variants sit near their base"]["value"] == 1.0
    scrambled = _kl(
        {
            "a": (0, 0),
            "b": (10, 0),
            "a-ft": (10, 1),
            "a-int8": (0, 0.1),
            "b-ft1": (0, 3),
            "b-ft2": (1, 0),
            "b-merge": (20, 0),
        }
    )
    rows = {row["finding"]: row for row in findings.lineage_findings(scrambled, LINEAGE)}
    assert rows["fine-tunes and variants sit near their base"]["value"] == 0.25
    assert rows["merges lie between their parents"]["holds"] == "no"
    assert rows["families cluster"]["holds"] == "no"  # a-ft sits among B, b-ft1 and b-merge far away


def test_prediction_needs_a_clear_margin_under_kfold():
    # mean log-likelihood leaves 1 - 0.85² = 0.2775 unexplained; a quarter less needs r >= 0.890
    baseline = pd.DataFrame({"target": ["mean"], "pearson": [0.85]})
    ridge = pd.DataFrame(
        {
            "features": ["Q", "Q", "L"],
            "cv": ["kfold", "group", "kfold"],
            "target": ["mean"] * 3,
            "pearson_mean": [0.88, 0.86, 0.99],
        }
    )
    kfold, group = findings.prediction_finding(ridge, baseline)
    assert kfold["holds"] == "no" and kfold["needs"].startswith(">= 0.890")
    assert group["holds"] == "" and group["value"] == 0.86
    assert findings.prediction_finding(ridge.assign(pearson_mean=0.89), baseline)[0]["holds"] == "yes"


def test_leakage_counts_contaminated_and_other_flags():
    screen = pd.DataFrame(
        {"flagged": [True, True, False, True], "kind": ["contaminated", "base", "contaminated", "base"]}
    )
    caught, others = findings.leakage_finding(screen)
    assert caught["value"] == "1/2" and caught["holds"] == "no"
    assert others["value"] == 2 and others["holds"] == "yes"
    (unknown,) = findings.leakage_finding(screen.drop(columns="kind"))
    assert unknown["holds"] == "" and unknown["value"] == 3


def test_kl_and_grid_thresholds():
    summary = pd.DataFrame({"measure": ["kl_token", "kl_text"], "pearson_r": [0.84, 0.99], "n_pairs": [20, 20]})
    assert findings.kl_finding(summary)["holds"] == "no"
    (grid,) = findings.grid_findings({"g": pd.DataFrame({"affine_r2": [0.95]})})
    assert grid["holds"] == "yes" and "(g)" in grid["measure"]


def test_lineage_findings_without_a_comparison_are_reported_not_judged():
    lineage = LINEAGE.assign(family="A")  # one family: no silhouette
    lineage = lineage[lineage["kind"] != "merge"]  # no merges
    kl = _kl({m: (i, 0) for i, m in enumerate(lineage["model_id"])})
    rows = {row["finding"]: row for row in findings.lineage_findings(kl, lineage)}
    assert rows["families cluster"]["holds"] == "" and rows["merges lie between their parents"]["holds"] == ""


def test_findings_table_shows_shares_as_counts_and_keeps_the_csv_numeric():
    tidy = _kl(
        {
            "a": (0, 0),
            "b": (10, 0),
            "a-ft": (1, 0),
            "a-int8": (0, 0.1),
            "b-ft1": (10, 1),
            "b-ft2": (11, 0),
            "b-merge": (10.5, 0.5),
        }
    )
    rows = findings.lineage_findings(tidy, LINEAGE)
    rows += findings.leakage_finding(pd.DataFrame({"flagged": [True, False], "kind": ["contaminated"] * 2}))
    frame, shown = findings.table(rows)
    assert list(frame.columns) == ["finding", "measure", "value", "needs", "holds"]
    by_finding = dict(zip(shown["finding"], shown["value"]))
    assert by_finding["fine-tunes and variants sit near their base"] == "4 of 4"
    assert by_finding["merges lie between their parents"] == "1 of 1"
    assert by_finding["the leakage screen flags the contaminated models"] == "1 of 2"
    assert by_finding["families cluster"] == f"{frame.loc[0, 'value']:.3f}"
    assert frame.loc[1, "value"] == 1.0
