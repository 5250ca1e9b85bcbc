import json

import numpy as np

from lmmap.cli import main as cli_main
from lmmap.provenance import read_provenance
from lmmap.storage import load_npz
from lmmap.texts import write_text_set
from tiny_models import sample_texts, save_tiny_model


def test_score_many_writes_what_score_writes_for_each_model(tmp_path):
    texts = tmp_path / "texts.jsonl"
    write_text_set(texts, [{"id": str(i), "domain": "d", "text": t} for i, t in enumerate(sample_texts(6, seed=5))])
    models = [
        save_tiny_model(tmp_path / name, style=style, seed=i)
        for i, (name, style) in enumerate([("a", "gpt2"), ("b", "llama")])
    ]
    jobs = [{"model_id": f"m/{p.name}", "source": str(p), "out": str(tmp_path / f"many-{p.name}.npz")} for p in models]
    assert cli_main(["score-many", "--jobs", json.dumps(jobs), "--texts", str(texts), "--device", "cpu"]) == 0
    for path, job in zip(models, jobs):
        single = tmp_path / f"single-{path.name}.npz"
        assert (
            cli_main(
                [
                    "score",
                    "--model-id",
                    job["model_id"],
                    "--source",
                    str(path),
                    "--texts",
                    str(texts),
                    "--out",
                    str(single),
                    "--device",
                    "cpu",
                ]
            )
            == 0
        )
        many, one = load_npz(job["out"]), load_npz(single)
        assert str(many["model_id"]) == job["model_id"]
        np.testing.assert_array_equal(many["loglik"], one["loglik"])
        assert read_provenance(job["out"])["params"]["model"]["model_id"] == job["model_id"]
    a, b = (load_npz(job["out"])["loglik"] for job in jobs)
    assert not np.allclose(a, b)  # two different models, two different vectors
