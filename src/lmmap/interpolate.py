"""Weight interpolation (paper §6.3): build θ(α, β) = (1 − α − β) θ₀ + α θ₁ + β θ₂ from three models
of one architecture, tensor by tensor, and measure the geometry of the triple (‖θ₁ − θ₀‖, ‖θ₂ − θ₀‖
and the angle between the two directions) for the weight-space panel.

The parents' weight files (safetensors shards, or PyTorch `.bin` shards read memory-mapped) are
streamed one tensor at a time and the merged tensors are written in safetensors shards of at most
`shard_bytes`, so a merge job holds about one output shard plus three tensors in memory, never a
whole model. The output directory is what `save_pretrained` writes (config, tokenizer files,
`model.safetensors` or numbered shards with `model.safetensors.index.json`) and appears whole, by
one rename, when it is complete.

The first half of the module only expands the config into grid models (no torch: the workflow
calls it when it builds its DAG); the merge functions import torch and safetensors when they run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from pathlib import Path

from lmmap.errors import InputError
from lmmap.sheet import ModelSpec, slugify
from lmmap.storage import replace_directory, temporary_directory

ID_PREFIX = "interpolation/"
FAMILY_PREFIX = "grid-"
DEFAULT_POINTS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # the paper's 6 × 6 grid, extrapolation included
BYTES_PER_PARAM = {"float32": 4, "float16": 2, "bfloat16": 2}
CONFIG_WHERE = "config: interpolation"
INFO_FILE = "interpolation.json"  # written into every merged model: its point, parents and geometry
# buffers some checkpoints store and transformers recomputes: never merged, never required
_RECOMPUTED = ("rotary_emb.inv_freq",)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".gguf", ".onnx")
_WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


# --------------------------------------------------------------------------------------------------
# Config expansion (pure: no I/O, no torch)


@dataclasses.dataclass(frozen=True)
class Grid:
    """One interpolation grid: its three parents (θ₀, θ₁, θ₂), its models and how they are stored."""

    name: str
    parents: tuple[ModelSpec, ModelSpec, ModelSpec]
    points: tuple[tuple[float, float, ModelSpec], ...]  # (α, β, spec) in row-major order
    dtype: str = "float16"
    shard_gb: float = 5.0
    zoo: bool = False  # a demo-zoo grid (scored with the zoo's grouped scoring jobs)

    @property
    def slug(self) -> str:
        return slugify(self.name)

    @property
    def parameters(self) -> float | None:
        return self.parents[0].size


def point_label(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value else "0"


def grid_points(
    grid_name: str, base: ModelSpec, points, id_prefix: str, family_prefix: str, dtype: str, grid_dir: str
) -> tuple[tuple[float, float, ModelSpec], ...]:
    """The (α, β, spec) of every grid model: the base's row (a plain sheet row, even of a zoo base),
    renamed, stored under `grid_dir`/<grid>/models/."""
    out = []
    for alpha in points:
        for beta in points:
            model_id = f"{id_prefix}{grid_name}-a{point_label(alpha)}-b{point_label(beta)}"
            spec = ModelSpec(
                **dataclasses.asdict(base)
                | {
                    "model_id": model_id,
                    "source": f"{grid_dir}/{slugify(grid_name)}/models/{slugify(model_id)}",
                    "revision": None,
                    "gguf_file": None,
                    "dtype": dtype,
                    "family": f"{family_prefix}{grid_name}",
                    "trust_remote_code": False,
                }
            )
            out.append((float(alpha), float(beta), spec))
    return tuple(out)


def configured_grids(config: dict, models: dict[str, ModelSpec], grid_dir: str) -> list[Grid]:
    """The grids of the config's `interpolation` section, whose parents are model ids of the map's
    sheet (`models`: model id -> spec), downloaded by the hub download rule like every mapped model;
    their models are stored under `grid_dir`."""
    section = config.get("interpolation") or {}
    grids = []
    for entry in section.get("triples") or []:
        name = entry["name"]
        parents = []
        for model_id in [entry["base"], *entry["ends"]]:
            if model_id not in models:
                raise InputError(
                    CONFIG_WHERE,
                    f"'{model_id}' is not a model of the map's sheet (`models`)",
                    record=f"triple {name}",
                    field="base" if model_id == entry["base"] else "ends",
                )
            parents.append(models[model_id])
        if entry.get("size"):
            parents[0] = dataclasses.replace(parents[0], size=float(entry["size"]))
        dtype = entry.get("dtype", section.get("dtype", "float16"))
        points = entry.get("points", section.get("points", DEFAULT_POINTS))
        grids.append(
            Grid(
                name,
                tuple(parents),
                grid_points(name, parents[0], points, ID_PREFIX, FAMILY_PREFIX, dtype, grid_dir),
                dtype=dtype,
                shard_gb=float(section.get("shard_gb", 5.0)),
            )
        )
    return grids


def disk_bytes(grid: Grid) -> float:
    """Disk one merged model needs: parameters × bytes per parameter of the output dtype (the
    tokenizer and config are negligible). A 7B model in float16: about 13.5 GB."""
    return (grid.parameters or 7e9) * BYTES_PER_PARAM[grid.dtype]


def check_endpoints(grid: Grid) -> None:
    have = {(a, b) for a, b, _ in grid.points}
    for point in ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0)):
        if point not in have:
            raise InputError(
                CONFIG_WHERE,
                f"the grid lacks the endpoint (alpha, beta) = {point}: add 0 and 1 to its points",
                record=f"grid {grid.name}",
                field="points",
            )


# --------------------------------------------------------------------------------------------------
# Reading the parents' weights one tensor at a time (these import torch / safetensors)


def parse_parents(text: str) -> list[dict]:
    """The `lmmap interpolate --parents` argument: three {"model_id", "source", "revision"} objects
    (θ_base, θ_1, θ_2)."""
    try:
        parents = json.loads(text)
    except ValueError as exc:
        raise InputError("--parents", f"is not JSON: {exc}") from exc
    if (
        not isinstance(parents, list)
        or len(parents) != 3
        or not all(isinstance(p, dict) and "source" in p for p in parents)
    ):
        raise InputError("--parents", "must list three objects with a 'source'", field="source")
    return parents


def resolve_model_dir(source: str, revision: str | None = None) -> Path:
    """A model's local directory: `source` itself, or its snapshot in the Hugging Face cache (the
    download rule fetched it; nothing is downloaded here)."""
    from lmmap.sheet import is_hub_source

    if not is_hub_source(source):
        path = Path(source)
        if not (path / "config.json").exists():
            raise InputError(source, "is not a model directory (no config.json)")
        return path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, revision=revision, local_files_only=True))
    except Exception as exc:  # not in the cache: the download rule has not run for it
        raise InputError(source, f"is not in the local Hugging Face cache (run its download first): {exc}") from exc


def weight_map(model_dir: str | Path) -> dict[str, Path]:
    """{tensor name: the file that holds it} of a model directory: safetensors if it has them, else
    PyTorch `.bin` files; a sharded checkpoint through its index."""
    model_dir = Path(model_dir)
    for index_name, single in (
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ):
        index = model_dir / index_name
        if index.exists():
            try:
                mapping = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            except (ValueError, KeyError) as exc:
                raise InputError(index, f"is not a weight index: {exc}", field="weight_map") from exc
            return {name: model_dir / file for name, file in mapping.items()}
        if (model_dir / single).exists():
            return dict.fromkeys(_tensor_names(model_dir / single), model_dir / single)
    raise InputError(model_dir, "holds no safetensors or pytorch_model.bin weights")


def _tensor_names(path: Path) -> list[str]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            return list(fh.keys())
    return list(_load_bin(path))


def _load_bin(path: Path) -> dict:
    import torch

    return torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)


class TensorReader:
    """One model's tensors by name, opening each weight file once and keeping one open at a time."""

    def __init__(self, model_dir: str | Path):
        self.dir = Path(model_dir)
        self.files = weight_map(self.dir)
        self._path: Path | None = None
        self._handle = None

    def names(self) -> list[str]:
        return list(self.files)

    def get(self, name: str):
        path = self.files[name]
        if path != self._path:
            self.close()
            if path.suffix == ".safetensors":
                from safetensors import safe_open

                self._handle = safe_open(str(path), framework="pt")
                self._handle.__enter__()
            else:
                self._handle = _load_bin(path)
            self._path = path
        if isinstance(self._handle, dict):
            return self._handle[name]
        return self._handle.get_tensor(name)

    def close(self) -> None:
        if self._handle is not None and not isinstance(self._handle, dict):
            self._handle.__exit__(None, None, None)
        self._handle, self._path = None, None


