"""Scoring texts with a causal LM: exact, batched, bounded memory, resumable.

The paper's convention (default): each text is tokenized with the tokenizer's own special tokens,
truncated at the model's maximum length, and ℓ(x) = Σ_{t≥2} log p(y_t | y_<t) (the first token is
never scored). The lm-evaluation-harness convention ("harness") instead scores every token after a
prefix token (BOS, else EOS), in rolling windows for texts longer than the context.

How it stays fast and exact:
- a text (or harness window) is a *row*; rows are sorted by length and grouped into batches under a
  token budget, so rows in a batch have near-equal lengths and little padding;
- rows are right-padded and run with a plain causal mask (no attention mask): a real token never sees
  a pad to its right, so its output is exactly that of the unpadded text, and SDPA takes its fast
  causal path;
- the LM head and the log-sum-exp run on chunks of the scored positions only, so no [B, T, V] tensor
  exists; per-token log-probs are fp32, their sums fp64;
- the batch plan depends only on the set of texts, so results do not depend on input order, and a
  resumed run repeats exactly the batches of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import resource
import time
from pathlib import Path

import numpy as np
import torch

from lmmap.errors import InputError
from lmmap.loading import model_max_length, pad_token_id
from lmmap.logs import explain_unmasked_padding
from lmmap.storage import load_npz, read_json, save_npz, write_json

log = logging.getLogger(__name__)

CONVENTIONS = ("paper", "harness")
# LM-head chunks: on CPU small enough to stay in cache and be reused by the allocator (large blocks are
# fresh mmaps that page-fault on every touch); on GPU large enough for full-speed matmuls.
HEAD_CHUNK_MB_CPU, HEAD_CHUNK_MB_GPU, HEAD_MIN_POSITIONS = 16, 1024, 64


@dataclasses.dataclass(frozen=True)
class ScoreOptions:
    convention: str = "paper"
    batch_tokens: int | None = None  # padded tokens per forward pass; None: by device
    max_length: int | None = None  # None: the model's (and tokenizer's) limit
    head_chunk_mb: int | None = None  # bound on each fp32 logits chunk of the LM head; None: by device
    token_logprobs: bool = False
    checkpoint_seconds: float = 60.0  # how often finished batches are written to the checkpoint
    progress_seconds: float = 15.0

    def __post_init__(self):
        if self.convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, not {self.convention!r}")
        for name in ("batch_tokens", "max_length"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive number of tokens, not {getattr(self, name)}")


@dataclasses.dataclass
class TokenLogprobs:
    """Per-token log-probs of all texts, concatenated: text i is offsets[i]:offsets[i+1]."""

    offsets: np.ndarray  # int64 [N + 1]
    logprobs: np.ndarray  # float32 [M]
    token_ids: np.ndarray  # int32 [M], the scored (target) tokens


@dataclasses.dataclass
class ScoreResult:
    loglik: np.ndarray  # float64 [N]
    n_tokens: np.ndarray  # int64 [N]
    truncated: np.ndarray  # bool [N]
    info: dict
    token_logprobs: TokenLogprobs | None = None


@dataclasses.dataclass(frozen=True)
class Row:
    """One forward-pass sequence: input seq[:-1], targets seq[1:], scored from seq[score_from] on."""

    text: int
    seq: np.ndarray
    score_from: int

    @property
    def n_scored(self) -> int:
        return max(0, len(self.seq) - self.score_from)


# --------------------------------------------------------------------------- tokenization → rows


def build_rows(tokenizer, texts: list[str], convention: str, max_length: int | None):
    """(rows, truncated[N]) for `texts` under `convention`."""
    if convention == "paper":
        encoded = tokenizer(list(texts), verbose=False)["input_ids"]
        limit = max_length or max(len(ids) for ids in encoded) or 1
        rows = [Row(i, np.asarray(ids[:limit], dtype=np.int64), 1) for i, ids in enumerate(encoded)]
        truncated = np.array([len(ids) > limit for ids in encoded], dtype=bool)
        return rows, truncated
    encoded = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    limit = max_length or max(len(ids) for ids in encoded) or 1
    rows = [row for i, ids in enumerate(encoded) for row in rolling_windows(i, ids, prefix, limit)]
    return rows, np.zeros(len(texts), dtype=bool)


def check_token_ids(model, rows: list[Row]) -> None:
    """A tokenizer larger than the model's vocabulary would index past the embedding table."""
    vocab = model.get_input_embeddings().num_embeddings
    top = max((int(r.seq.max()) for r in rows if len(r.seq)), default=-1)
    if top >= vocab:
        name = getattr(model.config, "_name_or_path", "") or type(model).__name__
        raise InputError(
            name,
            f"the tokenizer produced token id {top}, but the model's vocabulary has only "
            f"{vocab} entries: tokenizer and model do not belong together",
        )


