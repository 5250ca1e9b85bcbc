"""Demo benchmarks: item construction, harness-style multiple-choice scoring, the leaderboard table."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch

from lmmap import tasks, workflow
from lmmap.cli import main as cli_main
from lmmap.errors import InputError
from lmmap.loading import load_model
from lmmap.provenance import read_provenance
from lmmap.sheet import ModelSpec
from tiny_models import sample_texts, save_tiny_model

PARAMS = tasks.TaskParams(n_items=12, n_choices=4, context_chars=(80, 200), continuation_chars=30, seed=5)


def _documents(n: int = 16) -> list[dict]:
    texts = sample_texts(n, seed=3, min_words=120, max_words=160)
    return [
        {
            "doc_id": f"d{i}",
            "domain": "prose" if i % 2 else "code",
            "split": "heldout" if i < n - 2 else "train",
            "text": text,
        }
        for i, text in enumerate(texts)
    ]


@pytest.fixture(scope="module")
def chunks():
    return tasks.heldout_chunks(_documents(), None, max_bytes=600, min_bytes=200)


def test_heldout_chunks_come_only_from_heldout_documents_of_the_domains():
    docs = _documents()
    chunks = tasks.heldout_chunks(docs, ["prose"], max_bytes=600, min_bytes=200)
    heldout_prose = {d["doc_id"] for d in docs if d["split"] == "heldout" and d["domain"] == "prose"}
    assert chunks and {c["id"].split("#")[0] for c in chunks} <= heldout_prose


@pytest.mark.parametrize("kind", tasks.KINDS)
def test_items_hold_the_true_continuation(kind, chunks):
    items = tasks.build_items(kind, chunks, PARAMS, f"t-{kind}")
    texts = {c["id"]: c["text"] for c in chunks}
    assert len(items) == PARAMS.n_items
    for item in items:
        text, truth = texts[item["id"]], item["choices"][item["label"]]
        assert len(item["choices"]) == len(set(item["choices"])) == PARAMS.n_choices
        assert text.startswith(item["context"] + truth)
        assert len(item["context"]) >= PARAMS.context_chars[0]
        assert not item["context"][-1].isspace() and truth[0].isspace()  # cut at a word boundary
        for choice in item["choices"]:
            if kind == "word-order":
                assert Counter(choice.split()) == Counter(truth.split())
            if kind == "spelling":
                assert len(choice) == len(truth) and sorted(choice) == sorted(truth)
    assert tasks.build_items(kind, chunks, PARAMS, f"t-{kind}") == items  # seeded


def test_labels_are_spread_over_positions(chunks):
    items = tasks.build_items(
        "continuation",
        chunks,
        tasks.TaskParams(n_items=20, n_choices=4, context_chars=(80, 200), continuation_chars=30, seed=1234),
        "spread",
    )
    assert len(Counter(item["label"] for item in items)) == 4


def test_too_few_chunks_is_an_error_naming_the_task(chunks):
    with pytest.raises(InputError, match="n_items") as err:
        tasks.build_items("continuation", chunks[:3], PARAMS, "tiny-task")
    assert err.value.record == "tiny-task"


def test_read_items_rejects_a_bad_label(tmp_path):
    path = tmp_path / "task.jsonl"
    path.write_text(json.dumps({"context": "a", "choices": [" b", " c"], "label": 2}) + "\n")
    with pytest.raises(InputError, match="label"):
        tasks.read_items(path)


def test_scoring_rule_acc_and_acc_norm():
    items = [{"choices": ["aa", "bbbbbbbb"], "label": 1}, {"choices": ["a", "b"], "label": 0}]
    logliks = [np.array([-4.0, -6.0]), np.array([-1.0, -2.0])]
    result = tasks.score_items(logliks, items)
    # item 1: raw picks "aa" (wrong); per character -2 vs -0.75 picks the long one (right)
    assert result == {"acc": 0.5, "acc_norm": 1.0, "n_items": 2}


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def tiny(request, tmp_path_factory):
    directory = save_tiny_model(tmp_path_factory.mktemp(request.param), style=request.param, max_positions=128)
    return load_model(ModelSpec(model_id=request.param, source=str(directory)), device="cpu")


def _reference_loglik(loaded, context: str, continuation: str) -> float:
    """One request at a time, in float64: the sum of log p of the continuation's tokens."""
    ((ids, n_cont),) = tasks.encode_requests(loaded.tokenizer, [(context, continuation)])
    model = loaded.model.double()
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    loaded.model.float()
    return float(sum(logprobs[t - 1, ids[t]] for t in range(len(ids) - n_cont, len(ids))))


def test_batched_continuation_logliks_equal_the_reference(tiny):
    texts = sample_texts(12, seed=9, min_words=2, max_words=25)
    requests = [(t, " " + c) for t, c in zip(texts, reversed(texts))]
    batched = tasks.continuation_logliks(tiny.model, tiny.tokenizer, requests, max_length=128, batch_tokens=96)
    reference = [_reference_loglik(tiny, c, x) for c, x in requests]
    np.testing.assert_allclose(batched, reference, rtol=1e-4, atol=1e-4)
    assert len(set(np.round(batched, 3))) == len(batched)


