"""The demo zoo: small causal LMs built on this machine, as the real ecosystem builds its models.

Base families (an architecture, a training-data mix and a seed) are trained from scratch in one or
more sizes; fine-tunes continue a base on one domain; merges interpolate the weights of two models
of the same base; precision variants round a model's weights through fp16/bf16 or fake-quantise them
to int8/int4 (saved in fp32, so CPU scoring stays fast); contaminated variants continue a base on
data that includes part of the reference text set. Every model shares one locally trained tokenizer
and is saved with `save_pretrained`, so it loads exactly like a real model.

`zoo_models` / `zoo_specs` / `interpolation_grids` only expand the config (no I/O, no torch): the
workflow calls them when it builds its DAG. The build functions import torch when they run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from lmmap.errors import InputError
from lmmap.sheet import ZOO_ID_PREFIX, ModelSpec
from lmmap.storage import replace_directory, temporary_directory

log = logging.getLogger(__name__)
PROGRESS_REPORTS = 5  # training progress lines per model in the job log

ARCHITECTURES = ("gpt2", "llama", "gpt_neox")
PRECISIONS = ("fp16", "bf16", "int8", "int4")
ID_PREFIX = ZOO_ID_PREFIX  # the zoo's namespace of model ids (ModelSpec.is_zoo)
GRID_PREFIX = "zoo-grid/"
GRID_FAMILY_PREFIX = "grid-"
MAX_POSITIONS = 1024  # every reference text (at most 1,024 bytes) fits, whatever the tokenizer
BOS, EOS, PAD = "<s>", "</s>", "<pad>"
CONFIG_WHERE = "config: zoo"


@dataclasses.dataclass(frozen=True)
class ZooModel:
    """One zoo model: its sheet row, how it is made (`recipe`, JSON-able) and what it is made from."""

    spec: ModelSpec
    kind: str  # base, finetune, merge, precision, contaminated
    recipe: dict
    parents: tuple[str, ...] = ()  # slugs of the models it is built from

    @property
    def slug(self) -> str:
        return self.spec.slug


# --------------------------------------------------------------------------------------------------
# Config expansion (pure: no I/O, no torch)


def parameter_count(
    architecture: str, hidden: int, layers: int, vocab_size: int, intermediate: int | None = None
) -> int:
    """Parameters of a zoo model, computed from its shape (equal to `model.num_parameters()`)."""
    d, v, p = hidden, vocab_size, MAX_POSITIONS
    inter = intermediate or default_intermediate(architecture, hidden)
    if architecture == "gpt2":  # tied embeddings, learned positions, biases, LayerNorm
        return v * d + p * d + layers * (4 * d * d + 2 * d * inter + 9 * d + inter) + 2 * d
    if architecture == "llama":  # tied embeddings, no biases, RMSNorm
        return v * d + layers * (4 * d * d + 3 * d * inter + 2 * d) + d
    if architecture == "gpt_neox":  # untied embeddings, biases, LayerNorm
        return 2 * v * d + layers * (4 * d * d + 2 * d * inter + 9 * d + inter) + 2 * d
    raise ValueError(f"unknown architecture '{architecture}'")


def default_intermediate(architecture: str, hidden: int) -> int:
    return 3 * hidden if architecture == "llama" else 4 * hidden  # llama's gated MLP has 3 matrices


def _model_id(name: str) -> str:
    return ID_PREFIX + name


def _spec(name: str, family: str, architecture: str, size: int, created: str) -> ModelSpec:
    return ModelSpec(
        model_id=_model_id(name),
        source="",  # set by zoo_models: the directory is the workflow's
        dtype="float32",
        family=family,
        type=architecture,
        size=float(size),
        created=created,
    )


class _Dates:
    """Synthetic creation dates: one week apart, in the order the config defines the models."""

    def __init__(self, start: str):
        self.next = dt.date.fromisoformat(start)

    def __call__(self) -> str:
        date, self.next = self.next, self.next + dt.timedelta(days=7)
        return date.isoformat()


def _require(mapping: dict, key: str, where: str):
    if key not in mapping:
        raise InputError(CONFIG_WHERE, "is missing", record=where, field=key)
    return mapping[key]


def _base_models(cfg: dict, dates: _Dates) -> list[ZooModel]:
    training, vocab = cfg.get("training", {}), cfg["tokenizer"]["vocab_size"]
    models = []
    for family in cfg.get("families", []):
        name, arch = _require(family, "name", "families"), _require(family, "architecture", "families")
        if arch not in ARCHITECTURES:
            raise InputError(
                CONFIG_WHERE,
                f"'{arch}' is not one of {', '.join(ARCHITECTURES)}",
                record=f"family {name}",
                field="architecture",
            )
        for size_name in _require(family, "sizes", f"family {name}"):
            shape = _require(cfg.get("sizes", {}), size_name, f"family {name}")
            params = parameter_count(arch, shape["hidden"], shape["layers"], vocab, shape.get("intermediate"))
            recipe = {
                "kind": "base",
                "architecture": arch,
                "shape": shape,
                "vocab_size": vocab,
                "mix": family.get("mix", {}),
                "seed": family.get("seed", 0),
                "training": training | {k: shape[k] for k in ("steps", "lr") if k in shape},
            }
            spec = _spec(f"{name}-{size_name}", name, arch, params, dates())
            models.append(ZooModel(spec, "base", recipe))
    return models


def _derived(by_name: dict[str, ZooModel], parent: str, where: str) -> ZooModel:
    if parent not in by_name:
        raise InputError(CONFIG_WHERE, f"'{parent}' is not a zoo model defined before it", record=where)
    return by_name[parent]


def _child(name: str, kind: str, parents: list[ZooModel], recipe: dict, dates: _Dates) -> ZooModel:
    first = parents[0].spec
    spec = _spec(name, first.family, first.type, int(first.size), dates())
    return ZooModel(spec, kind, recipe | {"kind": kind}, tuple(p.slug for p in parents))


def _finetunes(cfg: dict, by_name: dict, dates: _Dates) -> list[ZooModel]:
    models = []
    for entry in cfg.get("finetunes", []):
        base = _derived(by_name, _require(entry, "base", "finetunes"), "finetunes")
        for domain in _require(entry, "domains", f"finetunes of {entry['base']}"):
            recipe = {
                "domain": domain,
                "seed": entry.get("seed", 0),
                "training": cfg.get("training", {}) | {"steps": entry["steps"], "lr": entry["lr"], "warmup_steps": 0},
            }
            models.append(_child(f"{entry['base']}-ft-{domain}", "finetune", [base], recipe, dates))
    return models


def _merges(cfg: dict, by_name: dict, dates: _Dates) -> list[ZooModel]:
    models = []
    for entry in cfg.get("merges", []):
        name = _require(entry, "name", "merges")
        parents = [_derived(by_name, p, f"merge {name}") for p in _require(entry, "parents", f"merge {name}")]
        if len(parents) != 2 or parents[0].spec.type != parents[1].spec.type:
            raise InputError(
                CONFIG_WHERE,
                "a merge needs two parents of the same architecture",
                record=f"merge {name}",
                field="parents",
            )
        for weight in entry.get("weights", [0.5]):
            recipe = {"weights": [1.0 - weight, weight]}
            models.append(_child(f"{name}-w{round(weight * 100):02d}", "merge", parents, recipe, dates))
    return models


def _precision_variants(cfg: dict, by_name: dict, dates: _Dates) -> list[ZooModel]:
    models = []
    for entry in cfg.get("precision", []):
        base = _derived(by_name, _require(entry, "base", "precision"), "precision")
        for fmt in _require(entry, "formats", f"precision of {entry['base']}"):
            if fmt not in PRECISIONS:
                raise InputError(
                    CONFIG_WHERE,
                    f"'{fmt}' is not one of {', '.join(PRECISIONS)}",
                    record=f"precision of {entry['base']}",
                    field="formats",
                )
            models.append(_child(f"{entry['base']}-{fmt}", "precision", [base], {"format": fmt}, dates))
    return models


def _contaminated(cfg: dict, by_name: dict, dates: _Dates) -> list[ZooModel]:
    models = []
    for entry in cfg.get("contaminated", []):
        base = _derived(by_name, _require(entry, "base", "contaminated"), "contaminated")
        fraction = entry.get("fraction", 0.5)
        # Longer windows than the base's (`max_tokens`) let a model learn its leaked texts whole.
        training = {"steps": entry["steps"], "lr": entry["lr"], "warmup_steps": 0}
        training |= {"max_tokens": entry["max_tokens"]} if "max_tokens" in entry else {}
        recipe = {
            "reference_fraction": fraction,
            "reference_share": entry.get("share", 0.5),
            "mix": base.recipe.get("mix", {}),
            "seed": entry.get("seed", 0),
            "training": cfg.get("training", {}) | training,
        }
        name = f"{entry['base']}-contam{round(fraction * 100):02d}"
        models.append(_child(name, "contaminated", [base], recipe, dates))
    return models


def zoo_models(zoo_config: dict, zoo_dir: str) -> list[ZooModel]:
    """Expand the config's `zoo` section into its models, bases first (a model follows its parents),
    each built into `zoo_dir`/<slug>."""
    dates = _Dates(zoo_config.get("start_date", "2023-01-02"))
    models = _base_models(zoo_config, dates)
    by_name = {m.spec.model_id.removeprefix(ID_PREFIX): m for m in models}
    for expand in (_finetunes, _merges, _precision_variants, _contaminated):
        new = expand(zoo_config, by_name, dates)
        by_name |= {m.spec.model_id.removeprefix(ID_PREFIX): m for m in new}
        models += new
    return [dataclasses.replace(m, spec=dataclasses.replace(m.spec, source=f"{zoo_dir}/{m.slug}")) for m in models]


def zoo_specs(zoo_config: dict, zoo_dir: str) -> list[ModelSpec]:
    """The zoo's rows for the model sheet (the models that join the map)."""
    return [m.spec for m in zoo_models(zoo_config, zoo_dir)]


