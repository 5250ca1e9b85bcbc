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
        record = {
            "model_name": name,
            "model_type": ["llama", "gpt_neox", "llama"][i],
            "model_size": [6.06, 0.07, 6.74][i],
            "created_at": pd.Timestamp(f"2023-0{i + 1}-15T10:00:00Z"),
            "downloads": 10 * i,
            "tags": ["x"],
            "log-likelihood-10k": raw[name],
            "mean_logp": float(np.mean(raw[name])),
        }
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
    (tmp_path / "models.tsv").write_text(
        "# a comment\nmodel_id\tsource\ttype\n"
        + "".join(f"{n}\t{n}\t{t}\n" for n, t in zip(NAMES, ["others", "gpt_neox", "llama-2"]))
    )
    return tmp_path, raw


def convert_args(root, *extra):
    return [
        "convert-paper-data",
        "--loglik",
        str(root / "raw_log-likelihood_1018.pkl"),
        "--model-data",
        str(root / "model-data-1018.pkl"),
        "--texts",
        str(root / "texts.jsonl"),
        "--types",
        str(root / "models.tsv"),
        "--out-matrix",
        str(root / "out/loglik.npz"),
        "--out-models",
        str(root / "out/models.csv"),
        "--out-benchmarks",
        str(root / "out/scores.csv"),
        *extra,
    ]


def test_conversion_writes_the_pipeline_formats(released):
    root, raw = released
    assert main(convert_args(root, "--allow-pickle")) == 0
    matrix = load_npz(root / "out/loglik.npz", required=("L", "model_ids", "text_ids", "domains", "text_set_sha256"))
    assert matrix["model_ids"].tolist() == NAMES  # the model data's order
    np.testing.assert_array_equal(matrix["L"][2], raw[NAMES[2]])
    assert str(matrix["text_set_sha256"]) == load_text_set(root / "texts.jsonl").sha256
    models = pd.read_csv(root / "out/models.csv")
    assert models["type_fig1"].tolist() == models["type"].tolist() == ["others", "gpt_neox", "llama-2"]
    assert models["model_type"].tolist() == models["family"].tolist() == ["llama", "gpt_neox", "llama"]
    assert models["created"].tolist() == [f"2023-0{i}-15T10:00:00+00:00" for i in (1, 2, 3)]
    assert models["downloads"].tolist() == [0, 10, 20]
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


def test_paper_mode_groups_by_the_29_class_model_type(released):
    """The paper's ridge CV groups by the model data's `model_type`, a column the conversion writes."""
    from pathlib import Path

    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/paper/config.yaml").read_text())
    assert config["analysis"]["prediction"]["group_by"] == "model_type"
    assert config["analysis"]["prediction"]["alphas"] == [1, 9, 9]
    root, _ = released
    assert main(convert_args(root, "--allow-pickle")) == 0
    assert pd.read_csv(root / "out/models.csv")["model_type"].nunique() == 2  # not the 3 Fig. 1 types


def test_map_order_uses_the_full_creation_time(released):
    """Two models made the same day keep their time order, not their name order."""
    from lmmap.analysis.tsne_map import map_order

    records = [
        {"model_name": name, "model_type": "llama", "model_size": 7, "created_at": when}
        for name, when in (("a-late", "2024-05-01T18:00:00Z"), ("b-early", "2024-05-01T06:00:00Z"))
    ]
    table = paper_data.models_table(records, np.zeros((2, 3)), {})
    assert [table["model_id"][i] for i in map_order(table["model_id"].tolist(), table["created"])] == [
        "b-early",
        "a-late",
    ]


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


