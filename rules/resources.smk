# Inputs and cluster resources of a scoring job (and, at the end, of a weight-interpolation merge
# job, rules/interpolation.smk). Resources follow the model's size (ModelSpec.size,
# parameters) and grow with the retry attempt, so that a job killed for time or memory comes back bigger.
# What differs between clusters (account, partitions, GPU memory, --gpus vs --gres) comes from the
# environment, read here and in profiles/slurm/config.yaml; see profiles/slurm/site.env.
# score_model uses: input: download=download_input; resources: runtime=score_runtime,
# mem_mb=score_mem_mb, gpu=score_gpus, gres=score_gres; group: score_group.

import math
import os
import re

from lmmap.sheet import is_hub_source

# memory of one GPU: decides how many GPUs a model needs
GPU_MEM_GB = float(os.environ.get("LMMAP_GPU_MEM_GB", "80"))
# "gpus": request GPUs as `--gpus=N` (resource gpu); "gres": as `--gres=gpu:N` (resource gres)
GPU_REQUEST = os.environ.get("LMMAP_SLURM_GPU_REQUEST", "gpus")
if GPU_REQUEST not in ("gpus", "gres"):
    raise ValueError(f"LMMAP_SLURM_GPU_REQUEST must be 'gpus' or 'gres', not '{GPU_REQUEST}'")
MAX_GPUS = 8  # one node
UNKNOWN_SIZE = 7e9  # parameters assumed when the sheet has no size: a typical model of the paper's list
CPU_ONLY_BELOW = 5e7  # parameters; smaller models (the demo zoo) score on CPU as fast as on a GPU
PACK_UP_TO = 2e9  # parameters; models up to this size may share an allocation (group score_small)
TOKENS_PER_TEXT = 256  # a text of at most 1,024 bytes
FLOPS = {"gpu": 5e13, "cpu": 2e10}  # sustained forward-pass throughput, conservatively low
LOAD_GB_PER_S = 0.2  # reading weights from a shared file system
BASE_MINUTES = 10  # start-up, imports, tokenisation


def download_input(wildcards):
    """The download record a hub model's scoring waits for (rules/download.smk); none for local models."""
    return [f"results/downloads/{wildcards.model}.json"] if is_hub_source(model_spec(wildcards).source) else []


def _params(wildcards) -> float:
    return model_spec(wildcards).size or UNKNOWN_SIZE


def _weights_gb(wildcards) -> float:
    bytes_per_param = 4 if model_spec(wildcards).dtype == "float32" else 2
    return _params(wildcards) * bytes_per_param / 1e9


def _growth(attempt: int) -> float:
    """Memory grows by half of the first request per retry."""
    return 1 + 0.5 * (attempt - 1)


def score_gpu_count(wildcards, attempt=1) -> int:
    """GPUs that hold the weights plus a batch's activations; none for tiny models or device cpu."""
    if config["scoring"]["device"] == "cpu" or _params(wildcards) < CPU_ONLY_BELOW:
        return 0
    need_gb = (1.1 * _weights_gb(wildcards) + 4) * _growth(attempt)
    return min(MAX_GPUS, math.ceil(need_gb / GPU_MEM_GB))


def score_gpus(wildcards, attempt) -> int:
    """Resource `gpu` (sbatch --gpus=N; locally capped by `--resources gpu=N`)."""
    return score_gpu_count(wildcards, attempt) if GPU_REQUEST == "gpus" else 0


def score_gres(wildcards, attempt) -> str:
    """Resource `gres` (sbatch --gres=gpu:N) for clusters whose GPUs are generic resources only."""
    count = score_gpu_count(wildcards, attempt) if GPU_REQUEST == "gres" else 0
    return f"gpu:{count}" if count else ""


def score_mem_mb(wildcards, attempt) -> int:
    """Host memory: on a GPU node, 4 GB plus half the weights (shards stream onto the GPUs); on
    CPU, 2 GB plus the weights twice (weights and activations)."""
    base_gb, copies = (4, 0.5) if score_gpu_count(wildcards, attempt) else (2, 2.0)
    return math.ceil(1024 * (base_gb + copies * _weights_gb(wildcards)) * _growth(attempt))


