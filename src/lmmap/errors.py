"""The one error type for bad input: it always names the file, and the record and field when known."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input found in a file (or a config value): the message says exactly where."""

    def __init__(self, path: str | Path, message: str, record: object = None, field: str | None = None):
        self.path = str(path)
        self.record = record
        self.field = field
        self.reason = message
        where = [self.path]
        if record is not None:
            where.append(f"record {record}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{': '.join(where)}: {message}")
