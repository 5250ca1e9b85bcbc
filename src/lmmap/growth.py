"""Growing a published map: new models appended and placed without rebuilding it.

A published map is one directory (see `publish_map` and docs/architecture.md) holding everything a
new model is placed with: the clip value and column means of the map, its coordinates Q, the t-SNE
positions, ridge fits in text space with their cross-validation residuals, the leakage screen's fit
and a weighted text sample (LS by default, arXiv 2505.15428) on which new models may be scored
instead of all N texts.

Appending (the authors' `LogLikelihoodMatrix.append`): a new row is clipped with the map's stored
threshold, loses its own mean and then the map's column means c. Existing rows never move, and rows
are appended independently of each other, so one at a time equals all at once. Since every row of Q
has mean zero, Q + c is the clipped L up to a per-row constant, which is all coordinates on a text
sample need (`lmmap.resampling.resampled_coordinates` removes each row's weighted mean again).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from lmmap.coords import append_clip, nats_to_bits_per_byte
from lmmap.errors import InputError
from lmmap.provenance import write_provenance
from lmmap.resampling import TextSample, resampled_coordinates
from lmmap.storage import load_npz, read_json, save_npz, sha256_file, write_json, write_text
from lmmap.texts import load_text_set, write_text_set

if TYPE_CHECKING:
    from lmmap.analysis.prediction import TargetSettings

FORMAT = "lmmap-map"
FORMAT_VERSION = 1
MAP_FILES = ("map.npz", "models.csv", "ridge.npz", "leakage.json", "texts_sample.jsonl")
MAP_ARRAYS = (
    "Q", "column_means", "clip_value", "model_ids", "text_ids", "text_set_sha256", "xy", "nearest_kl", "perplexity",
    "mean_text_bytes",
)  # fmt: skip
# A placed model whose nearest mapped model is farther than this many times the largest distance of a
# mapped model to its own nearest is outside the map: its predictions extrapolate. (A model drawn like
# the mapped ones exceeds 1x with probability about 1/K; the demo's contaminated models are 15-30x.)
WITHIN_MAP_FACTOR = 2.0
RIDGE_ARRAYS = ("targets", "alphas", "coef", "intercept", "cv_residuals", "sample_noise", "clipped", "score_range")


def append_coordinates(L_new: np.ndarray, clip_value: float, column_means: np.ndarray) -> np.ndarray:
    """Coordinates of new models [M, N] on a published map: clipped with the map's threshold, each
    row's own mean removed, then the map's column means (so no existing row moves)."""
    clipped = append_clip(np.atleast_2d(np.asarray(L_new, dtype=float)), clip_value)
    return clipped - clipped.mean(axis=1, keepdims=True) - column_means


def weighted_total(values: np.ndarray, sample: TextSample) -> np.ndarray:
    """sum over drawn texts of w^2 * values: an unbiased estimate of the sum over all N texts."""
    return np.asarray(values) @ sample.weights**2


# ------------------------------------------------------------------------------------------- ridge
@dataclasses.dataclass(frozen=True)
class RidgeFits:
    """Per target: ridge from a model's coordinates q [N] to its score, coef [T, N] in text space."""

    targets: np.ndarray  # str [T]
    alphas: np.ndarray  # [T], chosen by 5-fold CV on the mapped models
    coef: np.ndarray  # [T, N]
    intercept: np.ndarray  # [T]
    cv_residuals: np.ndarray  # [K, T], out-of-fold (observed - predicted)
    sample_noise: np.ndarray  # [T], RMS of (sample - full) predictions on the mapped models
    clipped: np.ndarray  # bool [T], predictions clipped to score_range
    score_range: np.ndarray  # [2]

    def predict(self, Q: np.ndarray, sample: TextSample | None = None) -> np.ndarray:
        """[M, T] from full coordinates Q [M, N], or from sample coordinates Y [M, d] (Y = w * q on
        the drawn texts): sum over drawn texts of w^2 q_s coef_s estimates q @ coef without bias."""
        if sample is None:
            raw = Q @ self.coef.T
        else:
            raw = (Q * sample.weights) @ self.coef[:, sample.indices].T
        raw = raw + self.intercept
        return np.where(self.clipped, np.clip(raw, *self.score_range), raw)

    def half_widths(self, level: float, on_sample: bool) -> np.ndarray:
        """[T]: the `level` quantile of |CV residual|, widened in quadrature by the sampling noise."""
        spread = np.nanquantile(np.abs(self.cv_residuals), level, axis=0)
        if not on_sample:
            return spread
        return np.hypot(spread, NormalDist().inv_cdf(0.5 + level / 2) * self.sample_noise)


