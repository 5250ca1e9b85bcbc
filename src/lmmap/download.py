"""Fetching a Hugging Face model into the local cache, on a machine with network, so that the
scoring jobs (on GPU nodes, often without network) load it offline at the pinned revision."""

from __future__ import annotations

from pathlib import Path

from lmmap.errors import InputError
from lmmap.sheet import ModelSpec, is_hub_source

# other formats of the same weights, never loaded by transformers' PyTorch classes
_OTHER_FORMATS = [
    "*.onnx",
    "*.onnx_data",
    "onnx/*",
    "*.msgpack",
    "*.h5",
    "*.tflite",
    "*.ot",
    "*.mlmodel",
    "coreml/*",
    "original/*",
    "*.gguf",
]


def ignore_patterns(repo_files: list[str], gguf_file: str | None) -> list[str]:
    """Files not to download: other formats, pickled weights where safetensors exist, and all
    weights but the one GGUF file when the sheet names one."""
    if gguf_file:
        return ["*.safetensors", "*.bin", "*.pt", "*.pth"] + [p for p in _OTHER_FORMATS if p != "*.gguf"]
    patterns = list(_OTHER_FORMATS)
    if any(name.endswith(".safetensors") for name in repo_files):
        patterns += ["*.bin", "*.pt", "*.pth"]
    return patterns


def download(spec: ModelSpec, cache_dir: str | None = None) -> dict:
    """Download `spec` (a hub source) at its revision; returns what was fetched."""
    from huggingface_hub import HfApi, snapshot_download

    if not is_hub_source(spec.source):
        raise InputError(spec.source, "not a Hugging Face repo id", record=spec.model_id, field="source")
    try:
        files = HfApi().list_repo_files(spec.source, revision=spec.revision)
        if spec.gguf_file and spec.gguf_file not in files:
            raise InputError(spec.source, f"has no file '{spec.gguf_file}'", record=spec.model_id, field="gguf_file")
        path = snapshot_download(
            spec.source,
            revision=spec.revision,
            cache_dir=cache_dir,
            ignore_patterns=ignore_patterns(files, spec.gguf_file),
        )
    except InputError:
        raise
    except Exception as exc:  # HTTP, network (httpx) and file-system errors alike: name the model
        raise InputError(
            spec.source,
            f"cannot download (revision {spec.revision or 'main'}): {exc}",
            record=spec.model_id,
            field="source",
        ) from None
    local = Path(path)
    fetched = [p for p in local.rglob("*") if p.is_file()]
    return {
        "model_id": spec.model_id,
        "source": spec.source,
        "revision_requested": spec.revision,
        "revision_resolved": local.name,  # the snapshot directory is named by the commit
        "gguf_file": spec.gguf_file,
        "path": str(local),
        "n_files": len(fetched),
        "bytes": sum(p.stat().st_size for p in fetched),
    }