def rolling_windows(text: int, tokens: list[int], prefix: int, max_length: int) -> list[Row]:
    """Disjoint rolling windows scoring every token once, each with up to max_length of context."""
    if not tokens:
        return []
    first = min(max_length, len(tokens))
    rows = [Row(text, np.asarray([prefix] + tokens[:first], dtype=np.int64), 1)]
    done = first
    while done < len(tokens):
        end = min(len(tokens), done + max_length)
        start = max(0, end - max_length - 1)
        rows.append(Row(text, np.asarray(tokens[start:end], dtype=np.int64), done - start))
        done = end
    return rows


# --------------------------------------------------------------------------- batch plan


def plan_batches(rows: list[Row], batch_tokens: int) -> list[list[int]]:
    """Row indices per batch: longest rows first (an OOM shows at once), ties broken by content so
    the plan is the same for any order of the input texts; rows × padded length ≤ batch_tokens."""
    order = sorted(range(len(rows)), key=lambda i: (-len(rows[i].seq), rows[i].seq.tobytes()))
    order = [i for i in order if rows[i].n_scored > 0]
    batches, current, width = [], [], 0
    for i in order:
        length = len(rows[i].seq) - 1
        width = max(width, length)
        if current and width * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, width = [], length
        current.append(i)
    if current:
        batches.append(current)
    return batches


def plan_digest(rows: list[Row], batches: list[list[int]]) -> str:
    digest = hashlib.sha256()
    for batch in batches:
        for i in batch:
            digest.update(np.int64(rows[i].score_from).tobytes() + rows[i].seq.tobytes() + b"|")
        digest.update(b"#")
    return digest.hexdigest()


def default_batch_tokens(device: torch.device) -> int:
    return 2048 if device.type == "cpu" else 32768


# --------------------------------------------------------------------------- the forward pass


