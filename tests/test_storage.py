import errno
import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lmmap.errors import InputError
from lmmap.provenance import read_provenance, write_provenance
from lmmap.storage import atomic_path, load_npz, save_npz, sha256_file


def test_failed_write_leaves_neither_output_nor_temporary(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
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


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_get_the_permissions_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        save_npz(tmp_path / "a.npz", x=np.arange(3))
        write_provenance(tmp_path / "a.npz", "demo-step")
    finally:
        os.umask(old)
    for path in (tmp_path / "a.npz", tmp_path / "a.npz.prov.json"):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EFBIG])
def test_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, monkeypatch, error):
    def full(*args, **kwargs):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(InputError) as info:
        save_npz(tmp_path / "L.npz", x=np.arange(3))
    assert str(info.value) == f"{tmp_path / 'L.npz'}: cannot write: {os.strerror(error)}"
    assert list(tmp_path.iterdir()) == []


def test_an_output_whose_sidecar_cannot_be_written_is_removed(tmp_path, monkeypatch):
    from lmmap import provenance

    save_npz(tmp_path / "a.npz", x=np.arange(3))
    monkeypatch.setattr(provenance, "write_json", lambda *a: (_ for _ in ()).throw(InputError(a[0], "cannot write")))
    with pytest.raises(InputError):
        write_provenance(tmp_path / "a.npz", "demo-step")
    assert list(tmp_path.iterdir()) == []  # never an npz that looks finished without its provenance


def test_a_file_size_limit_is_one_line_naming_the_file(tmp_path):
    """RLIMIT_FSIZE: Python ignores SIGXFSZ, so the write fails with EFBIG, named like a full disk."""
    source = tmp_path / "source.jsonl"
    source.write_text("".join(json.dumps({"text": "x" * 200}) + "\n" for _ in range(50)))
    out = tmp_path / "texts.jsonl"
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # noqa: E731
    result = subprocess.run(
        [sys.executable, "-m", "lmmap", "prepare-texts", "--input", str(source), "--out", str(out)]
        + ["--seed", "42", "--max-bytes", "1024", "--min-bytes", "256"],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
    )
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2 and last == f"lmmap prepare-texts: error: {out}: cannot write: File too large"
    assert not out.exists() and not list(tmp_path.glob(".texts*"))


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04truncated"])
def test_an_npz_that_is_empty_truncated_or_not_a_zip_is_named(tmp_path, content):
    good = tmp_path / "good.npz"
    save_npz(good, x=np.arange(1000.0))
    for path, data in ((tmp_path / "bad.npz", content), (tmp_path / "cut.npz", good.read_bytes()[:300])):
        path.write_bytes(data)
        with pytest.raises(InputError, match=f"{path.name}: not a readable npz file"):
            load_npz(path)


def test_a_directory_built_then_renamed_into_place_gets_the_umask_permissions(tmp_path):
    from lmmap.storage import temporary_directory

    old = os.umask(0o022)
    try:
        built = temporary_directory(tmp_path / "model")
    finally:
        os.umask(old)
    assert stat.S_IMODE(built.stat().st_mode) == 0o755 and built.parent == tmp_path
