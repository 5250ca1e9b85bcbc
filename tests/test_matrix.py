import numpy as np
import pytest

from lmmap.errors import InputError
from lmmap.matrix import merge_scores
from lmmap.provenance import write_provenance
from lmmap.storage import save_npz
from lmmap.texts import load_text_set, write_text_set


@pytest.fixture
def text_set(tmp_path):
    write_text_set(tmp_path / "texts.jsonl", [{"id": str(i), "domain": "d", "text": f"text {i}"} for i in range(4)])
    return load_text_set(tmp_path / "texts.jsonl")


def score_file(tmp_path, text_set, model_id, loglik, sha=None, ids=None):
    path = tmp_path / f"{model_id}.npz"
    save_npz(
        path,
        loglik=loglik if isinstance(loglik, np.ndarray) else np.asarray(loglik, float),
        n_tokens=np.ones(len(loglik), int),
        truncated=np.zeros(len(loglik), bool),
        text_ids=np.array(ids or text_set.ids),
        text_set_sha256=np.array(sha or text_set.sha256),
        model_id=np.array(model_id),
    )
    write_provenance(path, "score", inputs={"texts": text_set.path})
    return path


def test_merge_stacks_rows_in_the_given_order(tmp_path, text_set):
    paths = [score_file(tmp_path, text_set, m, [-k, -k - 1, -k - 2, -k - 3]) for k, m in enumerate(["b", "a"])]
    L, ids = merge_scores(paths, text_set)
    assert ids == ["b", "a"] and L.shape == (2, 4) and L[1, 0] == -1.0 and L.dtype == np.float64


@pytest.mark.parametrize(
    "kwargs, field, message",
    [
        ({"sha": "f" * 64}, "text_set_sha256", "different text set"),
        ({"loglik": [-1.0, -2.0, -3.0]}, "loglik", "expected (4,)"),
        ({"loglik": [-1.0, np.nan, -3.0, -4.0]}, "loglik", "non-finite"),
        ({"ids": ["0", "1", "3", "2"]}, "text_ids", "text ids differ"),
        ({"loglik": [-1.0, 2.0, -3.0, -4.0]}, "loglik", "1 positive log-likelihood(s), first 2 at text '1'"),
        ({"loglik": np.array(["-1.0", "-2.0", "-3.0", "-4.0"])}, "loglik", "stored as <U4, not floats"),
        ({"loglik": np.array([-1 + 1j, -2, -3, -4])}, "loglik", "stored as complex128, not floats"),
        ({"no_sidecar": True}, None, "has no provenance sidecar bad-model.npz.prov.json"),
    ],
)
def test_merge_refuses_scores_that_do_not_fit(tmp_path, text_set, kwargs, field, message):
    loglik = kwargs.pop("loglik", [-1.0, -2.0, -3.0, -4.0])
    no_sidecar = kwargs.pop("no_sidecar", False)
    good = score_file(tmp_path, text_set, "good", [0.0] * 4)
    bad = score_file(tmp_path, text_set, "bad-model", loglik, **kwargs)
    if no_sidecar:  # e.g. the disk filled up between the npz and its sidecar
        (tmp_path / "bad-model.npz.prov.json").unlink()
    with pytest.raises(InputError) as info:
        merge_scores([good, bad], text_set)
    assert info.value.field == field and message in str(info.value) and "bad-model" in str(info.value)
