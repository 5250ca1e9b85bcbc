"""Atomic file writes and safe array storage.

Every output is written to a temporary file in the same directory and renamed into place, so an
interrupted job never leaves a file that looks complete. Arrays are stored as npz without pickles.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lmmap.errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it is fsynced and renamed onto `path`.

    The file gets the permissions the umask gives (mkstemp's 0600 would hide results from colleagues
    on a shared file system). A full disk or a file-size limit is an InputError naming `path`."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(path, f"cannot write: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def temporary_directory(target: Path) -> Path:
    """An empty sibling directory of `target` to build it in before one rename, with the permissions
    the umask gives (mkdtemp's 0700 would hide the renamed directory from colleagues)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    os.chmod(tmp, 0o777 & ~current_umask())
    return tmp


def replace_directory(tmp: Path, target: Path) -> None:
    """Put the complete directory `tmp` (from `temporary_directory`) in place of `target`, which may
    exist: renames only, so that readers see the old directory or the new one, never a mix."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / "model")
    os.replace(tmp, target)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def current_umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: object) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n")


def read_json(path: str | Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise InputError(path, "file does not exist") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"invalid JSON: {exc.msg}", record=f"line {exc.lineno}") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"invalid UTF-8 at byte {exc.start}") from None


def json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Save arrays (strings as unicode arrays, never objects) atomically."""
    clean = {}
    for name, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            arr = arr.astype(str)
        clean[name] = arr
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **clean)


def load_npz(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Load every array of an npz file without ever unpickling; check that `required` names exist."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise InputError(path, "file does not exist") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # truncated, not a zip
        raise InputError(path, f"not a readable npz file ({type(exc).__name__}: {exc})") from None
    for name in required:
        if name not in arrays:
            raise InputError(path, "array is missing", field=name)
    return arrays


def sha256_file(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
