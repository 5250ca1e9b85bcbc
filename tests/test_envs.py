"""Software environments, checked statically (conda channels are not reachable from CI).

Every rule that runs `python -m lmmap STEP` names a conda environment under envs/, and that
environment lists every third-party package the step imports: the step's handler, the module-level
imports of its command module, and everything the lmmap modules they reach import. One file,
envs/constraints.txt, states the supported versions; pyproject.toml's ranges, every conda
environment and the Makefile agree with it."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from lmmap.cli import build_parser, modules_for

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "envs/constraints.txt"
# import name -> distribution name, where they differ (conda-forge names torch "pytorch")
DISTRIBUTION = {"sklearn": "scikit-learn", "yaml": "pyyaml", "torch": "pytorch", "jinja2": "jinja2"}
CONDA_NAMES = {"torch": ("pytorch", "pytorch-gpu", "pytorch-cpu")}


def rule_commands() -> list[tuple[str, str | None, list[str]]]:
    """(rule, conda environment or None, `lmmap` argv) for every `python -m lmmap` call in rules/."""
    found = []
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        blocks = re.split(r"^\s*rule\b", smk.read_text(), flags=re.M)[1:]
        for block in blocks:
            name = re.match(r"\s*(\w*)\s*:", block).group(1) or re.search(r'name:\s*\n\s*f?"(\w+)', block).group(1)
            env = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            for call in re.findall(r"python -m lmmap ((?:[a-z][\w-]* ?)+)", block):
                found.append((f"{smk.name}:{name}", env and env.group(1), call.split()))
    return found


RULES = rule_commands()


def handler(argv: list[str]):
    """The function `python -m lmmap ARGV` runs, found through the real argument parser."""
    parser = build_parser(modules_for(argv))
    for word in argv:
        actions = [a for a in parser._actions if isinstance(a.choices, dict) and word in a.choices]
        if not actions:
            break
        parser = actions[0].choices[word]
    return parser.get_default("func")


def imported_names(node: ast.AST, package: str, *, into_functions: bool) -> dict[str, str]:
    """{bound name: absolute module or attribute name} of the imports in `node`; without
    `into_functions`, only those that run at import time (not inside a function body)."""
    bound, todo = {}, [node]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            bound |= {alias.asname or alias.name.split(".")[0]: alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = (
                importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                if node.level
                else node.module
            )
            bound |= {alias.asname or alias.name: f"{base}.{alias.name}" for alias in node.names}
            bound[f" {base}"] = base  # the module itself runs even when only names are taken from it
        if into_functions or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo += ast.iter_child_nodes(node)
    return bound


def resolve(dotted: str):
    """The module, or the object inside a module, that an absolute dotted name refers to."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
        return obj
    return None