def _merged_names(readers: list[TensorReader]) -> list[str]:
    """The tensors to merge, in the base's order; every one must be in all three parents."""
    names = [n for n in readers[0].names() if not n.endswith(_RECOMPUTED)]
    for reader in readers[1:]:
        have = set(reader.names())
        missing = [n for n in names if n not in have]
        if missing:
            raise InputError(reader.dir, "lacks a tensor of the base model", record=missing[0], field="weight_map")
    return names


# --------------------------------------------------------------------------------------------------
# Merging and measuring


def merge_tensors(tensors, weights, dtype):
    """Σ wᵢ tᵢ in float32 (floating tensors), cast to `dtype`; other tensors come from the base."""
    import torch

    base = tensors[0]
    if not torch.is_floating_point(base):
        return base.clone()
    out = sum(w * t.to(torch.float32) for w, t in zip(weights, tensors))
    return out.to(dtype)


def accumulate_geometry(sums: list[float], tensors) -> None:
    """Add one tensor's contribution to [|d₁|², |d₂|², d₁·d₂] (d = θ − θ₀), in float64 sums."""
    import torch

    if not torch.is_floating_point(tensors[0]):
        return
    base = tensors[0].to(torch.float32)
    d1, d2 = tensors[1].to(torch.float32) - base, tensors[2].to(torch.float32) - base
    sums[0] += float(torch.sum(d1 * d1, dtype=torch.float64))
    sums[1] += float(torch.sum(d2 * d2, dtype=torch.float64))
    sums[2] += float(torch.sum(d1 * d2, dtype=torch.float64))


