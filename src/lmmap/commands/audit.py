"""`lmmap audit`: trace result files back to their raw inputs and re-check every recorded hash."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmmap.audit import audit, load_config, summary_html
from lmmap.commands import Step
from lmmap.storage import sha256_file, write_text


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "audit",
        help="check that result files still match everything they were made from",
        description="Walk the provenance sidecars of RESULT files back to the raw inputs, re-hash every "
        "file, and report each one that is missing, changed since it was used, made from a "
        "different text set or code version, or made with config values that differ from "
        "the given config. Exit status 1 when anything is wrong (warnings do not count "
        "unless --strict).",
    )
    p.add_argument("results", nargs="+", metavar="RESULT", help="result files (each with a .prov.json sidecar)")
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="config YAML file to compare recorded parameters with (repeat it: later files "
        "override earlier ones, as in Snakemake)",
    )
    p.add_argument("--config-json", help="config as JSON, applied over --config files")
    p.add_argument("--strict", action="store_true", help="warnings (e.g. mixed git commits) fail too")
    p.add_argument("--out", help="JSON report to write (with its own provenance sidecar)")
    p.add_argument(
        "--summary",
        metavar="HTML",
        help="also write a summary page for people (with its own provenance sidecar): outcome, "
        "findings, raw inputs and models as HTML tables",
    )
    p.set_defaults(func=run_audit)


def run_audit(args: argparse.Namespace) -> int:
    inputs = {**{r: r for r in args.results if Path(r).is_file()}, **{f"config:{p}": p for p in args.config}}
    step = Step("audit", args, inputs)
    report = audit(args.results, config=load_config(args.config, args.config_json))
    report["config_files"] = [{"path": p, "sha256": sha256_file(p)} for p in args.config]
    failed = not report["ok"] or (args.strict and report["n_warnings"] > 0)
    for finding in report["findings"]:
        print(f"{finding['severity']}: {finding['kind']}: {finding['path']}: {finding['message']}", file=sys.stderr)
    print(
        f"audit of {len(args.results)} result(s): {report['n_errors']} error(s), {report['n_warnings']} "
        f"warning(s), {len(report['raw_inputs'])} raw input(s), {len(report['models'])} model(s)"
        + (f"; trust_remote_code used by {report['trust_remote_code']}" if report["trust_remote_code"] else ""),
        file=sys.stderr,
    )
    if args.out:
        step.json(args.out, report, extra={"ok": not failed})
    if args.summary:
        write_text(args.summary, summary_html(report, failed))
        step.record(args.summary, {"ok": not failed})
    return 1 if failed else 0
