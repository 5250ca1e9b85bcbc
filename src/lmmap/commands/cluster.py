"""`lmmap cluster-check`: the SLURM pre-flight check of a planned run, without submitting anything."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from lmmap.cluster import ClusterError, read_partitions, status_command

PROFILE = Path(__file__).resolve().parents[3] / "profiles" / "slurm"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "cluster-check",
        help="check that every job of a planned SLURM run fits its partition",
        description="Print the SLURM partitions (node CPUs, memory, GPUs, time limit) and the command that "
        "will poll job states, then build the run's jobs as `snakemake SNAKEMAKE_ARG...` would "
        "(default: --profile profiles/slurm; put `--` before them) and compare each job's request with its partition. "
        "Nothing is submitted. Exit status 1, with one line per job that cannot fit, otherwise 0.",
    )
    p.add_argument(
        "snakemake_args",
        nargs=argparse.REMAINDER,
        metavar="SNAKEMAKE_ARG",
        help="the arguments of the planned run, e.g. --configfile config/config.yaml my.yaml",
    )
    p.set_defaults(func=run_cluster_check)


def snakemake_command(args: list[str]) -> list[str]:
    """The planned run as a pre-flight: on the SLURM executor, so that the workflow's onstart checks."""
    args = args[1:] if args[:1] == ["--"] else args
    if any(a in ("-n", "--dry-run", "--dryrun") for a in args):
        raise ClusterError("leave out -n: the check builds the jobs itself and submits nothing")
    profile = [] if any(a.startswith("--profile") for a in args) else ["--profile", str(PROFILE)]
    return [sys.executable, "-m", "snakemake", *profile, *args, "--executor", "slurm"]


def run_cluster_check(args: argparse.Namespace) -> int:
    try:
        for partition in read_partitions().values():
            print(partition.describe())
        print(f"job states polled with: {status_command(os.environ.get('LMMAP_SLURM_STATUS_COMMAND', '').strip())}")
        cmd = snakemake_command(args.snakemake_args)
    except ClusterError as exc:
        print(f"lmmap cluster-check: error: {exc}", file=sys.stderr)
        return 1
    result = subprocess.run(cmd, env=dict(os.environ, LMMAP_SLURM_PREFLIGHT="only"), capture_output=True, text=True)
    log = result.stdout + result.stderr
    lines = [line.strip() for line in log.splitlines() if "lmmap pre-flight" in line]
    print("\n".join(lines) if lines else log[-3000:])
    return 0 if result.returncode == 0 and lines else 1