class RowScorer:
    """Computes per-token log-probs of batches of rows with a chunked LM head."""

    def __init__(self, model, pad_id: int, head_chunk_mb: int | None):
        self.model = model
        self.pad_id = pad_id
        self.device = model.get_input_embeddings().weight.device
        vocab = model.get_output_embeddings().weight.shape[0]
        on_cpu = self.device.type == "cpu"
        head_chunk_mb = head_chunk_mb or (HEAD_CHUNK_MB_CPU if on_cpu else HEAD_CHUNK_MB_GPU)
        self.chunk_positions = max(HEAD_MIN_POSITIONS, int(head_chunk_mb * 2**20) // (4 * vocab))
        self.head_path = "chunked" if self._chunked_head_matches() else "full-forward"
        if self.head_path != "chunked":
            log.warning(
                "model %s has a non-standard LM head: scoring from full logits (more memory)", type(model).__name__
            )

    # The body + head split is exact for standard heads; anything else is caught here, once.
    def _chunked_head_matches(self) -> bool:
        body = getattr(self.model, "base_model", None)
        if body is None or body is self.model or self.model.get_output_embeddings() is None:
            return False
        vocab = self.model.get_input_embeddings().num_embeddings
        ids = torch.arange(1, 9, device=self.device).remainder(vocab)
        with torch.inference_mode():
            full = self.model(input_ids=ids[None], use_cache=False).logits[0].float()
            hidden = body(input_ids=ids[None], use_cache=False).last_hidden_state[0]
            mine = self._head_logits(hidden)
        return bool(torch.allclose(full, mine, rtol=1e-3, atol=1e-3 * float(full.abs().max()) + 1e-5))

    def _head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        config = self.model.config
        logits = self.model.get_output_embeddings()(hidden).float()
        if getattr(config, "logit_scale", None):  # Cohere
            logits = logits * config.logit_scale
        if getattr(config, "logits_scaling", None):  # Granite
            logits = logits / config.logits_scaling
        cap = getattr(config, "final_logit_softcapping", None)  # Gemma 2/3
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    def score(self, rows: list[Row]) -> list[np.ndarray]:
        """fp32 log-probs of the scored tokens of each row."""
        ids, batch_idx, pos_idx, targets = self._layout(rows)
        with torch.inference_mode():
            if self.head_path == "chunked":
                hidden = self.model.base_model(input_ids=ids, use_cache=False).last_hidden_state
                hidden = hidden[batch_idx.to(hidden.device), pos_idx.to(hidden.device)]
                logprobs = self._chunked_logprobs(hidden, targets)
            else:  # with device_map="auto" the output may sit on another device than the input
                logits = self.model(input_ids=ids, use_cache=False).logits
                logits = logits[batch_idx.to(logits.device), pos_idx.to(logits.device)].float()
                logprobs = self._logprobs_of(logits, targets.to(logits.device))
        splits = np.cumsum([r.n_scored for r in rows])[:-1]
        return np.split(logprobs.cpu().numpy(), splits)

    def _layout(self, rows: list[Row]):
        width = max(len(r.seq) - 1 for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        batch_idx, pos_idx, targets = [], [], []
        for b, row in enumerate(rows):
            ids[b, : len(row.seq) - 1] = row.seq[:-1]
            positions = np.arange(row.score_from - 1, len(row.seq) - 1)
            batch_idx.append(np.full(len(positions), b))
            pos_idx.append(positions)
            targets.append(row.seq[row.score_from :])
        to = lambda parts: torch.from_numpy(np.concatenate(parts)).to(self.device)  # noqa: E731
        return torch.from_numpy(ids).to(self.device), to(batch_idx), to(pos_idx), to(targets)

    def _chunked_logprobs(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        out = torch.empty(len(targets), dtype=torch.float32, device=hidden.device)
        for start in range(0, len(targets), self.chunk_positions):
            stop = start + self.chunk_positions
            logits = self._head_logits(hidden[start:stop])
            out[start:stop] = self._logprobs_of(logits, targets[start:stop].to(logits.device))
        return out

    @staticmethod
    def _logprobs_of(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log p(target) = logit - logsumexp(logits), computed in place on this scratch chunk."""
        target_logits = logits.gather(1, targets[:, None])[:, 0]
        peak = logits.amax(dim=-1, keepdim=True)
        lse = logits.sub_(peak).exp_().sum(dim=-1).log_() + peak[:, 0]
        return target_logits - lse


# --------------------------------------------------------------------------- the scoring loop


def score_texts(
    model,
    tokenizer,
    texts: list[str],
    options: ScoreOptions = ScoreOptions(),
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    weights_digest: str | None = None,
) -> ScoreResult:
    """Score every text; results are in input order. See the module docstring for the method.

    `weights_digest` identifies the weights for the checkpoint (e.g. the digest of the weight files
    that were loaded); without it every parameter is hashed."""
    started = time.time()
    max_length = options.max_length or model_max_length(model, tokenizer)
    rows, truncated = build_rows(tokenizer, texts, options.convention, max_length)
    check_token_ids(model, rows)
    run = _planned_run(model, pad_token_id(tokenizer), rows, len(texts), options, progress)
    if checkpoint_dir is not None:
        key = _run_key(model, weights_digest or parameters_digest(model), options, max_length, rows, run.batches)
        run.checkpoint = Checkpoint(checkpoint_dir, key, options.checkpoint_seconds)
        run.restore()
    run.execute()
    return run.result(truncated, max_length, started)


def score_rows(model, rows: list[Row], pad_id: int, batch_tokens: int | None = None) -> list[np.ndarray]:
    """fp32 log-probs of the scored tokens of any token sequences (e.g. a benchmark's context +
    continuation), in input order, with the engine's batching, back-off and non-finite recompute."""
    run = _planned_run(model, pad_id, rows, len(rows), ScoreOptions(batch_tokens=batch_tokens), progress=False)
    run.execute()
    return [run.row_logprobs.get(i, np.zeros(0, dtype=np.float32)) for i in range(len(rows))]


def _planned_run(model, pad_id: int, rows: list[Row], n_texts: int, options: ScoreOptions, progress: bool) -> _Run:
    """The scorer and the batch plan of `rows` under the options' (or the device's) token budget."""
    explain_unmasked_padding(log)
    scorer = RowScorer(model, pad_id, options.head_chunk_mb)
    budget = options.batch_tokens or default_batch_tokens(scorer.device)
    batches = plan_batches(rows, max(budget, max((len(r.seq) for r in rows), default=1)))
    return _Run(scorer, rows, n_texts, batches, budget, options, progress)


def _run_key(model, weights_digest: str, options: ScoreOptions, max_length, rows, batches) -> str:
    """What a checkpoint must match to be reused: the weights themselves (a sample of them misses a
    change to an inner layer), the resolved revision, dtype, device and batch plan."""
    param = next(model.parameters())
    fields = [
        type(model).__name__,
        weights_digest,
        str(getattr(model.config, "_commit_hash", None)),
        str(param.dtype),
        str(param.device.type),
        getattr(model.config, "_name_or_path", ""),
        options.convention,
        str(max_length),
        str(options.token_logprobs),
        plan_digest(rows, batches),
    ]
    return hashlib.sha256("\n".join(fields).encode()).hexdigest()


def parameters_digest(model) -> str:
    """sha256 over the name, dtype, shape and bytes of every parameter and buffer."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().reshape(-1).contiguous()
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.cpu().view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


class _Run:
    def __init__(
        self,
        scorer: RowScorer,
        rows: list[Row],
        n_texts: int,
        batches,
        budget: int,
        options: ScoreOptions,
        progress: bool,
    ):
        self.scorer, self.rows, self.batches, self.options = scorer, rows, batches, options
        self.n_texts = n_texts
        self.budget = self.initial_budget = budget
        self.progress = progress
        self.checkpoint: Checkpoint | None = None
        self.row_logprobs: dict[int, np.ndarray] = {}
        self.recomputed: set[int] = set()
        self.done_batches: set[int] = set()
        self.stats = {
            "batches_run": 0,
            "oom_backoffs": 0,
            "tokens_forwarded": 0,
            "rows_resumed": 0,
            "batch_rows": [len(b) for b in batches],
        }

    def restore(self) -> None:
        for batch_id, row_ids, logprobs, recomputed in self.checkpoint.load():
            self.done_batches.add(batch_id)
            for row_id, lp in zip(row_ids, logprobs):
                self.row_logprobs[int(row_id)] = lp
            self.recomputed.update(int(r) for r, flag in zip(row_ids, recomputed) if flag)
        self.stats["rows_resumed"] = len(self.row_logprobs)

    def execute(self) -> None:
        self._t0, self._last_log = time.time(), time.time()
        self._tokens_done = 0
        todo = [b for b in range(len(self.batches)) if b not in self.done_batches]
        self._tokens_todo = sum(self.rows[i].n_scored for b in todo for i in self.batches[b])
        for batch_id in todo:
            row_ids = self.batches[batch_id]
            results = self._score_with_backoff(row_ids)
            results = self._recompute_nonfinite(row_ids, results)
            self.row_logprobs.update(zip(row_ids, results))
            self.stats["batches_run"] += 1
            self._tokens_done += sum(len(lp) for lp in results)
            if self.checkpoint is not None:
                self.checkpoint.add(batch_id, row_ids, results, [r in self.recomputed for r in row_ids])
            self._log_progress(final=batch_id == todo[-1])
        if self.checkpoint is not None:
            self.checkpoint.flush()

    def _score_with_backoff(self, row_ids: list[int]) -> list[np.ndarray]:
        """Score rows in sub-batches under the current budget, halving it on out-of-memory."""
        results: list[np.ndarray] = []
        for part in _split_to_budget(row_ids, self.rows, self.budget):
            rows = [self.rows[i] for i in part]
            try:
                results.extend(self.scorer.score(rows))
                self.stats["tokens_forwarded"] += len(rows) * (max(len(r.seq) for r in rows) - 1)
            except torch.OutOfMemoryError:
                if len(part) == 1:
                    raise
                torch.cuda.empty_cache()
                self.budget = max(1, self.budget // 2)
                self.stats["oom_backoffs"] += 1
                log.warning("out of memory with %d rows: token budget halved to %d", len(part), self.budget)
                results.extend(self._score_with_backoff(part))
        return results

    def _recompute_nonfinite(self, row_ids: list[int], results: list[np.ndarray]) -> list[np.ndarray]:
        """Rows with non-finite log-probs (e.g. fp16 overflow) are recomputed once in float32."""
        bad = [k for k, lp in enumerate(results) if not np.isfinite(lp).all()]
        model = self.scorer.model
        dtype = next(model.parameters()).dtype
        if not bad or dtype in (torch.float32, torch.float64):
            return results
        log.warning("%d row(s) with non-finite log-probs in %s: recomputing in float32", len(bad), dtype)
        model.to(torch.float32)  # bf16/fp16 → fp32 → back is lossless
        try:
            fixed = self.scorer.score([self.rows[row_ids[k]] for k in bad])
        finally:
            model.to(dtype)
        for k, lp in zip(bad, fixed):
            results[k] = lp
            self.recomputed.add(row_ids[k])
        return results

    def _log_progress(self, final: bool) -> None:
        now = time.time()
        if not self.progress or (not final and now - self._last_log < self.options.progress_seconds):
            return
        self._last_log = now
        elapsed = max(now - self._t0, 1e-9)
        rate = self._tokens_done / elapsed
        eta = (self._tokens_todo - self._tokens_done) / rate if rate > 0 else float("nan")
        unfinished = {self.rows[i].text for b in self.batches for i in b if i not in self.row_logprobs}
        log.info(
            "scored %d/%d texts, %d tokens, %.0f tokens/s, ETA %s",
            self.n_texts - len(unfinished),
            self.n_texts,
            self._tokens_done,
            rate,
            _clock(eta),
        )

    def result(self, truncated: np.ndarray, max_length, started: float) -> ScoreResult:
        n_texts = self.n_texts
        loglik = np.zeros(n_texts, dtype=np.float64)
        n_tokens = np.zeros(n_texts, dtype=np.int64)
        for row_id, row in enumerate(self.rows):  # rows of a text are in window order
            lp = self.row_logprobs.get(row_id)
            if lp is not None:
                loglik[row.text] += lp.astype(np.float64).sum()
                n_tokens[row.text] += len(lp)
        return ScoreResult(
            loglik,
            n_tokens,
            truncated,
            self._info(truncated, loglik, n_tokens, max_length, started),
            self._token_logprobs(n_texts) if self.options.token_logprobs else None,
        )

    def _token_logprobs(self, n_texts: int) -> TokenLogprobs:
        per_text: list[list[int]] = [[] for _ in range(n_texts)]
        for row_id, row in enumerate(self.rows):
            per_text[row.text].append(row_id)
        lps, ids, counts = [], [], []
        for row_ids in per_text:
            kept = [r for r in row_ids if r in self.row_logprobs]
            lps += [self.row_logprobs[r] for r in kept]
            ids += [self.rows[r].seq[self.rows[r].score_from :] for r in kept]
            counts.append(sum(len(self.row_logprobs[r]) for r in kept))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
        return TokenLogprobs(offsets, cat(lps, np.float32), cat(ids, np.int32))

    def _info(self, truncated, loglik, n_tokens, max_length, started: float) -> dict:
        seconds = time.time() - started
        tokens = int(sum(len(lp) for lp in self.row_logprobs.values()))
        model = self.scorer.model
        rows_per_batch = self.stats.pop("batch_rows")
        return {
            "convention": self.options.convention,
            "max_length": max_length,
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "device": str(self.scorer.device),
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "head_path": self.scorer.head_path,
            "head_chunk_positions": self.scorer.chunk_positions,
            "batch_tokens": self.initial_budget,
            "batch_tokens_final": self.budget,
            "n_batches": len(self.batches),
            "rows_per_batch": {
                "min": min(rows_per_batch, default=0),
                "max": max(rows_per_batch, default=0),
                "median": float(np.median(rows_per_batch)) if rows_per_batch else 0.0,
            },
            "n_rows": len(self.rows),
            "n_truncated": int(truncated.sum()),
            "truncated_texts": np.flatnonzero(truncated).tolist(),
            "recomputed_texts": sorted({self.rows[r].text for r in self.recomputed}),
            "recompute_dtype": "float32" if self.recomputed else None,
            "nonfinite_texts": np.flatnonzero(~np.isfinite(loglik)).tolist(),
            # texts of one token (the first is never scored) have ℓ = 0: count them, never hide them
            "texts_without_scored_tokens": np.flatnonzero(n_tokens == 0).tolist(),
            "n_texts_without_scored_tokens": int((n_tokens == 0).sum()),
            "tokens_scored": tokens,
            "seconds": round(seconds, 3),
            "tokens_per_s": round(self._tokens_done / max(time.time() - self._t0, 1e-9), 1),
            "peak_memory_bytes": peak_memory_bytes(self.scorer.device),
            **self.stats,
        }


def _split_to_budget(row_ids: list[int], rows: list[Row], budget: int) -> list[list[int]]:
    width = max(len(rows[i].seq) - 1 for i in row_ids)
    per_part = max(1, budget // max(width, 1))
    return [row_ids[k : k + per_part] for k in range(0, len(row_ids), per_part)]


def peak_memory_bytes(device: torch.device) -> int:
    """Peak accelerator memory on GPU; peak resident set size of the process on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _clock(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# --------------------------------------------------------------------------- checkpoints


class Checkpoint:
    """Finished batches as atomic `part-<first batch>.npz` files next to a manifest naming the run.

    A part holds, for each of its batches, the rows' fp32 log-probs exactly as computed, so a
    resumed run reproduces an uninterrupted one bit for bit. Parts of a different run (other model,
    options or texts) are removed, never mixed in.
    """

    def __init__(self, directory: str | Path, key: str, every_seconds: float):
        self.directory = Path(directory)
        self.key = key
        self.every_seconds = every_seconds
        self.pending: list[tuple[int, list[int], list[np.ndarray], list[bool]]] = []
        self.last_flush = time.time()
        manifest = self.directory / "manifest.json"
        if self._recorded_key(manifest) != key:
            if manifest.exists():
                log.warning("checkpoint %s belongs to another run: starting afresh", self.directory)
            for part in self.parts():
                part.unlink()
            write_json(manifest, {"key": key})

    @staticmethod
    def _recorded_key(manifest: Path) -> str | None:
        try:
            record = read_json(manifest)
        except InputError:  # absent or damaged: nothing here can be trusted
            return None
        return record.get("key") if isinstance(record, dict) else None

    def parts(self) -> list[Path]:
        return sorted(self.directory.glob("part-*.npz"))

    def load(self):
        """Yield (batch_id, row_ids, logprobs per row, recomputed flags) of every saved batch."""
        for part in self.parts():
            try:
                data = load_npz(
                    part, required=("batch_ids", "batch_sizes", "row_ids", "row_counts", "logprobs", "recomputed")
                )
            except InputError as exc:  # e.g. truncated by a full disk: its batches are simply run again
                log.warning("discarding unreadable checkpoint part: %s", exc)
                part.unlink(missing_ok=True)
                continue
            rows = np.split(data["row_ids"], np.cumsum(data["batch_sizes"])[:-1])
            flags = np.split(data["recomputed"], np.cumsum(data["batch_sizes"])[:-1])
            logprobs = np.split(data["logprobs"], np.cumsum(data["row_counts"])[:-1])
            start = 0
            for batch_id, row_ids, flag in zip(data["batch_ids"], rows, flags):
                yield int(batch_id), row_ids.tolist(), logprobs[start : start + len(row_ids)], flag.tolist()
                start += len(row_ids)

    def add(self, batch_id: int, row_ids: list[int], logprobs: list[np.ndarray], recomputed: list[bool]):
        self.pending.append((batch_id, list(row_ids), logprobs, recomputed))
        if time.time() - self.last_flush >= self.every_seconds:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batch_ids, row_ids, logprobs, flags = zip(*self.pending)
        save_npz(
            self.directory / f"part-{min(batch_ids):07d}.npz",
            batch_ids=np.asarray(batch_ids, dtype=np.int64),
            batch_sizes=np.asarray([len(r) for r in row_ids], dtype=np.int64),
            row_ids=np.concatenate(row_ids).astype(np.int64),
            row_counts=np.asarray([len(lp) for lps in logprobs for lp in lps], dtype=np.int64),
            logprobs=np.concatenate([lp for lps in logprobs for lp in lps] or [np.zeros(0)]).astype(np.float32),
            recomputed=np.concatenate(flags).astype(bool),
        )
        self.pending.clear()
        self.last_flush = time.time()


# --------------------------------------------------------------------------- reference


def reference_logliks(model, tokenizer, texts: list[str], max_length: int | None = None) -> np.ndarray:
    """The paper's ℓ for each text, one text per forward pass, in float64 throughout: the yardstick."""
    import copy

    reference = model if next(model.parameters()).dtype == torch.float64 else copy.deepcopy(model).double()
    max_length = max_length or model_max_length(model, tokenizer)
    device = reference.get_input_embeddings().weight.device
    out = np.zeros(len(texts), dtype=np.float64)
    for k, text in enumerate(texts):
        ids = tokenizer(text, verbose=False)["input_ids"][:max_length]
        if len(ids) < 2:
            continue
        ids = torch.tensor([ids], device=device)
        with torch.inference_mode():
            logits = reference(input_ids=ids, use_cache=False).logits[0, :-1].double()
        out[k] = -float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))
    return out