def geometry_from_sums(sums: list[float]) -> dict[str, float]:
    d11, d22, d12 = sums
    cosine = d12 / math.sqrt(d11 * d22) if d11 > 0 and d22 > 0 else 0.0
    return {
        "norm1": math.sqrt(d11),
        "norm2": math.sqrt(d22),
        "cosine": cosine,
        "angle_deg": math.degrees(math.acos(min(1.0, max(-1.0, cosine)))),
    }


def _torch_dtype(name: str):
    import torch

    if name not in BYTES_PER_PARAM:
        raise InputError(CONFIG_WHERE, f"'{name}' is not one of {', '.join(BYTES_PER_PARAM)}", field="dtype")
    return getattr(torch, name)


def _shard_names(n: int) -> list[str]:
    if n == 1:
        return ["model.safetensors"]
    return [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]


def _copy_model_files(base_dir: Path, tmp: Path, dtype: str) -> None:
    """The base's config (its dtype set to the output's), tokenizer and generation files, into the
    temporary directory `tmp` that becomes the merged model."""
    for path in base_dir.iterdir():
        if (
            not path.is_file()
            or path.name.endswith(_WEIGHT_SUFFIXES)
            or path.name in _WEIGHT_INDEXES
            or path.name.endswith(".prov.json")
            or path.name in (INFO_FILE, "zoo_recipe.json")
        ):
            continue  # weights, and what a build wrote about the base itself
        if path.name == "config.json":
            config = json.loads(path.read_text(encoding="utf-8"))
            config["dtype"] = dtype  # transformers >= 5; older checkpoints name it torch_dtype
            if "torch_dtype" in config:
                config["torch_dtype"] = dtype
            (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        elif path.name.endswith((".json", ".model", ".txt", ".tiktoken", ".py")):
            shutil.copyfile(path, tmp / path.name)


def merge_model(
    parent_dirs: list[str | Path],
    alpha: float,
    beta: float,
    out_dir: str | Path,
    dtype: str = "float16",
    shard_bytes: int = 5 * 10**9,
    info: dict | None = None,
) -> dict:
    """Write θ(α, β) = (1 − α − β) θ₀ + α θ₁ + β θ₂ of the three models in `parent_dirs` into
    `out_dir` (a `save_pretrained` directory, appearing whole by one rename), streaming tensor by
    tensor. Returns what it measured: the geometry of the triple, parameters, shards, bytes."""
    from safetensors.torch import save_file

    torch_dtype = _torch_dtype(dtype)
    weights = [1.0 - alpha - beta, alpha, beta]
    readers = [TensorReader(d) for d in parent_dirs]
    out_dir = Path(out_dir)
    tmp = temporary_directory(out_dir)
    sums = [0.0, 0.0, 0.0]
    shards: list[list[str]] = []  # tensor names per written shard
    pending: dict = {}
    pending_bytes = n_params = total_bytes = 0

    def flush():
        nonlocal pending, pending_bytes
        if pending:
            save_file(pending, str(tmp / f"shard-{len(shards):05d}.safetensors"), metadata={"format": "pt"})
            shards.append(list(pending))
            pending, pending_bytes = {}, 0

    try:
        for name in _merged_names(readers):
            tensors = [r.get(name) for r in readers]
            shapes = {tuple(t.shape) for t in tensors}
            if len(shapes) > 1:
                raise InputError(
                    readers[0].dir, f"the three models' shapes differ: {sorted(shapes)}", record=name, field="shape"
                )
            accumulate_geometry(sums, tensors)
            merged = merge_tensors(tensors, weights, torch_dtype).contiguous()
            size = merged.numel() * merged.element_size()
            if pending and pending_bytes + size > shard_bytes:
                flush()
            pending[name], pending_bytes = merged, pending_bytes + size
            n_params += merged.numel()
            total_bytes += size
        flush()
        names = _shard_names(len(shards))
        for i, name in enumerate(names):
            os.replace(tmp / f"shard-{i:05d}.safetensors", tmp / name)
        if len(names) > 1:
            index = {
                "metadata": {"total_size": total_bytes},
                "weight_map": {t: names[i] for i, members in enumerate(shards) for t in members},
            }
            (tmp / "model.safetensors.index.json").write_text(
                json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
        _copy_model_files(readers[0].dir, tmp, dtype)
        measured = {
            **geometry_from_sums(sums),
            "alpha": alpha,
            "beta": beta,
            "weights": weights,
            "dtype": dtype,
            "n_params": n_params,
            "bytes": total_bytes,
            "n_shards": len(names),
        }
        (tmp / INFO_FILE).write_text(
            json.dumps(measured | (info or {}), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        replace_directory(tmp, out_dir)
    finally:
        for reader in readers:
            reader.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return measured
