"""Loading a model and its tokenizer from a local directory, a Hugging Face id or a GGUF file.

Everything loads offline by default (only files already in the Hugging Face cache), with remote code
only when the model sheet says so. The `info` dict of a LoadedModel is what provenance records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import struct
from pathlib import Path

import torch

from lmmap.errors import InputError
from lmmap.sheet import DTYPES as SHEET_DTYPES
from lmmap.sheet import ModelSpec, is_hub_source
from lmmap.storage import read_json, sha256_file, temporary_directory, write_json

log = logging.getLogger(__name__)

# Files whose content decides the scores: weights, configs, tokenizer files (not READMEs and the like).
MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".json", ".model", ".txt", ".tiktoken")
GGUF_MANIFEST = "lmmap-gguf.json"
# the sheet's dtypes, and float64 for the yardstick (kl-validation's --dtype)
DTYPES = {name: getattr(torch, name) for name in (*SHEET_DTYPES, "float64") if name != "auto"}


@dataclasses.dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    info: dict


@dataclasses.dataclass(frozen=True)
class _Location:
    kind: str  # "local", "hub" or "gguf"
    path: str  # directory or hub id passed to from_pretrained
    gguf_file: str | None


def locate(spec: ModelSpec) -> _Location:
    """Decide where `spec.source` loads from; a path that does not exist is an InputError."""
    source = spec.source
    path = Path(source).expanduser()
    if source.lower().endswith(".gguf"):
        if not path.is_file():
            raise InputError(source, "GGUF file does not exist", record=spec.model_id, field="source")
        return _Location("gguf", str(path.parent), path.name)
    if path.is_dir():
        if spec.gguf_file:
            if not (path / spec.gguf_file).is_file():
                raise InputError(
                    path / spec.gguf_file, "GGUF file does not exist", record=spec.model_id, field="gguf_file"
                )
            return _Location("gguf", str(path), spec.gguf_file)
        return _Location("local", str(path), None)
    if not is_hub_source(source):
        raise InputError(source, "model directory or file does not exist", record=spec.model_id, field="source")
    return _Location("hub", source, spec.gguf_file)


def resolve_device(device: str | None) -> str:
    """None picks the first GPU when there is one; "auto" means accelerate's device_map="auto" over
    the GPUs, and plain CPU (hence fp32) on a machine without one."""
    if device is None or (device == "auto" and not torch.cuda.is_available()):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        index = device.partition(":")[2]
        if not torch.cuda.is_available() or (index.isdigit() and int(index) >= torch.cuda.device_count()):
            raise InputError(
                "--device",
                f"'{device}' requested but this machine has "
                f"{torch.cuda.device_count() if torch.cuda.is_available() else 'no'} CUDA GPU(s)",
            )
    return device


def resolve_dtype(requested: str, device: str) -> torch.dtype:
    """fp32 on CPU; "auto" on GPU is fp16, as the paper scored (bf16 is an order of magnitude further
    from fp32 per text, docs/performance.md; the engine recomputes any non-finite text in fp32);
    explicit dtypes, bf16 included, are kept."""
    if requested in DTYPES:
        return DTYPES[requested]
    if requested != "auto":
        raise InputError("dtype", f"'{requested}' is not one of auto, {', '.join(DTYPES)}")
    return torch.float32 if device == "cpu" else torch.float16


def load_model(
    spec: ModelSpec,
    device: str | None = None,
    dtype: str = "auto",
    *,
    allow_network: bool = False,
    attn_implementation: str | None = "sdpa",
    gguf_cache: bool = True,
) -> LoadedModel:
    """Load `spec` in eval mode on `device` (None: GPU if present, "auto": spread over all GPUs).

    `dtype` "auto" defers to the sheet's dtype, which is itself resolved per device. A GGUF model is
    de-quantized once into the cache (`gguf_cache_dir`) and loaded from there, unless `gguf_cache` is
    false (the conversion itself).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = locate(spec)
    device = resolve_device(device)
    torch_dtype = resolve_dtype(spec.dtype if dtype == "auto" else dtype, device)
    if where.kind == "gguf" and gguf_cache and gguf_cache_dir() is not None:
        return _load_gguf_cached(spec, where, device, torch_dtype, attn_implementation)
    common = {
        "revision": spec.revision,
        "trust_remote_code": spec.trust_remote_code,
        "local_files_only": not allow_network,
    }
    if where.gguf_file:
        common["gguf_file"] = where.gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(where.path, **common)
        model = _load_causal_lm(AutoModelForCausalLM, where.path, common, torch_dtype, device, attn_implementation)
    except LOAD_ERRORS as exc:
        if isinstance(exc, torch.OutOfMemoryError):
            raise
        hint = " (offline: it must already be in the Hugging Face cache)" if where.kind == "hub" else ""
        if "trust_remote_code" in str(exc):
            hint = " (it ships its own code: set trust_remote_code only if you trust its source)"
        message = " ".join(str(exc).split())[:300]
        raise InputError(
            spec.source,
            f"cannot load model{hint}: {type(exc).__name__}: {message}",
            record=spec.model_id,
            field="source",
        ) from None
    model.eval()
    check_loaded(spec, model, tokenizer)
    info = describe(spec, where, model, tokenizer, device)
    return LoadedModel(model=model, tokenizer=tokenizer, info=info)


