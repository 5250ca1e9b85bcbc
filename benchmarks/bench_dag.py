"""DAG build and dry-run time for re-scoring the paper's 1,018 models (target: under 30 s).

Runs `snakemake -n` on config/paper/config.yaml with scoring mode on (paper.enabled: false), once
without a profile and once with profiles/slurm (job groups, size-derived resources, downloads), in a
temporary working directory holding a stand-in text set. Writes benchmarks/results/dag.md.

    python benchmarks/bench_dag.py --repeats 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "config" / "paper"
TARGET_S = 30
SCENARIOS = {"no profile": [], "profiles/slurm": ["--profile", str(ROOT / "profiles" / "slurm")]}


def write_workdir(workdir: Path, n_texts: int) -> None:
    """Scoring-mode overrides and a stand-in text set (a dry run never reads the texts)."""
    texts = workdir / "texts.jsonl"
    with open(texts, "w", encoding="utf-8") as fh:
        for i in range(n_texts):
            fh.write(json.dumps({"text": f"reference text {i} " * 20, "pile_set_name": "Pile-CC"}) + "\n")
    overrides = {
        "models": str(PAPER / "models.tsv"),
        "paper": {"enabled": False},
        "texts": {"source": "jsonl", "path": str(texts), "n": None},
        "analysis": {"prediction": {"group_by": "family"}},
    }  # the sheet's 29-class model_type
    (workdir / "scoring.yaml").write_text(json.dumps(overrides))


def child_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def dry_run(workdir: Path, extra: list[str]) -> tuple[float, float, dict[str, int]]:
    """Wall and CPU time of one dry run, and its job counts per rule."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "-n",
        "--quiet",
        "rules",
        "--directory",
        str(workdir),
        "--configfile",
        str(ROOT / "config" / "config.yaml"),
        str(PAPER / "config.yaml"),
        str(workdir / "scoring.yaml"),
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMMAP_")}
    started, cpu_started = time.perf_counter(), child_cpu_s()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    elapsed, cpu = time.perf_counter() - started, child_cpu_s() - cpu_started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    counts = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", result.stdout + result.stderr, re.MULTILINE)}
    return elapsed, cpu, counts


def report(rows: list[dict], repeats: int) -> str:
    lines = [
        "# DAG build + dry run: the paper's 1,018 models",
        "",
        f"`python benchmarks/bench_dag.py --repeats {repeats}` on {dt.date.today()}, {platform.node()} "
        f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end, Python "
        f"{platform.python_version()}); target < {TARGET_S} s. CPU s is the dry run's own CPU time: on a "
        "busy machine the wall time is longer by the wait for a core.",
        "",
        "| scenario | jobs | score_model | download_model | best wall s | best CPU s | all runs wall s | under target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        counts = row["counts"]
        lines.append(
            f"| {row['scenario']} | {counts.get('total', 0)} | {counts.get('score_model', 0)} | "
            f"{counts.get('download_model', 0)} | {min(row['times']):.1f} | {min(row['cpu']):.1f} | "
            f"{', '.join(f'{t:.1f}' for t in row['times'])} | "
            f"{'yes' if min(row['times']) < TARGET_S else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--n-texts", type=int, default=10_000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dag.md"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write_workdir(workdir, args.n_texts)
        for scenario, extra in SCENARIOS.items():
            times, cpu, counts = [], [], {}
            for _ in range(args.repeats):
                elapsed, cpu_s, counts = dry_run(workdir, extra)
                times.append(elapsed)
                cpu.append(cpu_s)
            rows.append({"scenario": scenario, "times": times, "cpu": cpu, "counts": counts})
            print(f"{scenario}: {counts.get('total')} jobs, best {min(times):.1f} s", file=sys.stderr)
    text = report(rows, args.repeats)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
