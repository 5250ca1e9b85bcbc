"""Provenance sidecars: every output `X` gets `X.prov.json` recording how it was made.

A sidecar records the step, each input with its sha256 (and, for inputs that have their own sidecar,
that is enough to walk the chain back to the raw inputs), the parameters, the software environment,
the host and device, and the timings.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from lmmap import __version__
from lmmap.storage import json_default, read_json, sha256_file, write_json

SIDECAR_SUFFIX = ".prov.json"
PACKAGES = (
    "torch",
    "transformers",
    "accelerate",
    "tokenizers",
    "numpy",
    "scikit-learn",
    "seaborn",
    "snakemake",
    "pyyaml",
)


def sidecar_path(output: str | Path) -> Path:
    return Path(str(output) + SIDECAR_SUFFIX)


@functools.cache
def code_version() -> dict:
    """lmmap's version and the git commit of its source tree (with a dirty flag), when known."""
    info = {"lmmap": __version__, "git_commit": os.environ.get("LMMAP_GIT_COMMIT"), "git_dirty": None}
    if info["git_commit"]:
        return info
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        info.update(git_commit=commit, git_dirty=bool(status.strip()))
    except (OSError, subprocess.SubprocessError):
        pass
    return info


@functools.cache
def environment() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "packages": versions,
        "code": code_version(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


def describe_inputs(inputs: Mapping[str, str | Path] | Iterable[str | Path]) -> dict:
    """{name: {path, sha256, sidecar_sha256}} for each input file (name = path when a plain list is
    given); the input's own sidecar is hashed too, so editing it afterwards is detected."""
    items = inputs.items() if isinstance(inputs, Mapping) else ((str(p), p) for p in inputs)
    described = {}
    for name, path in items:
        path, sidecar = Path(path), sidecar_path(path)
        described[str(name)] = {
            "path": str(path),
            "sha256": sha256_file(path) if path.is_file() else None,
            "sidecar_sha256": sha256_file(sidecar) if sidecar.is_file() else None,
        }
    return described


def record_digest(record: Mapping) -> str:
    """sha256 of a sidecar's record without its own digest field, as JSON with sorted keys."""
    body = {k: v for k, v in record.items() if k != "record_sha256"}
    text = json.dumps(json.loads(json.dumps(body, default=json_default)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def write_provenance(
    output: str | Path,
    step: str,
    inputs: Mapping | Iterable = (),
    params: Mapping | None = None,
    extra: Mapping | None = None,
    started: float | None = None,
) -> Path:
    """Write the sidecar of `output` (which must already exist) and return its path."""
    output = Path(output)
    now = time.time()
    record = {
        "output": {"path": str(output), "sha256": sha256_file(output)},
        "step": step,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "inputs": describe_inputs(inputs),
        "params": dict(params or {}),
        "environment": environment(),
        "timing": {"seconds": round(now - started, 3) if started else None},
    }
    if extra:
        record.update(extra)
    record["record_sha256"] = record_digest(record)  # an edit to the sidecar itself shows
    path = sidecar_path(output)
    try:
        write_json(path, record)
    except BaseException:  # an output without its sidecar must never look finished
        output.unlink(missing_ok=True)
        raise
    return path


def read_provenance(output: str | Path) -> dict:
    return read_json(sidecar_path(output))