@pytest.mark.slow
def test_paper_mode_runs_every_analysis_from_released_files(tmp_path):
    """The whole paper config on 40 synthetic models and 60 texts in the released formats."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    rng = np.random.default_rng(1)
    K, N = 40, 60
    names = [f"org{i % 4}/model-{i}" for i in range(K)]
    latent, directions = rng.normal(size=(K, 2)), rng.normal(size=(2, N))
    raw = {n: (-500 + 20 * latent[i] @ directions + rng.normal(size=N)).tolist() for i, n in enumerate(names)}
    records = []
    for i, n in enumerate(names):
        record = {
            "model_name": n,
            "model_type": ["llama", "mistral", "gpt_neox", "opt"][i % 4],
            "model_size": float(1 + i % 7),
            "created_at": f"2023-{1 + i % 12:02d}-01",
            "downloads": i,
            "tags": [],
            "log-likelihood-10k": raw[n],
            "mean_logp": float(np.mean(raw[n])),
        }
        for j, field in enumerate(paper_data.TASKS):
            record[field] = float(50 + 10 * latent[i, j % 2] + rng.normal())
        record[paper_data.MEAN_FIELD] = float(np.mean([record[f] for f in paper_data.TASKS]))
        records.append(record)
    data = tmp_path / "data"
    data.mkdir()
    with open(data / "raw_log-likelihood_1018.pkl", "wb") as fh:
        pickle.dump(raw, fh)
    with open(data / "model-data-1018.pkl", "wb") as fh:
        pickle.dump(records, fh)
    with open(data / "texts-10k-pile.jsonl", "w") as fh:
        for j in range(N):
            fh.write(
                json.dumps(
                    {
                        "text": f"text number {j} " * 20,
                        "index": j,
                        "pile_set_name": ["Pile-CC", "Github", "ArXiv"][j % 3],
                    }
                )
                + "\n"
            )
    shutil.copytree(repo / "config", tmp_path / "config")
    (tmp_path / "opt-in.yaml").write_text("paper: {allow_pickle: true}\nmap: {max_iter: 250}\n")
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "2",
        "--snakefile",
        str(repo / "Snakefile"),
        "--configfile",
        "config/paper/config.yaml",
        "opt-in.yaml",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results = tmp_path / "results"
    ridge = pd.read_csv(results / "analysis/prediction/ridge.csv")
    assert len(ridge) == 2 * 2 * 8 and ridge["pearson_mean"].notna().all()
    assert set(ridge["grouping"]) == {"model_type (4 groups)", "none"}
    assert ridge.query("features == 'Q' and cv == 'kfold'")["pearson_mean"].min() > 0.5
    assert (results / "figures/map_best_task.png").exists()
    assert len(pd.read_csv(results / "analysis/model_list.csv")) == K
    assert (results / "analysis/leakage/leakage_map.pdf").exists()
    assert read_provenance(results / "matrix/loglik.npz")["step"] == "convert-paper-data"


def _global(module: str, name: str) -> bytes:
    """Protocol-4 opcodes that push `module`.`name` (a dotted name resolves attribute chains)."""

    def text(s: str) -> bytes:
        data = s.encode()
        return b"\x8c" + bytes([len(data)]) + data

    return text(module) + text(name) + b"\x93"


def _call(module: str, name: str, *args: str) -> bytes:
    """A protocol-4 pickle that calls module.name(*args) (what __reduce__ to a callable produces)."""
    body = (
        _global(module, name) + b"(" + b"".join(b"\x8c" + bytes([len(a.encode())]) + a.encode() for a in args) + b"tR."
    )
    return b"\x80\x04" + body


@pytest.mark.parametrize(
    "target",
    [
        ("os", "system"),  # __reduce__ to a callable
        ("numpy", "load"),  # a loader that would unpickle a further file
        ("pandas", "read_pickle"),
        ("pandas.io.common", "os.system"),  # attribute chain through a module
        ("pandas", "io.common.os.system"),
        ("numpy", "core.multiarray._reconstruct.__globals__"),
        ("numpy._core.multiarray", "scalar.__self__"),
        ("builtins", "getattr"),
        ("builtins", "eval"),
        ("numpy", "frompyfunc"),
        ("pandas", "eval"),
        ("numpy.lib.npyio", "load"),
        ("numpy.testing", "_private.utils.os.system"),
        ("copyreg", "_reconstructor"),
        ("collections", "defaultdict"),
        ("datetime", "sys"),
    ],
)
def test_escape_routes_out_of_the_restricted_unpickler_are_closed(tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "second.npy", np.array([Exploit()], dtype=object), allow_pickle=True)
    argument = "second.npy" if "load" in target[1] else "second.pkl" if "pickle" in target[1] else "touch PWNED"
    (tmp_path / "evil.pkl").write_bytes(_call(*target, argument))
    with pytest.raises(InputError, match="refusing to load"):
        paper_data.read_pickle(tmp_path / "evil.pkl", allow_pickle=True)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_the_released_pickles_plain_data_still_loads(tmp_path, protocol):
    import collections
    import datetime

    data = [
        {
            "a": np.arange(3.0),
            "b": np.float64(1.5),
            "c": np.int64(2),
            "d": pd.Timestamp("2023-01-15T10:00:00Z"),
            "e": pd.Timestamp("2023-01-15"),
            "f": pd.NaT,
            "g": datetime.date(2023, 1, 2),
            "h": None,
            "i": collections.OrderedDict(x=1),
            "j": np.ones(2, np.float32),
            "k": (1, 2.0, "s", b"b", {3}),
        }
    ]
    with open(tmp_path / "ok.pkl", "wb") as fh:
        pickle.dump(data, fh, protocol=protocol)
    loaded = paper_data.read_pickle(tmp_path / "ok.pkl", allow_pickle=True)
    assert loaded[0]["d"] == data[0]["d"] and np.array_equal(loaded[0]["a"], data[0]["a"])
    assert pd.isna(loaded[0]["f"]) and loaded[0]["k"] == data[0]["k"]


def test_the_start_up_check_knows_paper_modes_models_table():
    """Config columns are checked before anything runs (lmmap.workflow); paper mode's table has more."""
    from lmmap.workflow import PAPER_MODELS_TABLE_COLUMNS, check_config_columns

    records = [{"model_name": "m", "model_type": "llama", "model_size": 7, "created_at": "2024-05-01", "downloads": 3}]
    assert set(paper_data.models_table(records, np.zeros((1, 3)), {}).columns) <= set(PAPER_MODELS_TABLE_COLUMNS)
    paper = {"paper": {"enabled": True}, "analysis": {"prediction": {"group_by": "model_type"}}}
    check_config_columns(paper)
    with pytest.raises(InputError, match="model_type"):
        check_config_columns(paper | {"paper": {"enabled": False}})
