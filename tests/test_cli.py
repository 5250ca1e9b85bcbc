"""The command line: `lmmap --help` lists every step without importing them, with their own summaries."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from lmmap.cli import COMMANDS, SUMMARIES, build_parser, modules_for

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("numpy", "pandas", "torch", "transformers", "matplotlib", "sklearn", "scipy", "plotly", "seaborn")


def step_helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help for choice in action._choices_actions}


def test_summaries_are_the_steps_own_help():
    """SUMMARIES (what `lmmap --help` shows) match the help each command module registers."""
    registered = step_helps(build_parser(list(COMMANDS)))
    assert registered == SUMMARIES
    assert sorted(step for steps in COMMANDS.values() for step in steps) == sorted(SUMMARIES)


def test_help_imports_no_command_module():
    code = (
        "import sys, json; from lmmap.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('lmmap.commands.') "
        f"or m.split('.')[0] in {HEAVY!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    assert json.loads(result.stdout.splitlines()[-1]) == []
    assert "neighbours" in result.stdout and SUMMARIES["neighbours"].split()[0] in result.stdout


def test_a_step_imports_only_its_module():
    assert modules_for(["--log-level", "DEBUG", "neighbours", "m", "--map", "x"]) == ["lmmap.commands.explore"]
    assert modules_for(["--help"]) == []


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every parser under `parser` (subcommands and their subcommands), with its command path."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))


def test_every_subcommand_and_option_has_help_text():
    from lmmap.cli import HelpFormatter

    parsers = list(walk(build_parser(list(COMMANDS))))
    assert len(parsers) > len(SUMMARIES)  # the analyses' own subcommands included
    missing = []
    for path, parser in parsers:
        assert parser.formatter_class is HelpFormatter, path  # one help formatter
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [(*path, c.dest) for c in action._choices_actions if not (c.help or "").strip()]
            elif action.help is not argparse.SUPPRESS and not (action.help or "").strip():
                missing.append((*path, action.dest))
    assert not missing, missing


def test_defaults_are_printed_once():
    """Each option's default at most once, and never a default that says nothing."""
    for path, parser in walk(build_parser(list(COMMANDS))):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.help and action.help is not argparse.SUPPRESS:
                text = formatter._expand_help(action)
                assert text.count("default") <= 1, (path, action.dest, text)
                assert "(default: None)" not in text and "(default: False)" not in text, (path, action.dest)


def test_the_version_is_written_once(capsys):
    """pyproject.toml takes the version from the package, which the workflow runs uninstalled."""
    import tomllib

    from lmmap import __version__
    from lmmap.cli import main

    project = tomllib.loads((SRC.parent / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lmmap.__version__"}
    try:
        main(["--version"])
    except SystemExit:
        pass
    assert capsys.readouterr().out.strip() == f"lmmap {__version__}"
