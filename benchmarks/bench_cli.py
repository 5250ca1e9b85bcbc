"""Start-up time of the command line: `lmmap --help` (target: under 1 s) and each step's own `--help`.

Runs `python -m lmmap ... --help` in fresh interpreters and reports the best and median wall time.
`--src LABEL=DIR` times other source trees too (e.g. an older commit, from `git archive REV src`), one
row each. Writes benchmarks/results/cli.md.

    python benchmarks/bench_cli.py --repeats 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
STEPS = ([], ["neighbours"], ["analyze", "maps"], ["score"])


def wall_times(src: Path, argv: list[str], repeats: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lmmap", *argv, "--help"], env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per command")
    parser.add_argument("--src", nargs="*", default=[], metavar="LABEL=DIR", help="more source trees to time")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/cli.md"), help="Markdown report")
    args = parser.parse_args()
    trees = [("this checkout", ROOT / "src")] + [(s.split("=", 1)[0], Path(s.split("=", 1)[1])) for s in args.src]
    header = "| source | command | best s | median s | under 1 s |\n| --- | --- | ---: | ---: | --- |"
    rows = []
    for label, src in trees:
        for argv in STEPS:
            times = wall_times(src, argv, args.repeats)
            command = " ".join(["lmmap", *argv, "--help"])
            ok = "yes" if min(times) < TARGET_S else "NO"
            rows.append(
                f"| {label} | `{command}` | {min(times):.2f} | {statistics.median(times):.2f} | "
                f"{ok if not argv else '(no target)'} |"
            )
            print(rows[-1], flush=True)
    load = os.getloadavg()[0]
    text = (
        f"# Command-line start-up\n\n`python benchmarks/bench_cli.py --repeats {args.repeats}` on "
        f"{dt.date.today()}, {platform.node()} ({os.cpu_count()} CPUs, load average {load:.1f}, Python "
        f"{platform.python_version()}); target: `lmmap --help` under {TARGET_S:.0f} s. A step's own help "
        "imports that step's module (and what it needs), nothing else.\n\n" + header + "\n" + "\n".join(rows) + "\n"
    )
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
