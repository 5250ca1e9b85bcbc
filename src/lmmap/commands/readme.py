"""`lmmap quote-findings`: the README's demo numbers, quoted from one named run's findings table.

The README never carries numbers typed by hand: its findings block (between BEGIN and END) is this
command's rendering of a run's `results/analysis/findings.md` (the workflow writes it from
`findings.csv`), headed by the run's name read from the table's provenance sidecar (date, lmmap version,
git commit, host) and the sha256 of the quoted table. `--check` fails when the block differs from what
the run would give; `verify_block` (used by the tests) checks without the run that the table in the
block is the one whose sha256 it names, so a hand edit of a number is caught.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

from lmmap.errors import InputError
from lmmap.storage import write_text

BEGIN = "<!-- findings: begin (written by `python -m lmmap quote-findings`; do not edit by hand) -->"
END = "<!-- findings: end -->"
BLOCK = re.compile(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), re.S)
HEAD = re.compile(r"^Quoted from `(?P<path>[^`]+)` \(sha256 (?P<sha>[0-9a-f]{64})\) of the run of ")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "quote-findings",
        help="quote a run's findings table into the README's findings block",
        description="Replace the README's findings block with FINDINGS (a run's results/analysis/findings.md), "
        "named by the run's provenance (date, lmmap version, git commit, host), or with --check "
        "only compare them.",
    )
    p.add_argument(
        "findings",
        metavar="FINDINGS",
        help="the findings.md of the run to quote (its .prov.json sidecar names the run)",
    )
    p.add_argument("--readme", default="README.md", help="the file holding the findings block")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when the block differs")
    p.set_defaults(func=run_quote_findings)


def render(findings: str | Path) -> str:
    """The block's content: a line naming the run, then the findings table as the run wrote it."""
    path = Path(findings)
    if not path.is_file():
        raise InputError(path, "no such findings table (run the workflow first)")
    table = path.read_text(encoding="utf-8")
    sidecar = Path(f"{path}.prov.json")
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise InputError(sidecar, "the findings table has no readable provenance sidecar to name its run") from None
    code = (record.get("environment") or {}).get("code") or {}
    commit = code.get("git_commit")
    name = (
        f"{record.get('created', 'an unknown date')}, lmmap {code.get('lmmap', '?')}"
        + (f", git {commit[:12]}{' (uncommitted changes)' if code.get('git_dirty') else ''}" if commit else "")
        + f", host {(record.get('environment') or {}).get('host', '?')}"
    )
    sha = hashlib.sha256(table.encode("utf-8")).hexdigest()
    return f"Quoted from `results/analysis/findings.md` (sha256 {sha}) of the run of {name}:\n\n{table}"


def replace_block(text: str, content: str, where: str = "README") -> str:
    if not BLOCK.search(text):
        raise InputError(where, f"no findings block ({BEGIN} ... {END})")
    return BLOCK.sub(lambda _: f"{BEGIN}\n{content}{END}", text, count=1)


def verify_block(text: str) -> str | None:
    """None when the README's findings block quotes its table unchanged (the sha256 it names matches the
    table it holds), else what is wrong. A README without a block has nothing to verify."""
    match = BLOCK.search(text)
    if not match or not match.group(1).strip():
        return None  # no block, or nothing quoted into it yet
    head, _, table = match.group(1).partition("\n\n")
    named = HEAD.match(head)
    if not named:
        return "the block does not start with the line naming its run"
    if hashlib.sha256(table.encode("utf-8")).hexdigest() != named["sha"]:
        return "the quoted table differs from the run's (edited by hand?)"
    return None


def run_quote_findings(args: argparse.Namespace) -> int:
    readme = Path(args.readme)
    if not readme.is_file():
        raise InputError(readme, "no such file")
    text = readme.read_text(encoding="utf-8")
    updated = replace_block(text, render(args.findings), str(readme))
    if args.check:
        if updated != text:
            print(f"{readme}: the findings block differs from {args.findings}", file=sys.stderr)
            return 1
        return 0
    write_text(readme, updated)
    return 0