def interpolation_grids(zoo_config: dict, zoo_dir: str, grid_dir: str) -> list:
    """The weight-interpolation grids θ(α,β) = (1−α−β)θ₀ + αθ₁ + βθ₂ of the zoo, one `Grid` per
    (base, ft₁, ft₂) triple, named after the base. Grid models are scored but not part of the map;
    they are built by the same merge step as the paper's grids (lmmap.interpolate, rules/interpolation.smk)
    into `grid_dir`/<grid>/models/, in float32 like every zoo model."""
    from lmmap.interpolate import DEFAULT_POINTS, Grid, grid_points

    by_name = {m.spec.model_id.removeprefix(ID_PREFIX): m for m in zoo_models(zoo_config, zoo_dir)}
    grids = []
    for entry in zoo_config.get("interpolation", []):
        base_name = _require(entry, "base", "interpolation")
        triple = [_derived(by_name, n, f"interpolation of {base_name}") for n in [base_name, *entry["ends"]]]
        points = grid_points(
            base_name,
            triple[0].spec,
            entry.get("points", DEFAULT_POINTS),
            GRID_PREFIX,
            GRID_FAMILY_PREFIX,
            "float32",
            grid_dir,
        )
        grids.append(Grid(base_name, tuple(m.spec for m in triple), points, dtype="float32", zoo=True))
    return grids


