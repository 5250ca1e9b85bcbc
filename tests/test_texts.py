import json

import pytest

from lmmap.errors import InputError
from lmmap.texts import chunk_corpus, chunk_document, load_text_set, read_source_jsonl, write_text_set


def test_chunks_respect_byte_limit_and_keep_every_character():
    text = "".join(chr(0x41 + i % 26) for i in range(3000))
    pieces = chunk_document(text, max_bytes=1024, min_bytes=0)
    assert [len(p.encode()) for p in pieces] == [1024, 1024, 952]
    assert "".join(pieces) == text


@pytest.mark.parametrize("char", ["é", "€", "😀"])  # 2, 3 and 4 UTF-8 bytes
def test_multibyte_character_at_the_cut_moves_to_the_next_piece(char):
    width = len(char.encode())
    text = "a" * 1023 + char + "b" * 500
    pieces = chunk_document(text, max_bytes=1024, min_bytes=0)
    assert pieces[0] == "a" * 1023  # the character would straddle byte 1024: it is not cut
    assert pieces[1].startswith(char)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= 1024 for p in pieces)
    assert len(pieces[1].encode()) == width + 500


def test_short_pieces_are_dropped_strictly_at_min_bytes():
    text = "x" * (1024 + 256)
    assert len(chunk_document(text, 1024, 256)) == 1  # a 256-byte tail is not "longer than 256"
    assert len(chunk_document(text + "y", 1024, 256)) == 2


def test_chunk_corpus_sampling_is_seeded_and_ids_are_stable():
    docs = [{"doc_id": f"d{i}", "domain": "code" if i % 2 else "prose", "text": "z" * 3000} for i in range(10)]
    first = chunk_corpus(docs, n=12, seed=3)
    again = chunk_corpus(docs, n=12, seed=3)
    other = chunk_corpus(docs, n=12, seed=4)
    assert first == again and first != other
    assert len({r["id"] for r in first}) == 12
    assert {r["domain"] for r in first} == {"code", "prose"}
    with pytest.raises(ValueError, match="yields only 30 chunks"):
        chunk_corpus(docs, n=31, seed=0)


def write_lines(path, lines):
    path.write_bytes(b"".join(line if isinstance(line, bytes) else line.encode() + b"\n" for line in lines))
    return path


def test_paper_schema_is_read_with_ids_and_domains(tmp_path):
    path = write_lines(
        tmp_path / "t.jsonl",
        [
            json.dumps({"index": 7, "pile_idx": 1, "chunk_idx": 2, "pile_set_name": "ArXiv", "text": "hello"}),
            "",
            json.dumps({"text": "no id"}),
        ],
    )
    records = read_source_jsonl(path)
    assert [r["id"] for r in records] == ["7", "2"]
    assert records[0]["domain"] == "ArXiv" and records[0]["pile_idx"] == 1
    assert records[1]["domain"] == "unknown"


@pytest.mark.parametrize(
    "lines, record, field, message",
    [
        (
            [
                '{"text": "a"',
            ],
            "line 1",
            None,
            "malformed JSON",
        ),
        (['{"text": "a"}', '{"txt": "b"}'], "line 2", "text", "missing"),
        (['{"text": "   "}'], "line 1", "text", "empty"),
        ([b'{"text": "\xff"}\n'], "line 1", None, "invalid UTF-8"),
        (['{"index": 1, "text": "a"}', '{"index": 1, "text": "b"}'], 1, "id", "duplicate text id '1'"),
    ],
)
def test_bad_input_names_file_record_and_field(tmp_path, lines, record, field, message):
    path = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(InputError) as info:
        read_source_jsonl(path)
    assert info.value.path == str(path) and info.value.record == record and info.value.field == field
    assert message in str(info.value) and str(path) in str(info.value)


def test_text_set_round_trip_records_its_sha256(tmp_path):
    records = [{"id": "a", "domain": "d", "text": "first"}, {"id": "b", "domain": "e", "text": "ünïcode"}]
    sha = write_text_set(tmp_path / "set.jsonl", records)
    text_set = load_text_set(tmp_path / "set.jsonl")
    assert text_set.ids == ["a", "b"] and text_set.texts[1] == "ünïcode" and text_set.sha256 == sha
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary file