def score_runtime(wildcards, attempt) -> int:
    """Minutes: loading plus 2 FLOPs per parameter and token, with a safety factor of 2;
    doubled per retry."""
    n_texts = config["texts"]["n"] or 10_000
    device = "gpu" if score_gpu_count(wildcards, attempt) else "cpu"
    compute_s = 2 * _params(wildcards) * n_texts * TOKENS_PER_TEXT / FLOPS[device]
    load_s = _weights_gb(wildcards) / LOAD_GB_PER_S
    minutes = BASE_MINUTES + 2 * (compute_s + load_s) / 60
    return math.ceil(minutes * 2 ** (attempt - 1))


def score_group(wildcards):
    """Small models join group `score_small`, which a profile may pack into fewer allocations
    (`group-components: score_small=20`); bigger models always get their own job."""
    return "score_small" if _params(wildcards) <= PACK_UP_TO else None


# Merging an interpolation grid model (rules/interpolation.smk): streaming I/O, no GPU. The merged
# model's disk is its parameters × bytes per parameter of the output dtype (a 7B model in float16:
# 13.5 GB; 36 points × 2 triples: ~1 TB); memory holds one output shard plus a few float32 copies
# of the largest tensor (a 7B model's embedding: 0.5 GB), never a whole model; time is reading the
# three parents and writing the result from the shared file system.
MERGE_TENSOR_GB = 4  # float32 temporaries of the largest tensor (θ₀, θ₁, θ₂, two differences, the sum)
PARENT_BYTES_PER_PARAM = 2  # the parents' checkpoints (float16/bfloat16 on the hub)


def _grid(wildcards):
    grid_slug, alpha, beta, spec = GRID_POINTS[wildcards.model]
    return GRID_DEFS[grid_slug]


def _grid_params(wildcards) -> float:
    return _grid(wildcards).parameters or UNKNOWN_SIZE


def merge_disk_mb(wildcards, attempt) -> int:
    """Resource `disk_mb`: the merged model (parameters × bytes per dtype) plus 100 MB for the
    tokenizer, config and the shard being written."""
    from lmmap.interpolate import disk_bytes

    return math.ceil(disk_bytes(_grid(wildcards)) / 1e6) + 100


def merge_mem_mb(wildcards, attempt) -> int:
    """Host memory: one output shard (at most `interpolation.shard_gb`) and the float32 temporaries
    of the largest tensor; grows by half per retry."""
    from lmmap.interpolate import disk_bytes

    grid = _grid(wildcards)
    model_gb = disk_bytes(grid) / 1e9
    temporaries_gb = min(MERGE_TENSOR_GB, 1 + 4 * model_gb)
    return math.ceil(1024 * (1 + temporaries_gb + min(grid.shard_gb, model_gb)) * _growth(attempt))


def merge_runtime(wildcards, attempt) -> int:
    """Minutes: reading three parents and writing one model at LOAD_GB_PER_S, with a safety factor
    of 2; doubled per retry."""
    from lmmap.interpolate import disk_bytes

    io_gb = 3 * _grid_params(wildcards) * PARENT_BYTES_PER_PARAM / 1e9 + disk_bytes(_grid(wildcards)) / 1e9
    minutes = BASE_MINUTES + 2 * io_gb / LOAD_GB_PER_S / 60
    return math.ceil(minutes * 2 ** (attempt - 1))


def grid_parent_inputs(wildcards):
    """What a merge waits for: each parent's download record (hub) or build (demo zoo)."""
    inputs = []
    for spec in _grid(wildcards).parents:
        if is_hub_source(spec.source):
            inputs.append(f"results/downloads/{spec.slug}.json")
        elif spec.is_zoo:
            inputs.append(f"{spec.source}/config.json")
    return inputs


def grid_parents_json(wildcards) -> str:
    return json.dumps(
        [{"model_id": s.model_id, "source": s.source, "revision": s.revision} for s in _grid(wildcards).parents]
    )


def _alternatives(names) -> str:
    return "|".join(map(re.escape, names)) or "(?!)"
