"""One home per default: the config schema. The rules pass every config value to the steps, so an
option the workflow always passes has no default of its own, and no rule falls back on one."""

import argparse
import re
from pathlib import Path

import yaml

from lmmap.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = sorted((ROOT / "rules").glob("*.smk"))
STEP_CALL = re.compile(r'"python -m lmmap ([a-z-]+)(?: ([a-z][a-z-]*))?(.*?)\{log', re.S)
# an option followed by a value the rule fills in: `--max-models {params.max_models}`
PASSED_OPTION = re.compile(r"(--[a-z][a-z0-9-]*) \{(?!threads)")  # Snakemake's {threads}: no setting


def parsers() -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every step's parser by its command path, ("analyze", "maps") included."""
    found = {}

    def walk(parser, path):
        found[path] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))

    walk(build_parser(list(COMMANDS)), ())
    return found


def options_the_rules_pass() -> dict[tuple[str, ...], set[str]]:
    """{command path: options every run of a rule passes}, read from the rules' shell commands."""
    steps = parsers()
    passed = {}
    for path in RULE_FILES:
        for step, sub, rest in STEP_CALL.findall(path.read_text()):
            command = (step, sub) if (step, sub) in steps else (step,)
            passed.setdefault(command, set()).update(PASSED_OPTION.findall(rest if sub in command else f" {sub}{rest}"))
    return passed


def schema_defaults(schema: dict, key: str = "") -> dict[str, object]:
    """{dotted config key: default} of every setting (not object) with a default in the schema."""
    defaults = {}
    for name, sub in schema.get("properties", {}).items():
        dotted = f"{key}.{name}" if key else name
        if "default" in sub and sub.get("type") != "object":
            defaults[dotted] = sub["default"]
        defaults.update(schema_defaults(sub, dotted))
    if isinstance(schema.get("items"), dict):
        defaults.update(schema_defaults(schema["items"], key))
    return defaults


def own_default(action: argparse.Action) -> bool:
    return not action.required and action.default not in (None, False, [], argparse.SUPPRESS)


def test_the_rules_are_read_and_every_step_they_run_is_found():
    passed = options_the_rules_pass()
    assert ("analyze", "validate-kl") in passed and ("coordinates",) in passed
    assert "--max-models" in passed[("analyze", "validate-kl")]
    assert "--clip-quantile" in passed[("coordinates",)]
    assert all(command in parsers() for command in passed), sorted(passed)


def test_an_option_the_workflow_always_passes_has_no_default_of_its_own():
    steps = parsers()
    second = []
    for command, options in options_the_rules_pass().items():
        actions = {opt: a for a in steps[command]._actions for opt in a.option_strings}
        assert options <= set(actions), (command, options - set(actions))
        second += [(*command, opt, actions[opt].default) for opt in sorted(options) if own_default(actions[opt])]
    assert not second, f"defaults beside the config schema's: {second}"


# The zoo's recipes (families, fine-tunes, merges, ...) are handed whole to lmmap.zoo, which documents them.
READ_BY_THE_PACKAGE = ("zoo",)


def optional_settings_without_default(schema: dict, key: str = "") -> list[str]:
    """Dotted keys of the settings a config may leave out (neither required, nor required once the
    section is enabled) for which the schema gives no default, nor names the setting it defaults to."""
    required = set(schema.get("required", [])) | set(schema.get("then", {}).get("required", []))
    missing = []
    for name, sub in schema.get("properties", {}).items():
        dotted = f"{key}.{name}" if key else name
        if dotted in READ_BY_THE_PACKAGE:
            continue
        if sub.get("type") == "object" or isinstance(sub.get("items"), dict) and "properties" in sub["items"]:
            missing += optional_settings_without_default(sub.get("items", sub), dotted)
        elif name not in required and "default" not in sub and "(default: " not in sub.get("description", ""):
            missing.append(dotted)
    return missing


def test_every_optional_setting_has_its_default_in_the_schema():
    schema = yaml.safe_load((ROOT / "config/schemas/config.schema.yaml").read_text())
    assert schema_defaults(schema)["analysis.kl_validation.max_models"] == 4
    assert not optional_settings_without_default(schema)


def test_the_rules_fall_back_on_no_default():
    """Snakemake fills the schema's defaults in before any rule reads the config."""
    fallbacks = [
        f"{path.name}:{number}: {line.strip()}"
        for path in [*RULE_FILES, ROOT / "Snakefile"]
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"(?<!environ)\.get\(", line)
    ]
    assert not fallbacks, fallbacks