def fit_ridge(
    Q: np.ndarray,
    targets: pd.DataFrame,
    settings: TargetSettings,
    seed: int = 0,
    n_splits: int = 5,
    score_range: tuple[float, float] = (0.0, 100.0),
) -> RidgeFits:
    """Ridge per target (columns of `targets`, rows aligned with Q) with alpha chosen by 5-fold CV on
    all rows, refitted on all rows; the out-of-fold residuals of the same procedure give intervals."""
    # publishing only: placing a model needs none of scikit-learn (imported where used, to start fast)
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold

    from lmmap.analysis.prediction import cross_validated_predictions, select_alphas

    Y = targets.to_numpy(dtype=float)
    alphas = select_alphas(Q, Y, settings.alphas, KFold(n_splits=min(n_splits, len(Q))))
    oof, _ = cross_validated_predictions(
        Q, Y, None, "kfold", seed, settings, n_splits=min(n_splits, len(Q)), score_range=score_range
    )
    coef, intercept = np.empty((Y.shape[1], Q.shape[1])), np.empty(Y.shape[1])
    for alpha in np.unique(alphas):
        columns = np.flatnonzero(alphas == alpha)
        fit = Ridge(alpha=alpha).fit(Q, Y[:, columns])
        coef[columns], intercept[columns] = fit.coef_, fit.intercept_
    no_noise = np.zeros(Y.shape[1])
    return RidgeFits(
        np.asarray(targets.columns, dtype=str), alphas, coef, intercept, Y - oof, no_noise, settings.clipped,
        np.asarray(score_range, dtype=float),
    )  # fmt: skip


# ----------------------------------------------------------------------------------------- leakage
def fit_leakage(
    mean_loglik: np.ndarray, tasks: pd.DataFrame, groups: np.ndarray, method: str, threshold: float
) -> dict:
    """What the leakage screen (`lmmap.analysis.leakage`) needs to score one more model: the Huber
    line, the robust residual scale and ("within") each group's medians of predictors and target."""
    from scipy.stats import median_abs_deviation

    from lmmap.analysis.leakage import MIN_GROUP, robust_residuals

    X = tasks[["mean"]].to_numpy(float) if method == "global" else tasks.drop(columns="mean").to_numpy(float)
    y = np.asarray(mean_loglik, float)
    residual, _, fit = robust_residuals(X, y, groups if method == "within" else None)
    scale = float(median_abs_deviation(residual, scale="normal"))
    params = {
        "method": method,
        "threshold": threshold,
        "predictors": ["mean"] if method == "global" else [c for c in tasks.columns if c != "mean"],
        "coefficients": fit.coef_.tolist(),
        "intercept": float(fit.intercept_),
        "scale": scale if scale > 0 else 1.0,
        "centres": {},
    }
    if method == "within":
        frame = pd.DataFrame(np.column_stack([X, y]))
        key = pd.Series(np.asarray(groups).astype(str))
        small = key.map(key.value_counts()).to_numpy() < MIN_GROUP
        for name, rows in frame.groupby(np.where(small, "", key.to_numpy())):
            params["centres"][name] = rows.median().tolist()  # "": the small groups' pooled centre
        params["centres"].setdefault("", frame.median().tolist())
    return params


def leakage_z(params: dict, mean_loglik: float, scores: pd.Series, group: str | None = None) -> float:
    """The robust z of one model's mean log-likelihood against what its benchmark scores predict."""
    x = scores[params["predictors"]].to_numpy(float)
    y = float(mean_loglik)
    if params["method"] == "within":
        centre = np.asarray(params["centres"].get(str(group), params["centres"][""]))
        x, y = x - centre[:-1], y - centre[-1]
    residual = y - (x @ np.asarray(params["coefficients"]) + params["intercept"])
    return float(residual / params["scale"])


