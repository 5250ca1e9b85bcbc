"""Reference text sets: chunking documents the paper's way, reading and writing text-set files.

A text set is a JSONL file with one record per text: `id`, `domain`, `text` and any source fields.
Its sha256 is its identity: every score file records it and the merge refuses mismatches.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

from lmmap.errors import InputError
from lmmap.storage import atomic_path, sha256_file

PAPER_FIELDS = ("index", "pile_idx", "chunk_idx", "pile_set_name")


@dataclasses.dataclass(frozen=True)
class TextSet:
    ids: list[str]
    domains: list[str]
    texts: list[str]
    sha256: str
    path: str

    def __len__(self) -> int:
        return len(self.texts)


def chunk_document(text: str, max_bytes: int, min_bytes: int) -> list[str]:
    """Split `text` into consecutive pieces of at most `max_bytes` UTF-8 bytes, never cutting a
    character, and keep the pieces longer than `min_bytes` bytes."""
    data = text.encode("utf-8")
    pieces, start = [], 0
    while start < len(data):
        end = min(start + max_bytes, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a continuation byte: back off
            end -= 1
        if end == start:  # max_bytes smaller than one character
            raise ValueError(f"max_bytes={max_bytes} cannot hold a single character")
        if end - start > min_bytes:
            pieces.append(data[start:end].decode("utf-8"))
        start = end
    return pieces


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line, with clear errors for bad lines."""
    path = Path(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the `with` below; only opening may fail here
    except FileNotFoundError:
        raise InputError(path, "file does not exist") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(path, f"invalid UTF-8 at byte {exc.start}", record=f"line {lineno}") from None
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(path, f"malformed JSON ({exc.msg})", record=f"line {lineno}") from None
            if not isinstance(obj, dict):
                raise InputError(path, "expected a JSON object", record=f"line {lineno}")
            yield lineno, obj


def _require_text(path: Path, lineno: int, obj: dict) -> str:
    text = obj.get("text")
    if not isinstance(text, str):
        raise InputError(path, "missing or not a string", record=f"line {lineno}", field="text")
    if not text.strip():
        raise InputError(path, "is empty", record=f"line {lineno}", field="text")
    _require_encodable(path, lineno, "text", text)
    return text


def _require_encodable(path: Path, lineno: int, field: str, value: str) -> None:
    """JSON's \\ud800 escapes decode to lone surrogates, which no tokenizer or UTF-8 file takes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            path,
            f"lone surrogate {value[exc.start]!r} at character {exc.start} (not valid Unicode text)",
            record=f"line {lineno}",
            field=field,
        ) from None


def read_source_jsonl(path: str | Path) -> list[dict]:
    """Read texts in the paper's `texts-10k-pile.jsonl` schema (`text` + optional `index`,
    `pile_set_name`, `pile_idx`, `chunk_idx`) or a text set; return text-set records."""
    path = Path(path)
    records = []
    for lineno, obj in iter_jsonl(path):
        text = _require_text(path, lineno, obj)
        ident = obj.get("id", obj.get("index", lineno - 1))
        domain = obj.get("domain", obj.get("pile_set_name", "unknown"))
        # an id is a string or an integer index; anything else (null, an object) would become a made-up id
        if isinstance(ident, bool) or not isinstance(ident, (str, int)):
            raise InputError(
                path,
                f"must be a string or an integer, not {json.dumps(ident)}",
                record=f"line {lineno}",
                field="id" if "id" in obj else "index",
            )
        if not isinstance(domain, str):
            raise InputError(
                path,
                f"must be a string, not {json.dumps(domain)}",
                record=f"line {lineno}",
                field="domain" if "domain" in obj else "pile_set_name",
            )
        for field, value in (("id", str(ident)), ("domain", domain)):
            _require_encodable(path, lineno, field, value)
        extra = {k: obj[k] for k in PAPER_FIELDS if k in obj}
        records.append({"id": str(ident), "domain": domain, "text": text, **extra})
    if not records:
        raise InputError(path, "contains no texts")
    check_unique_ids(path, records)
    return records


def read_documents(path: str | Path, split: str | None = None) -> list[dict]:
    """Documents (`doc_id`, `domain`, `text`) to chunk, of one split if given, with checked text."""
    path = Path(path)
    docs = []
    for lineno, doc in iter_jsonl(path):
        if not split or doc.get("split") == split:
            _require_text(path, lineno, doc)
            docs.append(doc)
    return docs


def check_unique_ids(path: str | Path, records: Iterable[dict]) -> None:
    seen: dict[str, int] = {}
    for position, record in enumerate(records):
        if record["id"] in seen:
            raise InputError(
                path,
                f"duplicate text id '{record['id']}' (also record {seen[record['id']]})",
                record=position,
                field="id",
            )
        seen[record["id"]] = position


def chunk_corpus(
    documents: Iterable[dict], n: int | None, seed: int, max_bytes: int = 1024, min_bytes: int = 256
) -> list[dict]:
    """Chunk documents (`doc_id`, `domain`, `text`) and sample `n` chunks with a fixed seed
    (all chunks if n is None); ids are `<doc_id>#<chunk index>`, kept in sampled order."""
    chunks = []
    for doc in documents:
        for index, piece in enumerate(chunk_document(doc["text"], max_bytes, min_bytes)):
            chunks.append({"id": f"{doc['doc_id']}#{index}", "domain": doc["domain"], "text": piece})
    if n is not None:
        if n > len(chunks):
            raise ValueError(f"asked for {n} texts but the corpus yields only {len(chunks)} chunks")
        chunks = random.Random(seed).sample(chunks, n)
    return chunks


def write_text_set(path: str | Path, records: list[dict]) -> str:
    """Write records atomically as JSONL; return the file's sha256."""
    check_unique_ids(path, records)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return sha256_file(path)


def load_text_set(path: str | Path) -> TextSet:
    path = Path(path)
    records = []
    for lineno, obj in iter_jsonl(path):
        _require_text(path, lineno, obj)
        for field in ("id", "domain"):
            if not isinstance(obj.get(field), str):
                raise InputError(path, "missing or not a string", record=f"line {lineno}", field=field)
            _require_encodable(path, lineno, field, obj[field])
        records.append(obj)
    if not records:
        raise InputError(path, "text set contains no texts")
    check_unique_ids(path, records)
    return TextSet(
        ids=[r["id"] for r in records],
        domains=[r["domain"] for r in records],
        texts=[r["text"] for r in records],
        sha256=sha256_file(path),
        path=str(path),
    )