def interpolation_specs(
    zoo_config: dict, zoo_dir: str, grid_dir: str
) -> dict[str, list[tuple[float, float, ModelSpec]]]:
    """{base name: [(α, β, spec), ...]} for every interpolation grid of the config."""
    return {grid.name: list(grid.points) for grid in interpolation_grids(zoo_config, zoo_dir, grid_dir)}


def lineage_rows(zoo_config: dict) -> list[dict]:
    """One row per map model: its kind, parents and recipe highlights, for the analyses (do
    fine-tunes sit near their base, merges between their parents, are contaminated models caught)."""
    return [
        {
            "model_id": m.spec.model_id,
            "slug": m.slug,
            "kind": m.kind,
            "family": m.spec.family,
            "type": m.spec.type,
            "size": int(m.spec.size),
            "parents": ";".join(m.parents),
            "domain": m.recipe.get("domain", ""),
            "format": m.recipe.get("format", ""),
            "merge_weights": ";".join(str(w) for w in m.recipe.get("weights", [])),
            "reference_fraction": m.recipe.get("reference_fraction", 0.0),
        }
        for m in zoo_models(zoo_config, zoo_dir="")  # (where the models live is not part of their lineage)
    ]


# --------------------------------------------------------------------------------------------------
# Training data: the tokenizer and the tokenised chunks