# -------------------------------------------------------------------------------------------- t-SNE
def conditional_affinities(d2: np.ndarray, perplexity: float, iterations: int = 64) -> np.ndarray:
    """p_{j|i} proportional to exp(-beta_i d2_ij) with each row's beta set by bisection so that the
    row's entropy is log(perplexity), as t-SNE does for its own points. d2 [M, K], squared distances."""
    d2 = np.atleast_2d(d2) - np.min(d2, axis=1, keepdims=True)
    scale = np.maximum(np.median(d2, axis=1, keepdims=True), np.finfo(float).tiny)
    d = d2 / scale
    lo, hi = np.full((len(d), 1), -30.0), np.full((len(d), 1), 30.0)  # log beta
    target = math.log(perplexity)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        p = np.exp(-np.exp(mid) * d)
        p /= p.sum(axis=1, keepdims=True)
        entropy = -np.sum(p * np.log(np.maximum(p, 1e-300)), axis=1, keepdims=True)
        too_flat = entropy > target  # beta too small
        lo, hi = np.where(too_flat, mid, lo), np.where(too_flat, hi, mid)
    p = np.exp(-np.exp((lo + hi) / 2) * d)
    return p / p.sum(axis=1, keepdims=True)


def _tsne_cost(x: np.ndarray, p: np.ndarray, xy: np.ndarray) -> tuple[float, np.ndarray]:
    """KL(p || q) up to a constant, q_j = t_j / sum t, t_j = 1 / (1 + |x - xy_j|^2), and its gradient."""
    diff = x - xy
    t = 1.0 / (1.0 + np.einsum("ij,ij->i", diff, diff))
    q = t / t.sum()
    cost = -float(p @ np.log(q))
    return cost, 2.0 * ((p - q) * t) @ diff


def place_on_map(xy: np.ndarray, d2: np.ndarray, perplexity: float) -> np.ndarray:
    """Out-of-sample t-SNE positions [M, 2] of new models from their squared distances d2 [M, K] to
    the mapped models, whose positions `xy` stay fixed.

    Each new point minimises t-SNE's own objective with the map held fixed: KL(p || q) between its
    conditional affinities p_{j|new} (the map's perplexity, as t-SNE computed for its own points)
    and the Student-t similarities q_{j|new} to the fixed points; started at the p-weighted mean of
    the map positions and refined with the analytic gradient. A kernel-weighted mean of neighbours
    alone would pull every point inside the convex hull of its neighbours and towards dense regions;
    the Student-t term keeps the spacing the map itself was optimised for."""
    p = conditional_affinities(d2, perplexity)
    placed = np.empty((len(p), 2))
    for i, row in enumerate(p):
        start = row @ xy
        placed[i] = minimize(_tsne_cost, start, args=(row, xy), jac=True, method="L-BFGS-B").x
    return placed


# ------------------------------------------------------------------------------------ published map
@dataclasses.dataclass
class PublishedMap:
    """A map as published (`publish_map`) or loaded (`load_map`)."""

    Q: np.ndarray  # [K, N]
    column_means: np.ndarray  # [N]
    clip_value: float
    model_ids: list[str]
    text_ids: list[str]
    text_set_sha256: str
    xy: np.ndarray  # [K, 2] t-SNE positions
    nearest_kl: np.ndarray  # [K] each mapped model's KL to its nearest other mapped model
    perplexity: float  # the t-SNE's effective perplexity
    mean_text_bytes: float
    models: pd.DataFrame  # the models table, rows in map order
    ridge: RidgeFits
    leakage: dict
    sample: TextSample
    sample_sha256: str
    sample_info: dict  # method, n_draws, seed

    def sample_coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """The mapped models' coordinates on the text sample [K, d] and their column means."""
        L_sub = self.Q[:, self.sample.indices] + self.column_means[self.sample.indices]
        return resampled_coordinates(L_sub, self.sample.weights)