def _load_errors() -> tuple[type[BaseException], ...]:
    """What a damaged or incompatible model directory raises while loading (never out-of-memory)."""
    from safetensors import SafetensorError

    # RuntimeError: shapes that do not fit the config (out-of-memory is re-raised as it is)
    return (OSError, ValueError, EOFError, KeyError, RuntimeError, struct.error, SafetensorError)


LOAD_ERRORS = _load_errors()


def check_loaded(spec: ModelSpec, model, tokenizer) -> None:
    """A tokenizer that tokenizes nothing (no tokenizer files: transformers builds an empty one) or
    non-finite weights would give a map of silently wrong points."""
    if not tokenizer("a b c", add_special_tokens=False)["input_ids"]:
        raise InputError(
            spec.source,
            "its tokenizer cannot be loaded (no tokenizer files?): it turns text into no tokens",
            record=spec.model_id,
            field="source",
        )
    for name, param in model.named_parameters():
        if param.device.type != "meta" and not torch.isfinite(param).all():
            raise InputError(
                spec.source, f"weights contain NaN or infinity (parameter {name})", record=spec.model_id, field="source"
            )


def gguf_cache_dir() -> Path | None:
    """Where de-quantized GGUF models are kept (LMMAP_GGUF_CACHE; "off" disables the cache)."""
    value = os.environ.get("LMMAP_GGUF_CACHE", str(Path.home() / ".cache" / "lmmap" / "gguf"))
    return None if value.strip().lower() in ("", "0", "off", "none") else Path(value)


def _load_gguf_cached(
    spec: ModelSpec, where: _Location, device: str, torch_dtype: torch.dtype, attn_implementation: str | None
) -> LoadedModel:
    """De-quantizing a GGUF file takes minutes on a CPU: do it once per (file content, dtype) and
    keep the result in the Hugging Face format, which then loads in seconds."""
    gguf_path = Path(where.path) / where.gguf_file
    digest = sha256_file(gguf_path)
    converted = gguf_cache_dir() / f"{digest[:20]}-{str(torch_dtype).removeprefix('torch.')}"
    if not _gguf_cache_entry_valid(converted, digest):
        log.info("de-quantizing %s once into %s", gguf_path, converted)
        plain = dataclasses.replace(spec, source=str(gguf_path), gguf_file=None)
        loaded = load_model(plain, device="cpu", dtype=str(torch_dtype).removeprefix("torch."), gguf_cache=False)
        _save_atomically(loaded, converted, digest)
    local = dataclasses.replace(spec, source=str(converted), gguf_file=None)
    loaded = load_model(
        local, device=device, dtype=str(torch_dtype).removeprefix("torch."), attn_implementation=attn_implementation
    )
    loaded.info.update(
        source=spec.source,
        source_kind="gguf",
        gguf_file=where.gguf_file,
        gguf_sha256=digest,
        gguf_cache=str(converted),
        gguf_weights=_digest_record(where.path, {where.gguf_file: digest}),
    )
    return loaded


def _gguf_cache_entry_valid(directory: Path, gguf_sha256: str) -> bool:
    """A cache entry is used only if lmmap's manifest in it names this GGUF file's digest and every
    file still has the digest recorded at conversion (a directory planted or altered under the
    expected name is converted afresh)."""
    manifest = directory / GGUF_MANIFEST
    if not manifest.is_file():
        if directory.exists():
            log.warning("GGUF cache entry %s has no manifest: converting again", directory)
            shutil.rmtree(directory, ignore_errors=True)
        return False
    try:
        record = read_json(manifest)
        ok = record["gguf_sha256"] == gguf_sha256 and record["files"] == _file_digests(directory)["files"]
    except (InputError, KeyError, TypeError):
        ok = False
    if not ok:
        log.warning("GGUF cache entry %s does not match its manifest: converting again", directory)
        shutil.rmtree(directory, ignore_errors=True)
    return ok


def _save_atomically(loaded: LoadedModel, directory: Path, gguf_sha256: str) -> None:
    tmp = temporary_directory(directory)
    model = loaded.model
    model.hf_quantizer = None  # its weights are de-quantized already: save them as plain tensors
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    try:
        model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
        files = dict(_file_digests(tmp)["files"])
        write_json(tmp / GGUF_MANIFEST, {"gguf_sha256": gguf_sha256, "files": files})
        os.replace(tmp, directory)
    except OSError:  # another job converted the same file first: keep its copy
        if not (directory / "config.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_causal_lm(
    auto_cls, path: str, common: dict, torch_dtype: torch.dtype, device: str, attn_implementation: str | None
):
    """The model, refusing one whose weight files lack some of its parameters: transformers would
    initialise those at random and only warn."""
    model, info = _from_pretrained(
        auto_cls, path, dict(common, output_loading_info=True), torch_dtype, device, attn_implementation
    )
    missing = sorted(info.get("missing_keys") or []) + sorted(
        str(k[0]) if isinstance(k, tuple) else str(k) for k in info.get("mismatched_keys") or []
    )
    if missing:
        raise ValueError(
            f"the weight files lack or mis-shape {len(missing)} parameter(s), e.g. {missing[:3]}: they would be random"
        )
    return model


