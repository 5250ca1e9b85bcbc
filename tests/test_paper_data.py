"""Paper-data mode on synthetic files written exactly in the released formats."""

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from lmmap.analysis import paper_data
from lmmap.cli import main
from lmmap.errors import InputError
from lmmap.provenance import read_provenance
from lmmap.storage import load_npz
from lmmap.texts import load_text_set

N_TEXTS = 12
NAMES = ["01-ai/Yi-6B", "EleutherAI/pythia-70m", "meta-llama/Llama-2-7b-hf"]


@pytest.fixture
def released(tmp_path):
    """raw_log-likelihood pickle (dict model -> floats), model-data pickle (list of dicts), text set."""
    rng = np.random.default_rng(0)
    raw = {name: (-300 + rng.normal(size=N_TEXTS) * 20).tolist() for name in reversed(NAMES)}
    raw[NAMES[1]] = np.asarray(raw[NAMES[1]])  # values may also be numpy arrays
    model_data = []
    for i, name in enumerate(NAMES):
        record = {"model_name": name, "model_type": ["llama", "gpt_neox", "llama"][i], "model_size": [6.06, 0.07, 6.74][i],
                  "created_at": pd.Timestamp(f"2023-0{i + 1}-15T10:00:00Z"), "downloads": 10 * i, "tags": ["x"],
                  "log-likelihood-10k": raw[name], "mean_logp": float(np.mean(raw[name]))}
        for field in paper_data.TASKS:
            record[field] = 30.0 + 10 * i
        record[paper_data.MEAN_FIELD] = 30.0 + 10 * i
        model_data.append(record)
    model_data[1]["score_v1_GSM8K"] = None  # a missing score stays missing
    with open(tmp_path / "raw_log-likelihood_1018.pkl", "wb") as fh:
        pickle.dump(raw, fh)
    with open(tmp_path / "model-data-1018.pkl", "wb") as fh:
        pickle.dump(model_data, fh)
    with open(tmp_path / "texts.jsonl", "w") as fh:
        for j in range(N_TEXTS):
            fh.write(json.dumps({"id": str(j), "domain": ["Pile-CC", "Github"][j % 2], "text": f"text {j}"}) + "\n")
    (tmp_path / "models.tsv").write_text("model_id\tsource\ttype\n" + "".join(
        f"{n}\t{n}\t{t}\n" for n, t in zip(NAMES, ["others", "gpt_neox", "llama-2"])))
    return tmp_path, raw


def convert_args(root, *extra):
    return ["paper-convert", "--loglik", str(root / "raw_log-likelihood_1018.pkl"),
            "--model-data", str(root / "model-data-1018.pkl"), "--texts", str(root / "texts.jsonl"),
            "--types", str(root / "models.tsv"), "--out-matrix", str(root / "out/loglik.npz"),
            "--out-models", str(root / "out/models.csv"), "--out-benchmarks", str(root / "out/scores.csv"), *extra]


def test_conversion_writes_the_pipeline_formats(released):
    root, raw = released
    assert main(convert_args(root, "--allow-pickle")) == 0
    matrix = load_npz(root / "out/loglik.npz", required=("L", "model_ids", "text_ids", "domains", "text_set_sha256"))
    assert matrix["model_ids"].tolist() == NAMES  # the model data's order
    np.testing.assert_array_equal(matrix["L"][2], raw[NAMES[2]])
    assert str(matrix["text_set_sha256"]) == load_text_set(root / "texts.jsonl").sha256
    models = pd.read_csv(root / "out/models.csv")
    assert models["type"].tolist() == ["others", "gpt_neox", "llama-2"]
    assert models["created"].tolist() == ["2023-01-15", "2023-02-15", "2023-03-15"]
    assert models.loc[1, "n_params"] == pytest.approx(7e7)
    assert models["mean_loglik"].to_numpy() == pytest.approx(matrix["L"].mean(axis=1))
    scores = pd.read_csv(root / "out/scores.csv")
    assert scores.columns.tolist() == ["model_id", *paper_data.TASKS.values(), "mean"]
    assert np.isnan(scores.loc[1, "GSM8K"]) and scores.loc[2, "mean"] == 50.0
    assert read_provenance(root / "out/scores.csv")["params"]["allow_pickle"] is True


def test_pickles_are_refused_without_opt_in(released, capsys):
    root, _ = released
    assert main(convert_args(root)) == 2
    assert "paper.allow_pickle" in capsys.readouterr().err
    assert not (root / "out/loglik.npz").exists()


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_code_in_a_pickle_is_refused_even_with_opt_in(tmp_path):
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump({"model": Exploit()}, fh)
    with pytest.raises(InputError, match="refusing to load"):
        paper_data.read_pickle(tmp_path / "evil.pkl", allow_pickle=True)


def test_wrong_lengths_and_missing_fields_are_named(released):
    root, raw = released
    raw[NAMES[0]] = raw[NAMES[0]][:-1]
    with pytest.raises(InputError, match="11 values") as info:
        paper_data.loglik_matrix(raw, "raw.pkl", NAMES, N_TEXTS)
    assert info.value.record == NAMES[0]
    with pytest.raises(InputError) as info:
        paper_data.model_records([{"model_name": "m"}], "data.pkl")
    assert info.value.field == "model_type"