def sample_records(text_set, sample: TextSample) -> list[dict]:
    """The drawn texts as a text set: id, domain, text, and each text's weight and draw count."""
    return [
        {
            "id": text_set.ids[i],
            "domain": text_set.domains[i],
            "text": text_set.texts[i],
            "weight": float(w),
            "count": int(c),
        }
        for i, w, c in zip(sample.indices, sample.weights, sample.counts)
    ]


def measure_sample_noise(ridge: RidgeFits, Q: np.ndarray, Y_sample: np.ndarray, sample: TextSample) -> np.ndarray:
    """RMS difference per target between the mapped models' predictions from the sample and from all texts."""
    return np.sqrt(np.mean((ridge.predict(Y_sample, sample) - ridge.predict(Q)) ** 2, axis=0))


def publish_map(out_dir: str | Path, pmap: PublishedMap, text_set, step: str, inputs: dict, params: dict) -> Path:
    """Write `pmap` as a self-contained directory: map.npz, models.csv, ridge.npz, leakage.json, the
    text sample (a text set), manifest.json (format, version, every file's sha256), each with provenance."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_npz(
        out / "map.npz",
        Q=pmap.Q,
        column_means=pmap.column_means,
        clip_value=np.float64(pmap.clip_value),
        model_ids=np.asarray(pmap.model_ids, dtype=str),
        text_ids=np.asarray(pmap.text_ids, dtype=str),
        text_set_sha256=np.str_(pmap.text_set_sha256),
        xy=pmap.xy,
        nearest_kl=pmap.nearest_kl,
        perplexity=np.float64(pmap.perplexity),
        mean_text_bytes=np.float64(pmap.mean_text_bytes),
    )
    write_text(out / "models.csv", pmap.models.to_csv(index=False))
    save_npz(out / "ridge.npz", **{name: getattr(pmap.ridge, name) for name in RIDGE_ARRAYS})
    write_json(out / "leakage.json", pmap.leakage)
    pmap.sample_sha256 = write_text_set(out / "texts_sample.jsonl", sample_records(text_set, pmap.sample))
    sample_info = {**pmap.sample_info, "source_text_set_sha256": pmap.text_set_sha256, "n_unique": len(pmap.sample)}
    for name in MAP_FILES:
        write_provenance(out / name, step, inputs, params, extra={"sample": sample_info} if "texts" in name else None)
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "n_models": len(pmap.model_ids),
        "n_texts": len(pmap.text_ids),
        "text_set_sha256": pmap.text_set_sha256,
        "sample": {**sample_info, "file": "texts_sample.jsonl", "sha256": pmap.sample_sha256},
        "files": {name: sha256_file(out / name) for name in MAP_FILES},
    }
    write_json(out / "manifest.json", manifest)
    write_provenance(out / "manifest.json", step, inputs, params)
    return out


def _read_manifest(directory: Path) -> dict:
    path = directory / "manifest.json"
    if not path.exists():
        raise InputError(directory, "not a published map: manifest.json is missing")
    manifest = read_json(path)
    if manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise InputError(
            path, f"unsupported map format {manifest.get('format')!r} version {manifest.get('version')!r}",
            field="version",
        )  # fmt: skip
    for name in MAP_FILES:
        expected = manifest.get("files", {}).get(name)
        if not (directory / name).exists():
            raise InputError(directory / name, "file of the published map is missing")
        if sha256_file(directory / name) != expected:
            raise InputError(directory / name, "does not match the sha256 in manifest.json", field="sha256")
    return manifest


def load_map(directory: str | Path) -> PublishedMap:
    """Read a published map, checking its format version and every file against the manifest."""
    directory = Path(directory)
    manifest = _read_manifest(directory)
    arrays = load_npz(directory / "map.npz", required=MAP_ARRAYS)
    ridge = load_npz(directory / "ridge.npz", required=RIDGE_ARRAYS)
    text_ids = arrays["text_ids"].astype(str).tolist()
    sample_set = load_text_set(directory / "texts_sample.jsonl")
    records = [json.loads(line) for line in (directory / "texts_sample.jsonl").read_text().splitlines()]
    position = {t: i for i, t in enumerate(text_ids)}
    unknown = [t for t in sample_set.ids if t not in position]
    if unknown:
        raise InputError(directory / "texts_sample.jsonl", "text not in the map's text set", record=unknown[0])
    info = manifest["sample"]
    sample = TextSample(
        indices=np.array([position[t] for t in sample_set.ids]),
        weights=np.array([r["weight"] for r in records], dtype=float),
        counts=np.array([r["count"] for r in records], dtype=int),
        n_draws=int(info["n_draws"]),
    )
    return PublishedMap(
        Q=arrays["Q"],
        column_means=arrays["column_means"],
        clip_value=float(arrays["clip_value"]),
        model_ids=arrays["model_ids"].astype(str).tolist(),
        text_ids=text_ids,
        text_set_sha256=str(arrays["text_set_sha256"]),
        xy=arrays["xy"],
        nearest_kl=arrays["nearest_kl"],
        perplexity=float(arrays["perplexity"]),
        mean_text_bytes=float(arrays["mean_text_bytes"]),
        models=pd.read_csv(directory / "models.csv", dtype={"model_id": str}),
        ridge=RidgeFits(**{name: ridge[name] for name in RIDGE_ARRAYS}),
        leakage=read_json(directory / "leakage.json"),
        sample=sample,
        sample_sha256=sample_set.sha256,
        sample_info={k: info[k] for k in ("method", "n_draws", "seed")},
    )


@dataclasses.dataclass(frozen=True)
class MapSettings:
    clip_quantile: float = 0.02
    perplexity: float = 30.0
    max_iter: int = 1000
    tsne_seed: int = 42
    sample_method: str = "ls"
    n_draws: int = 100
    sample_seed: int = 0
    ridge_seed: int = 0
    leakage_method: str = "global"
    leakage_group_by: str = "type"
    leakage_threshold: float = 3.5
    alphas: tuple[float, float, int] = (1, 9, 9)  # log10 min, log10 max, number: the ridge's alpha grid
    score_range: tuple[float, float] = (0.0, 100.0)


def build_map(
    L: np.ndarray,
    model_ids: list[str],
    text_set,
    models: pd.DataFrame,
    benchmarks: pd.DataFrame | None,
    settings: MapSettings,
) -> PublishedMap:
    """A map of the rows of L (model ids aligned; `models` and `benchmarks` indexed by model id): its
    coordinates, t-SNE, text sample, ridge fits on the benchmark columns and the leakage fit."""
    from lmmap.analysis.tsne_map import embed_map
    from lmmap.coords import clip_matrix, double_centre
    from lmmap.embedding import effective_perplexity
    from lmmap.neighbours import mean_text_bytes, nearest_all
    from lmmap.resampling import draw_texts, sampling_probabilities

    clipped, clip_value = clip_matrix(L, settings.clip_quantile)
    row_centred = clipped - clipped.mean(axis=1, keepdims=True)
    column_means = row_centred.mean(axis=0)
    Q = double_centre(clipped)
    created = models.loc[model_ids, "created"] if "created" in models else None  # t-SNE's row order
    embedding = embed_map(Q, model_ids, created, settings.perplexity, settings.max_iter, settings.tsne_seed)
    xy = embedding.set_index("model_id").loc[model_ids, ["x", "y"]].to_numpy()
    pi = sampling_probabilities(Q, settings.sample_method)
    sample = draw_texts(pi, settings.n_draws, settings.sample_seed)
    targets = benchmarks.loc[model_ids] if benchmarks is not None else pd.DataFrame(index=model_ids)
    ridge, leakage = _fit_scores(Q, L, targets, models, settings)
    pmap = PublishedMap(
        Q=Q,
        column_means=column_means,
        clip_value=clip_value,
        model_ids=list(model_ids),
        text_ids=list(text_set.ids),
        text_set_sha256=text_set.sha256,
        xy=xy,
        nearest_kl=nearest_all(Q, k=1)[1][:, 0],
        perplexity=effective_perplexity(len(Q), settings.perplexity),
        mean_text_bytes=mean_text_bytes(text_set.texts),
        models=models.loc[model_ids].drop(columns="model_id", errors="ignore").rename_axis("model_id").reset_index(),
        ridge=ridge,
        leakage=leakage,
        sample=sample,
        sample_sha256="",
        sample_info={"method": settings.sample_method, "n_draws": settings.n_draws, "seed": settings.sample_seed},
    )
    Y_sample, _ = pmap.sample_coordinates()
    pmap.ridge = dataclasses.replace(ridge, sample_noise=measure_sample_noise(ridge, Q, Y_sample, sample))
    return pmap


def _fit_scores(Q, L, targets: pd.DataFrame, models: pd.DataFrame, settings: MapSettings):
    """Ridge fits for every benchmark column and the leakage fit, on the models with every score."""
    from lmmap.analysis.prediction import TargetSettings, alpha_grid

    complete = targets.notna().all(axis=1).to_numpy() if len(targets.columns) else np.zeros(len(Q), bool)
    if complete.sum() < 3:
        empty = np.empty((0,))
        ridge = RidgeFits(
            np.array([], dtype=str), empty, np.empty((0, Q.shape[1])), empty, np.empty((len(Q), 0)), empty,
            np.array([], dtype=bool), np.array([0.0, 100.0]),
        )  # fmt: skip
        return ridge, {"method": None}
    scored = targets[complete]
    target_settings = TargetSettings.for_targets(list(scored.columns), alpha_grid(*settings.alphas))
    ridge = fit_ridge(Q[complete], scored, target_settings, settings.ridge_seed, score_range=settings.score_range)
    residuals = np.full((len(Q), len(scored.columns)), np.nan)
    residuals[complete] = ridge.cv_residuals
    ridge = dataclasses.replace(ridge, cv_residuals=residuals)
    groups = models.loc[scored.index, settings.leakage_group_by].fillna("unknown").astype(str).to_numpy()
    leakage = fit_leakage(L[complete].mean(axis=1), scored, groups, settings.leakage_method, settings.leakage_threshold)
    leakage["group_by"] = settings.leakage_group_by
    return ridge, leakage


# ---------------------------------------------------------------------------------------- placement
@dataclasses.dataclass(frozen=True)
class NewScores:
    """A new model's log-likelihoods on the map's text set or on its text sample (a scores npz)."""

    model_id: str
    loglik: np.ndarray
    text_ids: list[str]
    text_set_sha256: str
    path: str = ""


def read_new_scores(path: str | Path) -> NewScores:
    arrays = load_npz(path, required=("loglik", "text_ids", "text_set_sha256", "model_id"))
    return NewScores(
        model_id=str(arrays["model_id"]),
        loglik=np.asarray(arrays["loglik"], dtype=float),
        text_ids=arrays["text_ids"].astype(str).tolist(),
        text_set_sha256=str(arrays["text_set_sha256"]),
        path=str(path),
    )


def _on_sample(pmap: PublishedMap, scores: NewScores) -> bool:
    """Whether `scores` are on the map's sample (True) or its full text set (False); else an error."""
    if scores.text_set_sha256 == pmap.text_set_sha256 and scores.text_ids == pmap.text_ids:
        return False
    sample_ids = [pmap.text_ids[i] for i in pmap.sample.indices]
    if scores.text_set_sha256 == pmap.sample_sha256 and scores.text_ids == sample_ids:
        return True
    raise InputError(
        scores.path or scores.model_id,
        "scored on a text set that is neither the map's nor its text sample "
        f"(text set sha256 {scores.text_set_sha256[:12]}…; the map's {pmap.text_set_sha256[:12]}…, "
        f"its sample's {pmap.sample_sha256[:12]}…)",
        field="text_set_sha256",
    )


