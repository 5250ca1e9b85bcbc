import json

import numpy as np
import pytest

from lmmap.errors import InputError
from lmmap.provenance import read_provenance, write_provenance
from lmmap.storage import atomic_path, load_npz, save_npz, sha256_file


def test_failed_write_leaves_neither_output_nor_temporary(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_npz_round_trip_never_needs_pickles(tmp_path):
    path = tmp_path / "a.npz"
    save_npz(path, x=np.arange(3.0), names=np.array(["a", "b"], dtype=object), scalar=np.array("s"))
    data = load_npz(path, required=("x", "names"))
    assert data["names"].dtype.kind == "U" and str(data["scalar"]) == "s"
    with pytest.raises(InputError, match="field 'missing'"):
        load_npz(path, required=("missing",))


def test_provenance_records_inputs_with_hashes_and_environment(tmp_path):
    source, output = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("input")
    output.write_text("output")
    write_provenance(output, "demo-step", inputs={"source": source}, params={"k": 1}, extra={"note": "x"})
    record = read_provenance(output)
    assert record["inputs"]["source"]["sha256"] == sha256_file(source)
    assert record["output"]["sha256"] == sha256_file(output)
    assert record["step"] == "demo-step" and record["params"] == {"k": 1} and record["note"] == "x"
    env = record["environment"]
    assert env["packages"]["numpy"] and env["code"]["lmmap"] and env["python"]
    json.dumps(record)