def _from_pretrained(
    auto_cls, path: str, common: dict, torch_dtype: torch.dtype, device: str, attn_implementation: str | None
):
    kwargs = dict(common, dtype=torch_dtype)
    if device != "cpu":  # straight onto the accelerator(s), never via a CPU copy
        kwargs["device_map"] = device
    if attn_implementation:
        try:
            return auto_cls.from_pretrained(path, attn_implementation=attn_implementation, **kwargs)
        except (ValueError, ImportError) as exc:  # architecture without that attention: use its default
            if "trust_remote_code" in str(exc):  # not about attention: retrying would only mislead
                raise
            log.warning("attention implementation %s unavailable (%s); using the default", attn_implementation, exc)
    return auto_cls.from_pretrained(path, **kwargs)


def _file_digests(directory: str | Path, names: list[str] | None = None) -> dict:
    """sha256 of the model files in `directory` (or of `names` in it) and one digest over them all."""
    directory = Path(directory)
    if names is None:
        names = sorted(
            p.name
            for p in directory.iterdir()
            if p.is_file() and p.suffix.lower() in MODEL_FILE_SUFFIXES and p.name != GGUF_MANIFEST
        )
    return _digest_record(directory, {name: sha256_file(directory / name) for name in names})


def _digest_record(directory: str | Path, files: dict[str, str]) -> dict:
    combined = hashlib.sha256("".join(f"{name} {sha}\n" for name, sha in files.items()).encode())
    return {"directory": str(directory), "files": files, "digest": combined.hexdigest()}


def weights_record(spec: ModelSpec, where: _Location, model) -> dict | None:
    """The digests of the files the model was loaded from: the directory, the GGUF file, or the
    Hugging Face cache snapshot of the resolved commit (None if that snapshot cannot be found)."""
    if where.kind == "local":
        return _file_digests(where.path)
    if where.kind == "gguf" and Path(where.path).is_dir():
        return _file_digests(where.path, [where.gguf_file])
    from huggingface_hub import try_to_load_from_cache

    revision = getattr(model.config, "_commit_hash", None) or spec.revision
    found = try_to_load_from_cache(where.path, "config.json", revision=revision)
    if not isinstance(found, str):
        log.warning("cannot find the cache snapshot of %s: its weights are not digested", spec.source)
        return None
    return _file_digests(Path(found).parent)


def describe(spec: ModelSpec, where: _Location, model, tokenizer, device: str) -> dict:
    """The provenance record of a loaded model."""
    params = sum(p.numel() for p in model.parameters())
    probe = tokenizer("a").input_ids
    weights = weights_record(spec, where, model)
    revision = getattr(model.config, "_commit_hash", None) if where.kind != "local" else None
    if where.kind == "hub" and revision is None and weights:  # the snapshot directory is named by its commit
        revision = Path(weights["directory"]).name
    return {
        "model_id": spec.model_id,
        "source": spec.source,
        "source_kind": where.kind,
        "revision_requested": spec.revision,
        "revision_resolved": revision,
        "gguf_file": where.gguf_file,
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "architecture": (model.config.architectures or [type(model).__name__])[0],
        "n_params": int(params),
        "max_length": model_max_length(model, tokenizer),
        "tokenizer_class": type(tokenizer).__name__,
        "tokenizer_name": getattr(tokenizer, "name_or_path", None),
        "vocab_size": len(tokenizer),
        "adds_bos": bool(tokenizer.bos_token_id is not None and probe[:1] == [tokenizer.bos_token_id]),
        "trust_remote_code": spec.trust_remote_code,
        "device": device if device == "auto" else str(next(model.parameters()).device),
        "device_map": getattr(model, "hf_device_map", None),
        "weights": weights,
    }


def model_max_length(model, tokenizer=None) -> int | None:
    """The longest input the model takes: its position limit, or the tokenizer's if smaller."""
    config = model.config
    limits = [getattr(config, name, None) for name in ("max_position_embeddings", "n_positions")]
    limits = [int(x) for x in limits if isinstance(x, int) and x > 0]
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_limit, int) and 0 < tok_limit < 10**8:
        limits.append(tok_limit)
    return min(limits) if limits else None


def pad_token_id(tokenizer) -> int:
    """The id used internally for padding (its value never reaches a scored position)."""
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return 0