def called_lmmap_functions(tree: ast.AST, namespace) -> list:
    """The lmmap functions (and methods of lmmap classes) that `tree` names, resolved in `namespace`."""
    found = []
    for node in ast.walk(tree):
        chain = []
        while isinstance(node, ast.Attribute):
            chain.insert(0, node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            continue
        obj = namespace(node.id)
        for attr in chain:
            obj = getattr(obj, attr, None)
        if callable(obj) and hasattr(obj, "__wrapped__"):  # functools.cache and other decorators
            obj = inspect.unwrap(obj)
        if inspect.isclass(obj):
            found += [m for m in vars(obj).values() if inspect.isfunction(m)]
        elif isinstance(obj, (dict, list, tuple)):  # a dispatch table
            found += [f for f in (obj.values() if isinstance(obj, dict) else obj) if inspect.isfunction(f)]
        elif inspect.isfunction(obj):
            found.append(obj)
    return [f for f in found if f.__module__.startswith("lmmap")]


def third_party_imports(func) -> set[str]:
    """Top-level third-party modules that running `func` imports: the imports inside it and inside
    every lmmap function it calls (followed by name), and what their modules import at import time."""
    modules, seen, todo = set(), set(), [func]
    while todo:
        func = todo.pop()
        if func in seen:
            continue
        seen.add(func)
        module = sys.modules[func.__module__]
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
        except OSError:  # generated code (a dataclass's __init__): imports nothing
            continue
        local = imported_names(tree, module.__package__, into_functions=True)
        modules |= set(local.values()) | {module.__name__}

        def lookup(name, local=local, module=module):
            return resolve(local[name]) if name in local else getattr(module, name, None)

        todo += called_lmmap_functions(tree, lookup)
    return import_time_closure(modules)


def module_spec(name: str):
    """The spec of module `name`, or None where `name` is an attribute (`from lmmap.x import f`)."""
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None


def import_time_closure(names: set[str]) -> set[str]:
    """Third-party top-level modules imported when the modules `names` are imported."""
    seen, external = set(), set()
    todo = set(names)
    while todo:
        name = todo.pop()
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__":
            continue
        if top != "lmmap":
            external.add(top)
            continue
        parts = name.split(".")
        todo |= {".".join(parts[:i]) for i in range(1, len(parts))} - seen  # parent packages run first
        spec = module_spec(name) if name not in seen else None
        seen.add(name)
        if spec and spec.origin and spec.origin.endswith(".py"):
            package = name if spec.submodule_search_locations is not None else name.rpartition(".")[0]
            tree = ast.parse(Path(spec.origin).read_text())
            todo |= set(imported_names(tree, package, into_functions=False).values()) - seen
    return external


def conda_packages(env_file: Path) -> dict[str, str]:
    """{package: pinned version} of a conda environment file, its pip section included."""
    env = yaml.safe_load(env_file.read_text())
    specs = []
    for dep in env["dependencies"]:
        specs += dep["pip"] if isinstance(dep, dict) else [dep]
    pins = {}
    for spec in specs:
        name, _, version = re.match(r"([\w.-]+)\s*(==?)?\s*(\S*)", spec).groups()
        pins[canonical(name)] = version
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"{CONSTRAINTS.name}: {line}: pin one version"
            pins[canonical(requirement.name)] = spec.version
    return pins


def test_rules_were_found():
    assert len(RULES) >= 20 and {"score", "merge", "analyze"} <= {argv[0] for _, _, argv in RULES}


@pytest.mark.parametrize(("rule", "env", "argv"), RULES, ids=[f"{r}-{' '.join(a)}" for r, _, a in RULES])
def test_each_rule_environment_has_what_its_step_imports(rule, env, argv):
    assert env, f"{rule}: `python -m lmmap {' '.join(argv)}` has no conda: environment"
    func = handler(argv)
    assert func is not None, f"{rule}: no lmmap step {argv}"
    listed = conda_packages(ROOT / "rules" / env)
    missing = []
    for module in sorted(third_party_imports(func)):
        names = CONDA_NAMES.get(module, (DISTRIBUTION.get(module, module),))
        if not any(canonical(name) in listed for name in names):
            missing.append(module)
    assert not missing, f"{rule} ({env}): `lmmap {' '.join(argv)}` imports {missing}, which the environment lacks"


def test_the_import_scan_sees_function_level_imports():
    """validate-kl imports torch inside functions only; the scan must still find it."""
    assert "torch" in third_party_imports(handler(["analyze", "validate-kl"]))
    assert "torch" not in third_party_imports(handler(["merge"]))


@pytest.mark.parametrize("env_file", sorted((ROOT / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_conda_environments_pin_the_supported_versions(env_file):
    env = yaml.safe_load(env_file.read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"], f"{env_file.name}: conda-forge only"
    supported = constraints()
    for name, version in conda_packages(env_file).items():
        if name in ("pip", "python"):
            continue
        key = "torch" if name.startswith("pytorch") else name
        assert key in supported, f"{env_file.name}: {name} is not in {CONSTRAINTS.name}"
        assert version == supported[key], f"{env_file.name}: {name} {version!r}, supported {supported[key]}"


def test_every_environment_has_the_supported_python():
    import tomllib

    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    versions = {p.name: conda_packages(p)["python"] for p in (ROOT / "envs").glob("*.yaml")}
    assert len(set(versions.values())) == 1, versions
    assert all(Requirement(f"python{requires}").specifier.contains(v) for v in versions.values()), versions


def test_pyproject_accepts_the_supported_versions():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    supported = constraints()
    requirements = [Requirement(r) for r in project["dependencies"]]
    requirements += [
        Requirement(r) for extra in ("gguf", "slurm", "test") for r in project["optional-dependencies"][extra]
    ]
    for requirement in requirements:
        name = canonical(requirement.name)
        assert name in supported, f"pyproject.toml: {name} has no supported version in {CONSTRAINTS.name}"
        assert requirement.specifier.contains(supported[name]), (
            f"pyproject.toml: {requirement} excludes {supported[name]}"
        )


def test_makefile_installs_with_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs and all("-c envs/constraints.txt" in line or "==" in line for line in installs), installs
    for pinned in re.findall(r"([\w-]+)==([\w.]+)", makefile):
        assert constraints().get(canonical(pinned[0])) == pinned[1], (
            f"Makefile pins {pinned}, {CONSTRAINTS.name} differs"
        )
