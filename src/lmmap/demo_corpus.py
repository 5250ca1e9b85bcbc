"""The demo corpus: documents that every machine with Python and lmmap installed already has.

Each source is a domain, as the Pile's subsets are: standard-library code, the Python documentation
topics, C headers, package READMEs, licence texts and CSV data (package files only from lmmap's own
dependencies, so other installed packages leave the corpus unchanged). Every document is assigned to one
split by a hash of its id, so the reference texts, the zoo's training data and the held-out benchmark
data never overlap.
"""

from __future__ import annotations

import functools
import hashlib
import re
import site
import sysconfig
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

SPLITS = ("reference", "train", "heldout")


def _site_dirs() -> list[Path]:
    dirs = {Path(p) for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]]}
    return sorted(d for d in dirs if d.is_dir())


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def lmmap_distributions() -> frozenset[str] | None:
    """Canonical names of everything lmmap's core requirements pull in (extras left out), or None
    when lmmap is not installed as a distribution. Package files come only from these, so other
    packages in the environment (a benchmark harness, a notebook) do not change the demo corpus.
    lmmap itself is left out: its metadata carries the README, which changes from commit to commit."""
    from importlib import metadata

    from packaging.requirements import Requirement

    try:
        metadata.distribution("lmmap")
    except metadata.PackageNotFoundError:
        return None
    found, todo = set(), ["lmmap"]
    while todo:
        name = _canonical(todo.pop())
        if name in found:
            continue
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        found.add(name)
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return frozenset(found - {"lmmap"})


def _from_core_distribution(relative: Path) -> bool:
    """Whether a site-packages file belongs to one of `lmmap_distributions()` (all do when unknown)."""
    allowed = lmmap_distributions()
    if allowed is None:
        return True
    top = relative.parts[0]
    if top.endswith(".dist-info"):
        return _canonical(top.removesuffix(".dist-info").rsplit("-", 1)[0]) in allowed
    return any(_canonical(owner) in allowed for owner in _owners().get(top, []))


@functools.cache
def _owners() -> dict[str, list[str]]:
    """{top-level package: its distributions}: one scan of the environment, not one per file."""
    from importlib import metadata

    return metadata.packages_distributions()


def _files(
    roots: Iterable[Path], patterns: tuple[str, ...], keep: Callable[[Path], bool] = lambda relative: True
) -> Iterator[tuple[str, Path]]:
    for root in roots:
        for pattern in patterns:
            for path in sorted(root.glob(pattern)):
                if path.is_file() and keep(path.relative_to(root)):
                    yield f"{root.name}/{path.relative_to(root)}", path


def _python_code() -> Iterator[tuple[str, str]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name, path in _files([stdlib], ("*.py", "*/*.py")):
        yield name, path.read_text(encoding="utf-8", errors="replace")


def _python_docs() -> Iterator[tuple[str, str]]:
    from pydoc_data.topics import topics

    for name in sorted(topics):
        yield f"pydoc/{name}", topics[name]


def _c_headers() -> Iterator[tuple[str, str]]:
    include = Path(sysconfig.get_paths()["include"])
    for name, path in _files([include, Path("/usr/include")], ("*.h", "*/*.h")):
        yield name, path.read_text(encoding="utf-8", errors="replace")


def _package_docs() -> Iterator[tuple[str, str]]:
    for name, path in _files(_site_dirs(), ("*.dist-info/METADATA",), _from_core_distribution):
        text = path.read_text(encoding="utf-8", errors="replace")
        body = text.split("\n\n", 1)[1] if "\n\n" in text else ""  # the README after the headers
        yield name, body


def _licences() -> Iterator[tuple[str, str]]:
    patterns = ("*.dist-info/LICENSE*", "*.dist-info/licenses/*", "*.dist-info/licenses/*/*", "*.dist-info/COPYING*")
    for name, path in _files(_site_dirs(), patterns, _from_core_distribution):
        yield name, path.read_text(encoding="utf-8", errors="replace")


def _csv_data() -> Iterator[tuple[str, str]]:
    patterns = ("*/*.csv", "*/*/*.csv", "*/*/*/*.csv", "*/*/*/*/*.csv")
    for name, path in _files(_site_dirs(), patterns, _from_core_distribution):
        yield name, path.read_text(encoding="utf-8", errors="replace")


DOMAINS: dict[str, Callable[[], Iterator[tuple[str, str]]]] = {
    "python-code": _python_code,
    "python-docs": _python_docs,
    "c-headers": _c_headers,
    "package-docs": _package_docs,
    "licences": _licences,
    "csv-data": _csv_data,
}


def assign_split(doc_id: str, fractions: dict[str, float]) -> str:
    """A stable split for a document: the same id always lands in the same split."""
    u = int.from_bytes(hashlib.sha256(doc_id.encode()).digest()[:8], "big") / 2**64
    edge = 0.0
    for split in SPLITS:
        edge += fractions[split]
        if u < edge:
            return split
    return SPLITS[-1]


def build_documents(
    domains: list[str],
    fractions: dict[str, float],
    max_docs_per_domain: int,
    max_doc_bytes: int,
    min_doc_bytes: int = 300,
) -> list[dict]:
    """Collect up to `max_docs_per_domain` documents per domain (each cut to `max_doc_bytes` on a
    character boundary), skip near-duplicates by content hash, and assign splits."""
    documents, seen = [], set()
    for domain in domains:
        if domain not in DOMAINS:
            raise ValueError(f"unknown demo domain '{domain}'; known: {sorted(DOMAINS)}")
        candidates = []
        for name, text in DOMAINS[domain]():
            text = text.encode("utf-8")[:max_doc_bytes].decode("utf-8", errors="ignore")
            digest = hashlib.sha256(text.encode()).hexdigest()
            if len(text.encode()) < min_doc_bytes or digest in seen:
                continue
            seen.add(digest)
            candidates.append((hashlib.sha256(name.encode()).hexdigest(), name, text))
        # a deterministic, content-independent spread over the domain's files
        for _, name, text in sorted(candidates)[:max_docs_per_domain]:
            doc_id = f"{domain}:{name}"
            documents.append(
                {"doc_id": doc_id, "domain": domain, "split": assign_split(doc_id, fractions), "text": text}
            )
    return documents