@dataclasses.dataclass(frozen=True)
class Placed:
    """New models on a map: KL to every mapped model [M, K], predictions [M, T] with interval half
    widths, mean log-likelihoods [M], positions [M, 2] and whether each was scored on the sample."""

    model_ids: list[str]
    kl: np.ndarray
    predictions: np.ndarray
    half_widths: np.ndarray
    mean_loglik: np.ndarray
    xy: np.ndarray
    on_sample: np.ndarray


def place_models(pmap: PublishedMap, new: list[NewScores], level: float = 0.9) -> Placed:
    """Place each new model: estimated KL to the mapped models (||y - y_i||^2 / 2N on the sample's
    weighted coordinates, an unbiased estimate of the full ||q - q_i||^2 / 2N), ridge predictions with
    intervals at `level`, the estimated mean log-likelihood, and the out-of-sample t-SNE position."""
    N = len(pmap.text_ids)
    on_sample = np.array([_on_sample(pmap, scores) for scores in new], dtype=bool)
    sample_map, sample_means = pmap.sample_coordinates() if on_sample.any() else (None, None)
    kl, predictions, mean_loglik = [], [], []
    for scores, sampled in zip(new, on_sample):
        if sampled:
            clipped = append_clip(scores.loglik[None, :], pmap.clip_value)
            y, _ = resampled_coordinates(clipped, pmap.sample.weights, column_means=sample_means)
            # mean(l) = mean(l - c) exactly (c sums to zero over the N texts), and l - c, free of each
            # text's difficulty, is nearly constant: its w^2-weighted mean (the row mean the sample
            # coordinates remove) has a small spread, where sum(w^2 l) / N carries every text's difficulty
            residual = scores.loglik - pmap.column_means[pmap.sample.indices]
            reference, mean = sample_map, weighted_total(residual, pmap.sample) / np.sum(pmap.sample.weights**2)
            predictions.append(pmap.ridge.predict(y, pmap.sample)[0])
        else:
            y = append_coordinates(scores.loglik, pmap.clip_value, pmap.column_means)
            reference, mean = pmap.Q, float(scores.loglik.mean())
            predictions.append(pmap.ridge.predict(y)[0])
        diff = reference - y
        kl.append(np.einsum("ij,ij->i", diff, diff) / (2.0 * N))
        mean_loglik.append(mean)
    kl = np.array(kl)
    half = np.array([pmap.ridge.half_widths(level, sampled) for sampled in on_sample])
    return Placed(
        model_ids=[s.model_id for s in new],
        kl=kl,
        predictions=np.array(predictions).reshape(len(new), -1),
        half_widths=half.reshape(len(new), -1),
        mean_loglik=np.array(mean_loglik),
        xy=place_on_map(pmap.xy, 2.0 * N * kl, pmap.perplexity),
        on_sample=on_sample,
    )


