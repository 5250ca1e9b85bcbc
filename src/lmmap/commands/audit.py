"""`lmmap audit`: trace result files back to their raw inputs and re-check every recorded hash."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from lmmap.audit import audit
from lmmap.commands import Step
from lmmap.errors import InputError
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


def load_config(files: list[str], overrides: str | None) -> dict | None:
    """The config the workflow would see: files merged in order, then the JSON overrides."""
    if not files and overrides is None:
        return None
    config: dict = {}
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                loaded = yaml.safe_load(fh) or {}
        except FileNotFoundError:
            raise InputError(path, "config file does not exist") from None
        except yaml.YAMLError as exc:
            raise InputError(path, f"not valid YAML ({exc})") from None
        if not isinstance(loaded, dict):
            raise InputError(path, "a config file must be a mapping")
        _update(config, loaded)
    if overrides is not None:
        try:
            parsed = json.loads(overrides)
        except json.JSONDecodeError as exc:
            raise InputError("--config-json", f"not valid JSON ({exc.msg} at character {exc.pos})") from None
        if not isinstance(parsed, dict):
            raise InputError("--config-json", "must be a JSON object")
        _update(config, parsed)
    return config


def _update(base: dict, new: dict) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _update(base[key], value)
        else:
            base[key] = value


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


def summary_html(report: dict, failed: bool) -> str:
    """The audit report as a page people read: the outcome, then findings, raw inputs, models and
    results as tables (the JSON keeps everything)."""
    import html

    import pandas as pd

    from lmmap.analysis.outputs import html_table

    def section(title: str, rows: list[dict], columns: list[str] | None = None) -> str:
        if not rows:
            return f"<h3>{html.escape(title)}</h3>\n<p>none</p>\n"
        columns = columns or list(dict.fromkeys(k for row in rows for k in row))
        frame = pd.DataFrame(rows).reindex(columns=columns)
        frame = frame.map(lambda v: json.dumps(v) if isinstance(v, (dict, list)) else "" if v is None else v)
        return f"<h3>{html.escape(title)} ({len(rows)})</h3>\n" + html_table(frame)

    head = (
        f"<h2>Audit {'FAILED' if failed else 'passed'}: {report['n_errors']} error(s), "
        f"{report['n_warnings']} warning(s)</h2>\n<p>{len(report['results'])} result(s) traced back to "
        f"{len(report['raw_inputs'])} raw input(s); {len(report['models'])} model(s); "
        f"{len(report['text_sets'])} text set(s); {len(report['code_versions'])} code version(s)."
        + (
            " Models that ran their own code (trust_remote_code): "
            f"{html.escape(', '.join(report['trust_remote_code']))}."
            if report["trust_remote_code"]
            else ""
        )
        + "</p>\n"
    )
    return "".join(
        [
            '<!DOCTYPE html>\n<meta charset="utf-8">\n<title>Audit summary</title>\n',
            head,
            section("Findings", report["findings"], ["severity", "kind", "path", "message", "recorded_by"]),
            section("Raw inputs", report["raw_inputs"]),
            section("Models", report["models"]),
            section("Results", report["results"], ["path", "files_in_chain", "ok"]),
            section("Config files", report.get("config_files", []), ["path", "sha256"]),
        ]
    )
