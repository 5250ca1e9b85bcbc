"""The README's demo numbers are quoted from one named run's findings table, never typed by hand."""

import json
from pathlib import Path

from lmmap.cli import main
from lmmap.commands.readme import BEGIN, END, verify_block

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path) -> Path:
    findings = tmp_path / "results/analysis/findings.md"
    findings.parent.mkdir(parents=True)
    findings.write_text(
        "| finding | value | holds |\n|:--|:--|:--|\n| merges lie between their parents | 6 of 6 | yes |\n"
    )
    Path(f"{findings}.prov.json").write_text(
        json.dumps(
            {
                "created": "2026-11-30T10:00:00+00:00",
                "environment": {
                    "host": "ci",
                    "code": {"lmmap": "0.1.0", "git_commit": "0123456789abcdef", "git_dirty": False},
                },
            }
        )
    )
    return findings


def test_quote_findings_writes_the_named_run_into_the_block_and_checks_it(tmp_path):
    findings = _run(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"# lmmap\n\nbefore\n{BEGIN}\nold numbers\n{END}\nafter\n")
    assert main(["quote-findings", str(findings), "--readme", str(readme), "--check"]) == 1
    assert main(["quote-findings", str(findings), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old numbers" not in text and "| merges lie between their parents | 6 of 6 | yes |" in text
    assert "run of 2026-11-30T10:00:00+00:00, lmmap 0.1.0, git 0123456789ab, host ci" in text
    assert text.startswith("# lmmap\n\nbefore\n") and text.endswith(f"{END}\nafter\n")
    assert main(["quote-findings", str(findings), "--readme", str(readme), "--check"]) == 0
    assert verify_block(text) is None
    assert "edited by hand" in verify_block(text.replace("6 of 6", "7 of 7"))


def test_a_findings_table_without_its_sidecar_is_refused(tmp_path):
    findings = _run(tmp_path)
    Path(f"{findings}.prov.json").unlink()
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n{END}\n")
    assert main(["quote-findings", str(findings), "--readme", str(readme)]) == 2


def test_the_readme_block_is_a_quote_not_typed_numbers():
    assert verify_block((ROOT / "README.md").read_text()) is None