def forbidden_lines(texts: list[str], min_chars: int) -> set[str]:
    """The stripped lines of at least `min_chars` characters of `texts`."""
    return {s for text in texts for line in text.splitlines() if len(s := line.strip()) >= min_chars}


def shares_line(text: str, forbidden: set[str], min_chars: int) -> bool:
    return any(len(s := line.strip()) >= min_chars and s in forbidden for line in text.splitlines())


def training_chunks(
    documents: list[dict],
    protected_texts: list[str],
    min_line_chars: int = 32,
    max_bytes: int = 1024,
    min_bytes: int = 256,
) -> tuple[list[dict], int]:
    """Chunk the `train` documents and drop every chunk that shares a line of `min_line_chars` or
    more with a protected text (the reference set, the held-out documents): duplicated files (the
    same licence in many packages) must not leak into training. Returns (chunks, number dropped)."""
    from lmmap.texts import chunk_document

    forbidden = forbidden_lines(protected_texts, min_line_chars)
    chunks, dropped = [], 0
    for doc in documents:
        if doc.get("split") != "train":
            continue
        for index, piece in enumerate(chunk_document(doc["text"], max_bytes, min_bytes)):
            if shares_line(piece, forbidden, min_line_chars):
                dropped += 1
                continue
            chunks.append({"id": f"{doc['doc_id']}#{index}", "domain": doc["domain"], "text": piece})
    return chunks, dropped


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer that prepends a BOS token like Llama's (a `tokenizers.Tokenizer`)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS, PAD],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return tokenizer


def wrap_tokenizer(tokenizer_file: str | Path):
    """The zoo tokenizer as a transformers `PreTrainedTokenizerFast` (what every model dir holds)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_file), bos_token=BOS, eos_token=EOS, pad_token=PAD, model_max_length=MAX_POSITIONS
    )


def encode_texts(tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (with the BOS) of every text, flattened: (tokens int32, offsets int64 [n + 1])."""
    encodings = tokenizer.encode_batch(texts)
    lengths = np.array([len(e.ids) for e in encodings], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int32, count=int(offsets[-1]))
    return tokens, offsets


@dataclasses.dataclass
class TokenData:
    """Tokenised training chunks and reference texts (flattened with offsets)."""

    tokens: np.ndarray
    offsets: np.ndarray
    domains: np.ndarray
    reference_tokens: np.ndarray
    reference_offsets: np.ndarray

    def sequence(self, index: int) -> np.ndarray:
        return self.tokens[self.offsets[index] : self.offsets[index + 1]]

    def reference_sequence(self, index: int) -> np.ndarray:
        return self.reference_tokens[self.reference_offsets[index] : self.reference_offsets[index + 1]]

    @property
    def n_reference(self) -> int:
        return len(self.reference_offsets) - 1

    @classmethod
    def load(cls, path: str | Path) -> TokenData:
        from lmmap.storage import load_npz

        arrays = load_npz(path, required=tuple(f.name for f in dataclasses.fields(cls)))
        return cls(**{f.name: arrays[f.name] for f in dataclasses.fields(cls)})


# --------------------------------------------------------------------------------------------------
# Building models (these import torch)