def test_bos_is_added_only_where_the_tokenizer_adds_it(tiny):
    ((ids, n_cont),) = tasks.encode_requests(tiny.tokenizer, [("the model", " maps")])
    assert (ids[0] == tiny.tokenizer.bos_token_id) == tiny.info["adds_bos"]
    assert n_cont >= 1


def test_long_contexts_are_cut_from_the_left(tiny):
    long_context = " ".join(sample_texts(1, seed=1, min_words=400, max_words=400))
    full = tasks.continuation_logliks(
        tiny.model, tiny.tokenizer, [(long_context, " the end")], max_length=128, batch_tokens=8192
    )
    assert np.isfinite(full).all()


def test_evaluation_batches_group_zoo_architectures():
    specs = [
        ModelSpec("zoo/a-s", "results/zoo/zoo--a-s", family="a", type="llama"),
        ModelSpec("zoo/b-m", "results/zoo/zoo--b-m", family="b", type="llama"),
        ModelSpec("zoo/c-m", "results/zoo/zoo--c-m", family="c", type="gpt2"),
        ModelSpec("org/real", "org/real", family="a", type="llama"),
    ]
    batches = workflow.evaluation_batches(specs)
    assert {k: [s.model_id for s in v] for k, v in batches.items()} == {
        "zoo-llama": ["zoo/a-s", "zoo/b-m"],
        "zoo-gpt2": ["zoo/c-m"],
        "model-org--real": ["org/real"],
    }


def test_benchmark_table_uses_each_tasks_metric_on_0_100():
    rows = [
        {"model_id": "m1", "task": "t1", "acc": 0.5, "acc_norm": 0.75},
        {"model_id": "m1", "task": "t2", "acc": 0.25, "acc_norm": 1.0},
        {"model_id": "m2", "task": "t1", "acc": 1.0, "acc_norm": 0.0},
        {"model_id": "m2", "task": "t2", "acc": 0.0, "acc_norm": 0.5},
    ]
    table = tasks.benchmark_table(rows, {"t1": "acc_norm", "t2": "acc"}).set_index("model_id")
    assert list(table.columns) == ["t1", "t2", "mean"]
    assert table.loc["m1"].tolist() == [75.0, 25.0, 50.0] and table.loc["m2"].tolist() == [0.0, 0.0, 0.0]


def test_commands_build_evaluate_and_collect_with_provenance(tmp_path, tiny):
    corpus = tmp_path / "documents.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in _documents()))
    task_files = []
    for kind in ("continuation", "spelling"):
        out = tmp_path / f"{kind}.jsonl"
        assert (
            cli_main(
                [
                    "build-task",
                    "--corpus",
                    str(corpus),
                    "--name",
                    kind,
                    "--kind",
                    kind,
                    "--n-items",
                    "6",
                    "--context-chars",
                    "80",
                    "200",
                    "--continuation-chars",
                    "30",
                    "--n-choices",
                    "4",
                    "--seed",
                    "1234",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        task_files.append(str(out))
    model_dir = tiny.info["source"]
    models = json.dumps([{"model_id": "tiny", "source": model_dir, "family": "x"}])
    evaluation = tmp_path / "evaluation.csv"
    assert (
        cli_main(
            ["evaluate-tasks", "--models", models, "--tasks", *task_files, "--device", "cpu", "--batch-tokens", "8192"]
            + ["--out", str(evaluation)]
        )
        == 0
    )
    scores = tmp_path / "scores.csv"
    assert (
        cli_main(
            [
                "collect-benchmarks",
                "--results",
                str(evaluation),
                "--metrics",
                json.dumps({"continuation": "acc_norm", "spelling": "acc"}),
                "--out",
                str(scores),
            ]
        )
        == 0
    )
    table = pd.read_csv(scores)
    assert list(table.columns) == ["model_id", "continuation", "spelling", "mean"]
    assert table["mean"].between(0, 100).all()
    assert read_provenance(evaluation)["models"]["tiny"]["n_params"] > 0
    assert set(read_provenance(scores)["inputs"]) == {"evaluation"}
    assert re.fullmatch(r"[0-9a-f]{64}", read_provenance(task_files[0])["inputs"]["corpus"]["sha256"])


def test_sheet_rows_round_trip_to_model_specs():
    specs = [ModelSpec("zoo/a-s", "results/zoo/zoo--a-s", family="a", size=1e5), ModelSpec("org/real", "org/real")]
    assert [ModelSpec(**row) for row in json.loads(workflow.sheet_rows_json(specs))] == specs
    assert workflow.zoo_config_files(specs) == ["results/zoo/zoo--a-s/config.json"]
