"""Wall time, CPU time and peak memory of every analysis on synthetic data (K models, N texts; the
paper's size is K = 1,018, N = 10,000, the default; K = 10,000 is the scale target).

Runs t-SNE with the paper's 10,000 iterations, PCA dimensionality, the KL estimate with its clustered
heatmap (at most 300 models drawn) and the KL validation model choice, the map coloured by every
variable, ridge prediction (Q and L x grouped and plain CV x 5 seeds x 9 targets, the paper's alphas),
the perplexity baseline, the leakage screen, a 36-model interpolation grid and the model list, then
prints the table and writes it to benchmarks/results/analysis.md (analysis_K<models>.md for other K).
On 2 cores, `--cores 1 --jobs 2` (one BLAS thread per process, two ridge processes) is fastest:
threaded BLAS and OpenMP spin badly when the cores are shared. KL validation itself needs real models;
only its model choice is timed. `--ridge-seeds 0` leaves the ridge stage out and times its exact
pieces instead; `--ridge-components` runs the stage once per max_components value (0: exact) and
compares each with an exact run; `--only-ridge` skips every other analysis (docs/performance.md).
Usage: python benchmarks/bench_analysis.py [--cores 1] [--jobs 2] [--models 1018] [--texts 10000]
[--tsne-iter 10000] [--ridge-seeds 5] [--ridge-features Q L] [--ridge-components 1024 ...] [--only-ridge]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from lmmap.analysis import interpolation, kl_validation, leakage, model_list, plots, prediction, tsne_map
from lmmap.analysis.dimensionality import dimensionality_table
from lmmap.coords import clip_matrix, double_centre, kl_estimate
from lmmap.embedding import tsne_embedding
from lmmap.figures import plot_kl_heatmap, plot_map, save_figure

TASKS = ["ARC", "HellaSwag", "MMLU", "TruthfulQA", "Winogrande", "GSM8K", "BBH"]  # + mean = 8 targets
DOMAINS = [f"domain-{d:02d}" for d in range(22)]


def synthetic(K: int, N: int, seed: int = 0):
    """L with planted low-rank structure by type, benchmark scores linear in the latent factors."""
    rng = np.random.default_rng(seed)
    types = np.array([f"type{i % 12}" for i in rng.permutation(K)])
    type_offsets = {t: rng.normal(size=20) for t in np.unique(types)}
    latent = np.stack([type_offsets[t] for t in types]) + 0.5 * rng.normal(size=(K, 20))
    L = -600 + latent @ rng.normal(size=(20, N)) * 3 + 2 * rng.normal(size=(K, N)) + 30 * rng.normal(size=(K, 1))
    scores = pd.DataFrame({t: np.clip(50 + 8 * latent @ rng.normal(size=20) / 4, 0, 100) for t in TASKS})
    scores["mean"] = scores[TASKS].mean(axis=1)
    ids = [f"org/model-{i:04d}" for i in range(K)]
    scores.index = ids
    models = pd.DataFrame(
        {
            "model_id": ids,
            "type": types,
            "n_params": 10 ** rng.uniform(8, 11, K),
            "created": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 700, K), "D"),
        }
    )
    return L, ids, models, scores, np.array(DOMAINS)[np.arange(N) % len(DOMAINS)]


def _descendants() -> list[int]:
    """Process ids of this process's children and their children (the ridge workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [os.getpid()]
    while stack:
        for child in parents.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _cpu_and_rss(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) and resident set size in bytes of one process (0, 0 when gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(fields[21]) * os.sysconf("SC_PAGE_SIZE")


class WorkerMonitor:
    """Samples the worker processes every 0.2 s: their CPU time and their summed peak RSS (shared,
    memory-mapped inputs are counted in every worker that touched them, so this is an upper bound)."""

    def __init__(self):
        self.cpu: dict[int, tuple[float, float]] = {}
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        total = 0
        for pid in _descendants():
            cpu, rss = _cpu_and_rss(pid)
            first = self.cpu.get(pid, (cpu, cpu))[0]
            self.cpu[pid] = (first, cpu)
            total += rss
        self.peak = max(self.peak, total)

    def _run(self):
        while not self._stop.wait(0.2):
            self._sample()

    def __enter__(self):
        for pid in _descendants():  # workers left from an earlier step: count only their new CPU time
            cpu, _ = _cpu_and_rss(pid)
            self.cpu[pid] = (cpu, cpu)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def cpu_s(self) -> float:
        return sum(last - first for first, last in self.cpu.values())


def reset_peak_rss() -> None:
    """Start this process's peak RSS (VmHWM) afresh (Linux: clear_refs 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(rows: list, step: str, func, *args, **kwargs):
    """Wall time, CPU time (this process's threads plus its worker processes: on a shared machine the
    CPU time still measures the work), this process's peak RSS during the step, the workers' summed
    peak RSS, and the 1-minute load average at the end."""
    reset_peak_rss()
    started, cpu_started = time.perf_counter(), time.process_time()
    with WorkerMonitor() as workers:
        value = func(*args, **kwargs)
    rows.append(
        {
            "step": step,
            "wall_s": round(time.perf_counter() - started, 1),
            "cpu_s": round(time.process_time() - cpu_started + workers.cpu_s, 1),
            "peak_rss_mb": round(peak_rss_mb()),
            "workers_peak_rss_mb": round(workers.peak / 2**20),
            "load_1min": round(os.getloadavg()[0], 1),
        }
    )
    row = rows[-1]
    print(
        f"{step:<58} {row['wall_s']:>7.1f} s wall {row['cpu_s']:>7.1f} s cpu {row['peak_rss_mb']:>6} MB "
        f"(workers {row['workers_peak_rss_mb']} MB) load {row['load_1min']}",
        flush=True,
    )
    return value


def run(
    K: int,
    N: int,
    jobs: int,
    tsne_iter: int,
    out_dir: Path,
    ridge_seeds: int = 5,
    ridge_features: tuple[str, ...] = ("Q", "L"),
    ridge_components: tuple[int, ...] = (1024,),
    only_ridge: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    rows: list[dict] = []
    L, ids, models, scores, domains = timed(rows, f"synthetic data (K={K}, N={N})", synthetic, K, N)
    clipped = timed(rows, "coordinates: clip 2%", lambda: clip_matrix(L, 0.02)[0])
    Q = timed(rows, "coordinates: double centring", double_centre, clipped)
    if only_ridge:
        runs = ridge_runs(
            rows, L, clipped, Q, models, scores, out_dir, jobs, ridge_seeds, ridge_features, ridge_components
        )
        return pd.DataFrame(rows), ridge_agreement(runs, K, N)
    order = tsne_map.map_order(ids, models["created"].astype(str))
    xy = timed(rows, f"t-SNE ({tsne_iter} iterations)", tsne_embedding, Q[order], 30, tsne_iter, 42)
    timed(rows, "PCA dimensionality (90%, 95%)", dimensionality_table, Q, [0.9, 0.95])

    def kl():
        estimate = kl_estimate(Q)
        groups = models["type"].tolist()
        save_figure(plot_kl_heatmap(estimate, ids, groups), out_dir / "kl_heatmap")
        chosen = kl_validation.spread_over_distances(pd.DataFrame(estimate, index=ids, columns=ids), ids, 8)
        return chosen

    timed(rows, "KL estimate, clustered heatmap (300 models above 1,500), KL validation choice", kl)

    def maps():
        variables = tsne_map.map_variables(ids, Q, L, domains, models, scores.reset_index(drop=True), TASKS)
        points = pd.DataFrame({"model_id": np.asarray(ids)[order], "x": xy[:, 0], "y": xy[:, 1]}).merge(variables)
        for variable in tsne_map.VARIABLES:
            save_figure(
                plot_map(points, variable, label=tsne_map.variable_label(variable)), out_dir / f"map_{variable}"
            )
        return points

    points = timed(rows, "map coloured by 7 variables (PNG + PDF)", maps)

    summary = None
    if not ridge_seeds:  # too long to run: time one of each piece and project the whole stage
        Y = scores.assign(mean_logp=L.mean(axis=1)).to_numpy()
        settings = prediction.TargetSettings.for_targets(
            [*scores.columns, "mean_logp"], prediction.alpha_grid(*prediction.TASK_ALPHAS)
        )
        union = np.unique(np.concatenate(settings.alphas))
        system = timed(rows, "ridge piece: prepare Q (centred Gram matrix)", prediction.RidgeSystem.from_features, Q)
        groups = models["type"].to_numpy()
        train, test = next(prediction.outer_splitter("group", 5, 0, groups).split(Q, Y, groups))
        inner_train, inner_valid = next(KFold(5).split(train))
        timed(
            rows,
            f"ridge piece: one inner fold ({len(inner_train)} rows, 14 alphas)",
            system.solve_fold,
            train[inner_train],
            train[inner_valid],
            Y[train][inner_train],
            union,
        )
        chosen = np.array([1e3, 1e3, 1e4, 1e4, 1e5, 1e5, 1e6, 1e6, 1e-4])  # 5 distinct alphas, a typical fold
        timed(
            rows,
            f"ridge piece: one outer fit ({len(train)} rows, 5 distinct alphas)",
            prediction.fit_predict,
            system,
            train,
            test,
            Y[train],
            chosen,
        )
        del system
        prepare, inner, outer = (rows[-3]["cpu_s"], rows[-2]["cpu_s"], rows[-1]["cpu_s"])
        projected = 2 * prepare + 2 * 2 * 5 * 5 * (5 * inner + outer)
        rows.append(
            {
                "step": "ridge projected: 2 x prepare + 20 runs x 5 outer folds x (5 inner + 1 outer)",
                "wall_s": round(projected / 2, 1),
                "cpu_s": round(projected, 1),
                "peak_rss_mb": None,
                "workers_peak_rss_mb": None,
                "load_1min": None,
                "projected": True,
            }
        )
        print(f"{rows[-1]['step']:<58} {projected / 2:>7.1f} s wall (2 processes) {projected:>7.1f} s cpu, projected")
    runs = ridge_runs(rows, L, clipped, Q, models, scores, out_dir, jobs, ridge_seeds, ridge_features, ridge_components)
    if runs:
        summary = runs[ridge_components[0]][0]

    def baseline():
        table = prediction.baseline_correlations(pd.Series(L.mean(axis=1), index=ids), scores)
        save_figure(
            plots.baseline_scatter(
                pd.Series(L.mean(axis=1), index=ids), scores, models.set_index("model_id")["type"], table
            ),
            out_dir / "baseline",
        )

    timed(rows, "perplexity baseline (table + scatter grid)", baseline)

    def screen():
        frame = pd.DataFrame(
            {
                "model_id": ids,
                "type": models["type"],
                "group": models["type"],
                "mean_loglik": L.mean(axis=1),
                "benchmark_mean": scores["mean"].to_numpy(),
            }
        )
        table, fit = leakage.leakage_screen(
            frame,
            tsne_map.domain_means(L, domains),
            3.0,
            method="within",
            predictors=scores[TASKS].reset_index(drop=True),
        )
        save_figure(
            plot_map(points, "type", highlight=table.loc[table["flagged"], "model_id"].tolist()),
            out_dir / "leakage_map",
        )

    timed(rows, "leakage screen (within types, 7 tasks, 22 domains, map)", screen)

    def grid():
        alphas, betas = np.array([(a, b) for a in np.linspace(0, 1, 6) for b in np.linspace(0, 1, 6)]).T
        table = interpolation.interpolation_table(L[:36], [f"g{i}" for i in range(36)], alphas, betas)
        save_figure(plots.interpolation_figure(table, "synthetic"), out_dir / "interpolation")

    timed(rows, "weight interpolation (36 models)", grid)
    timed(rows, "model list", model_list.model_list, ids, L, models, scores)
    measured = [r for r in rows[1:] if not r.get("projected") and not r["step"].startswith("ridge piece")]
    wall, cpu = (round(sum(r[k] for r in measured), 1) for k in ("wall_s", "cpu_s"))
    rows.append({"step": "total measured (without synthetic data and ridge pieces)", "wall_s": wall, "cpu_s": cpu})
    print(f"{rows[-1]['step']:<58} {wall:>7.1f} s wall {cpu:>7.1f} s cpu")
    if summary is not None:
        print(summary.groupby(["features", "cv"])["pearson_mean"].mean().round(3).to_string())
    return pd.DataFrame(rows).drop(columns="projected", errors="ignore"), ridge_agreement(runs, K, N)


def ridge_runs(rows, L, clipped, Q, models, scores, out_dir, jobs, seeds, features, components) -> dict:
    """The whole ridge stage (the paper's settings, and its scatter figure) once per value of `components`
    (the stage's max_components; 0: no limit, the exact path); returns {components: (summary, per_seed,
    predictions)}."""
    if not seeds:
        return {}
    targets = scores.assign(mean_logp=L.mean(axis=1))  # the paper's alphas (1e1..1e9, mean_logp 1e-4..1e4)
    matrices = {name: {"Q": Q, "L": clipped}[name] for name in features}
    mean_loglik = pd.Series(L.mean(axis=1), index=scores.index)

    def stage(limit):
        result = prediction.run_prediction(
            matrices, targets, models["type"].to_numpy(), seeds=range(seeds), n_jobs=jobs, max_components=limit or None
        )
        averaged = prediction.seed_mean_predictions(result[2])
        shown = averaged[(averaged["features"] == features[0]) & (averaged["cv"] == "group")]
        save_figure(plots.prediction_scatter(shown, mean_loglik, "ridge"), out_dir / f"ridge_scatter_{limit}")
        return result

    runs = {}
    for limit in components:
        kept = prediction.components_kept(Q.shape, limit or None)
        path = "exact" if kept is None else f"{kept} principal components"
        step = f"ridge ({path}): {{{', '.join(features)}}} x {{group, kfold}} x {seeds} seeds x 9 targets"
        runs[limit] = timed(rows, step, stage, limit)
    return runs


def ridge_agreement(runs: dict, K: int, N: int) -> pd.DataFrame | None:
    """Each principal-component run against the exact run (when both ran), per target over both feature
    sets and CVs: the share of identical per-seed median alphas, the largest prediction difference over
    the target's std, and the largest differences of the summary's Pearson r (mean over seeds, and of the
    seed-averaged predictions)."""
    exact = [limit for limit in runs if prediction.components_kept((K, N), limit or None) is None]
    if not exact:
        return None
    summary, per_seed, predictions = runs[exact[0]]
    rows = []
    for limit, (other_summary, other_per_seed, other_predictions) in runs.items():
        if limit in exact:
            continue
        same_alpha = (other_per_seed["median_alpha"] == per_seed["median_alpha"]).groupby(per_seed["target"])
        shift = (other_predictions["predicted"] - predictions["predicted"]).abs().groupby(predictions["target"])
        spread = predictions.groupby("target")["true"].std()
        dmean = (other_summary["pearson_mean"] - summary["pearson_mean"]).abs().groupby(summary["target"])
        dpooled = (other_summary["pearson_of_mean"] - summary["pearson_of_mean"]).abs().groupby(summary["target"])
        table = pd.DataFrame(
            {
                "identical_median_alphas": same_alpha.mean().round(3),
                "max_dprediction_over_std": (shift.max() / spread).round(4),
                "max_dpearson_mean": dmean.max().round(4),
                "max_dpearson_of_mean": dpooled.max().round(4),
                "exact_pearson_mean": summary.groupby("target")["pearson_mean"].agg(
                    lambda r: f"{r.min():.3f}-{r.max():.3f}"
                ),
            }
        )
        rows.append(
            table.rename_axis("target").reset_index().assign(components=prediction.components_kept((K, N), limit))
        )
    if not rows:  # the exact run alone: nothing to compare
        return None
    frame = pd.concat(rows, ignore_index=True)
    return frame[["components", *frame.columns[:-1]]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=1, help="BLAS/OpenMP threads per process")
    parser.add_argument(
        "--jobs", type=int, default=2, help="ridge worker processes (1 keeps all work in this process's CPU time)"
    )
    parser.add_argument("--models", type=int, default=1018)
    parser.add_argument("--texts", type=int, default=10000)
    parser.add_argument("--tsne-iter", type=int, default=10000)
    parser.add_argument("--ridge-seeds", type=int, default=5, help="0 leaves the ridge stage out")
    parser.add_argument("--ridge-features", nargs="+", default=["Q", "L"], choices=["Q", "L"])
    parser.add_argument(
        "--ridge-components",
        nargs="+",
        type=int,
        default=[1024],
        help="the ridge stage's max_components, one run each (0: exact); with an exact run, the others are "
        "compared with it",
    )
    parser.add_argument("--only-ridge", action="store_true", help="data, coordinates and the ridge stage only")
    parser.add_argument("--out", help="default: benchmarks/results/analysis.md (K = 1,018), else analysis_K<models>.md")
    args = parser.parse_args()
    args.out = args.out or str(
        Path(__file__).parent / "results" / ("analysis.md" if args.models == 1018 else f"analysis_K{args.models}.md")
    )
    with threadpool_limits(args.cores), tempfile.TemporaryDirectory() as tmp:
        table, agreement = run(
            args.models,
            args.texts,
            args.jobs,
            args.tsne_iter,
            Path(tmp),
            args.ridge_seeds,
            tuple(args.ridge_features),
            tuple(args.ridge_components),
            args.only_ridge,
        )
    header = (
        f"# Analysis benchmark\n\nSynthetic K = {args.models}, N = {args.texts}; {args.cores} BLAS/OpenMP "
        f"thread(s) per process, {args.jobs} ridge process(es); {os.cpu_count()} cores visible "
        f"({platform.machine()}); `python benchmarks/bench_analysis.py --cores {args.cores} "
        f"--jobs {args.jobs} --models {args.models} --texts {args.texts} --tsne-iter {args.tsne_iter} "
        f"--ridge-seeds {args.ridge_seeds} --ridge-features {' '.join(args.ridge_features)} "
        f"--ridge-components {' '.join(map(str, args.ridge_components))}{' --only-ridge' * args.only_ridge}`. "
        "cpu_s includes the ridge worker processes; peak_rss_mb is this process's peak during the step, "
        "workers_peak_rss_mb the workers' summed peak (memory-mapped inputs counted in each); load_1min "
        "is the machine's load average at the end of the step.\n\n"
    )
    text = header + table.to_markdown(index=False) + "\n"
    if agreement is not None:
        text += "\nPrincipal-component ridge against the exact ridge (same data, seeds and folds):\n\n"
        text += agreement.to_markdown(index=False) + "\n"
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