def new_model(recipe: dict, tokenizer):
    """A freshly initialised model of the recipe's architecture and shape."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, GPTNeoXConfig, LlamaConfig

    shape, arch = recipe["shape"], recipe["architecture"]
    d, layers, heads = shape["hidden"], shape["layers"], shape["heads"]
    inter = shape.get("intermediate") or default_intermediate(arch, d)
    ids = {
        "vocab_size": recipe["vocab_size"],
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if arch == "gpt2":
        config = GPT2Config(
            n_embd=d,
            n_layer=layers,
            n_head=heads,
            n_inner=inter,
            n_positions=MAX_POSITIONS,
            tie_word_embeddings=True,
            **ids,
        )
    elif arch == "llama":
        config = LlamaConfig(
            hidden_size=d,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            intermediate_size=inter,
            tie_word_embeddings=True,
            max_position_embeddings=MAX_POSITIONS,
            **ids,
        )
    else:
        config = GPTNeoXConfig(
            hidden_size=d,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=inter,
            max_position_embeddings=MAX_POSITIONS,
            rotary_pct=0.25,
            tie_word_embeddings=False,
            **ids,
        )
    torch.manual_seed(recipe["seed"])
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def domain_weights(domains: np.ndarray, mix: dict) -> np.ndarray:
    """Per-chunk sampling probabilities: each domain gets its mix weight (default 1), shared evenly
    by its chunks, so the mix, not the corpus, decides how much of each domain a family reads."""
    names, inverse, counts = np.unique(domains, return_inverse=True, return_counts=True)
    per_domain = np.array([float(mix.get(str(name), 1.0)) for name in names])
    weights = per_domain[inverse] / counts[inverse]
    if weights.sum() <= 0:
        raise InputError(CONFIG_WHERE, f"the data mix {mix} gives every training chunk weight 0", field="mix")
    return weights / weights.sum()


def sample_sequences(data: TokenData, recipe: dict, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """`n` training sequences for one batch, drawn by the recipe's data mix (and, for contaminated
    models, a share of reference texts)."""
    if recipe["kind"] == "finetune":
        weights = domain_weights(data.domains, {recipe["domain"]: 1.0} | _zero_others(data, recipe["domain"]))
    else:
        weights = domain_weights(data.domains, recipe.get("mix", {}))
    n_reference = rng.binomial(n, recipe["reference_share"]) if recipe["kind"] == "contaminated" else 0
    picks = [data.sequence(i) for i in rng.choice(len(weights), size=n - n_reference, p=weights)]
    if n_reference:
        pool = contaminating_texts(data.n_reference, recipe["reference_fraction"])
        picks += [data.reference_sequence(i) for i in rng.choice(pool, size=n_reference)]
    return [_window(seq, recipe["training"]["max_tokens"], rng) for seq in picks]


def _window(seq: np.ndarray, max_tokens: int, rng: np.random.Generator) -> np.ndarray:
    """A text's start (with its BOS, as scoring sees it) half the time, else a random window of it,
    so that long texts are learnt whole."""
    if len(seq) <= max_tokens or rng.random() < 0.5:
        return seq[:max_tokens]
    start = rng.integers(1, len(seq) - max_tokens + 1)
    return seq[start : start + max_tokens]


def contaminating_texts(n_reference: int, fraction: float) -> np.ndarray:
    """The reference texts a contaminated model trains on: the first `fraction` of the set (in text-set
    order, itself a seeded sample), so the leakage analysis knows which ones."""
    return np.arange(max(1, round(n_reference * fraction)))


def _zero_others(data: TokenData, domain: str) -> dict:
    if domain not in set(data.domains.tolist()):
        raise InputError(CONFIG_WHERE, f"domain '{domain}' has no training chunks", field="domains")
    return {str(d): 0.0 for d in np.unique(data.domains) if d != domain}


def collate(sequences: list[np.ndarray], max_tokens: int, pad_id: int):
    """Right-padded input ids, attention mask and labels (padding ignored) for one batch."""
    import torch

    cut = [s[:max_tokens] for s in sequences]
    width = max(len(s) for s in cut)
    ids = torch.full((len(cut), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(cut), width), dtype=torch.long)
    for row, seq in enumerate(cut):
        ids[row, : len(seq)] = torch.from_numpy(seq.astype(np.int64))
        mask[row, : len(seq)] = 1
    return ids, mask, ids.masked_fill(mask == 0, -100)


def train(model, data: TokenData, recipe: dict, pad_id: int, name: str = "model") -> list[float]:
    """Train `model` in place with AdamW and a warm-up + cosine schedule; returns the loss curve.
    Reports progress (step, mean loss since the last report, time left) PROGRESS_REPORTS times."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    cfg = recipe["training"]
    rng = np.random.default_rng(recipe["seed"])
    torch.manual_seed(recipe["seed"])
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg["lr"], weight_decay=cfg.get("weight_decay", 0.0), betas=(0.9, 0.95)
    )
    schedule = get_cosine_schedule_with_warmup(optimizer, cfg.get("warmup_steps", 0), cfg["steps"])
    model.train()
    model.loss_type = "ForCausalLM"  # the default transformers would pick, named: no "unrecognized" warning
    losses, started = [], time.time()
    every = max(1, cfg["steps"] // PROGRESS_REPORTS)
    for step in range(1, cfg["steps"] + 1):
        ids, mask, labels = collate(sample_sequences(data, recipe, rng, cfg["batch_size"]), cfg["max_tokens"], pad_id)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % every == 0 or step == cfg["steps"]:
            elapsed = time.time() - started
            log.info(
                "training %s: step %d/%d, loss %.3f, %.0f s elapsed, about %.0f s left",
                name,
                step,
                cfg["steps"],
                float(np.mean(losses[-every:])),
                elapsed,
                elapsed / step * (cfg["steps"] - step),
            )
    model.eval()
    return losses


def round_weights(model, fmt: str) -> None:
    """Round every weight through a lower precision, in place, keeping fp32 storage: fp16/bf16 casts,
    or symmetric per-row absmax fake quantisation to int8/int4 of the matrices (vectors stay fp32)."""
    import torch

    with torch.no_grad():
        for param in model.parameters():
            if fmt in ("fp16", "bf16"):
                param.copy_(param.to(torch.float16 if fmt == "fp16" else torch.bfloat16).float())
            elif param.dim() == 2:
                levels = 127 if fmt == "int8" else 7
                scale = param.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / levels
                param.copy_(torch.round(param / scale).clamp(-levels, levels) * scale)


def combine_weights(models: list, weights: list[float]):
    """Σ wᵢ θᵢ over models of one architecture, written into the first model (returned)."""
    import torch

    # named_parameters lists a tied weight once; a state_dict would list (and combine) it twice
    params = [dict(m.named_parameters()) for m in models]
    with torch.no_grad():
        for name, tensor in params[0].items():
            tensor.copy_(sum(w * p[name] for w, p in zip(weights, params)))
    return models[0]


def load_for_building(model_dir: str | Path):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)