def placement_table(
    pmap: PublishedMap,
    placed: Placed,
    n_neighbours: int = 5,
    benchmarks: pd.DataFrame | None = None,
    groups: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One row per placed model: its position, its nearest mapped models (KL in nats per text and in
    bits per byte), predicted scores with intervals, and with known benchmark scores (`benchmarks`,
    indexed by model id) its leakage z (in its group of `groups`, if the screen is by group)."""
    ids = np.asarray(pmap.model_ids)
    rows = []
    for m, model_id in enumerate(placed.model_ids):
        row = {
            "model_id": model_id,
            "texts": "sample" if placed.on_sample[m] else "all",
            "n_texts": len(pmap.sample) if placed.on_sample[m] else len(pmap.text_ids),
            "x": placed.xy[m, 0],
            "y": placed.xy[m, 1],
            "mean_loglik": placed.mean_loglik[m],
        }
        order = np.argsort(placed.kl[m], kind="stable")[:n_neighbours]
        row["within_map"] = bool(placed.kl[m, order[0]] <= WITHIN_MAP_FACTOR * pmap.nearest_kl.max())
        for rank, j in enumerate(order, start=1):
            row[f"neighbour_{rank}"] = ids[j]
            row[f"kl_nats_{rank}"] = placed.kl[m, j]
            row[f"kl_bits_per_byte_{rank}"] = float(nats_to_bits_per_byte(placed.kl[m, j], pmap.mean_text_bytes))
        for t, target in enumerate(pmap.ridge.targets):
            centre, half = placed.predictions[m, t], placed.half_widths[m, t]
            row[f"predicted_{target}"], row[f"lower_{target}"], row[f"upper_{target}"] = (
                centre,
                centre - half,
                centre + half,
            )
        group = (groups or {}).get(model_id)
        row.update(_leakage_columns(pmap, model_id, placed.mean_loglik[m], benchmarks, group))
        rows.append(row)
    return pd.DataFrame(rows)


def _leakage_columns(pmap: PublishedMap, model_id: str, mean_loglik: float, benchmarks, group) -> dict:
    if not pmap.leakage.get("method") or benchmarks is None or model_id not in benchmarks.index:
        return {"leakage_z": np.nan, "leakage_flagged": ""}
    scores = benchmarks.loc[model_id]
    if scores[pmap.leakage["predictors"]].isna().any():
        return {"leakage_z": np.nan, "leakage_flagged": ""}
    z = leakage_z(pmap.leakage, mean_loglik, scores, group)
    return {"leakage_z": z, "leakage_flagged": "yes" if z > pmap.leakage["threshold"] else "no"}


# ----------------------------------------------------------------------------------------- checking
CHECKED_KINDS = ("finetune", "merge", "precision", "contaminated")


def ancestors(lineage: pd.DataFrame) -> dict[str, set[str]]:
    """Each model's parents, their parents and so on, as model ids (lineage: model_id, slug, parents)."""
    by_slug = dict(zip(lineage["slug"], lineage["model_id"]))
    parents = {
        row.model_id: {by_slug[p] for p in str(row.parents).split(";") if p in by_slug} for row in lineage.itertuples()
    }

    def up(model_id: str) -> set[str]:
        found = set(parents.get(model_id, ()))
        for parent in list(found):
            found |= up(parent)
        return found

    return {model_id: up(model_id) for model_id in parents}


def check_placement(
    placement: pd.DataFrame, lineage: pd.DataFrame, benchmark_mean: pd.Series, top: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per placed derived model (fine-tune, merge, reduced precision, contaminated): the rank of its
    nearest relative (a parent or an ancestor) among its mapped neighbours, whether that is within
    `top`, and whether its true benchmark mean lies in its interval. Also the shares of both, over all
    checked models and over those within the map (no farther from it than its models are from each other)."""
    relatives = ancestors(lineage)
    kinds = lineage.set_index("model_id")["kind"]
    neighbours = [c for c in placement.columns if c.startswith("neighbour_")]
    rows = []
    for row in placement.to_dict("records"):
        if kinds.get(row["model_id"]) not in CHECKED_KINDS:
            continue
        ranks = [r for r, column in enumerate(neighbours, start=1) if row[column] in relatives[row["model_id"]]]
        true = benchmark_mean.get(row["model_id"], np.nan)
        rows.append(
            {
                "model_id": row["model_id"],
                "kind": kinds[row["model_id"]],
                "texts": row["texts"],
                "within_map": bool(row["within_map"]),
                "leakage_z": row.get("leakage_z", np.nan),
                "relatives": ", ".join(sorted(relatives[row["model_id"]])),
                "nearest": row["neighbour_1"],
                "relative_rank": ranks[0] if ranks else np.nan,
                "relative_in_top": bool(ranks) and ranks[0] <= top,
                "benchmark_mean": true,
                "predicted_mean": row.get("predicted_mean", np.nan),
                "lower_mean": row.get("lower_mean", np.nan),
                "upper_mean": row.get("upper_mean", np.nan),
                "inside_interval": bool(row.get("lower_mean", np.nan) <= true <= row.get("upper_mean", np.nan)),
            }
        )
    checked = pd.DataFrame(rows)
    inside = checked[checked["within_map"]] if len(checked) else checked
    summary = pd.DataFrame(
        {
            "models": [len(checked)],
            "top": [top],
            "relative_in_top_share": [checked["relative_in_top"].mean() if len(checked) else np.nan],
            "interval_coverage": [checked["inside_interval"].mean() if len(checked) else np.nan],
            "models_within_map": [len(inside)],
            "relative_in_top_share_within_map": [inside["relative_in_top"].mean() if len(inside) else np.nan],
            "interval_coverage_within_map": [inside["inside_interval"].mean() if len(inside) else np.nan],
        }
    )
    return checked, summary