def save_model(model, tokenizer, out_dir: str | Path, extra_files: dict[str, dict] | None = None) -> None:
    """save_pretrained into a temporary sibling directory, then swap it in with one rename, so
    `config.json` appears only when the whole model is there."""
    out_dir = Path(out_dir)
    tmp = temporary_directory(out_dir)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, content in (extra_files or {}).items():
            (tmp / name).write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        replace_directory(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_model(recipe: dict, tokenizer, data: TokenData | None, parents: list, name: str = "model"):
    """Build one model from its recipe and its parent models (never modified); returns the model
    and a summary (losses, parameters) for provenance."""
    import copy

    import torch

    torch.use_deterministic_algorithms(True)
    kind, summary = recipe["kind"], {}
    model = new_model(recipe, tokenizer) if kind == "base" else copy.deepcopy(parents[0])
    if kind in ("base", "finetune", "contaminated"):
        if data is None:
            raise InputError(CONFIG_WHERE, f"a {kind} model needs the training data")
        losses = train(model, data, recipe, tokenizer.pad_token_id, name)
        summary["loss_first"], summary["loss_last"] = losses[0], float(np.mean(losses[-10:]))
    elif kind == "merge":
        combine_weights([model, parents[1]], recipe["weights"])
    elif kind == "precision":
        round_weights(model, recipe["format"])
    summary["n_params"] = model.num_parameters()
    return model, summary
