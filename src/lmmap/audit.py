"""Auditing results: walk the provenance sidecars back to the raw inputs and re-check every hash.

A result's sidecar records the sha256 of the result and of each input; inputs that have a sidecar of
their own are followed in turn, down to the raw inputs (text source, model sheet, model sources). The
audit reports, as errors:
- `missing`: a result or input that no longer exists (or a local model source that is gone);
- `changed`: a file whose sha256 differs from the one recorded when it was made or used: results,
  inputs, the model weight files digested at load time, and the sidecars themselves (each records
  its own digest, and each input's sidecar digest is recorded by the step that used it);
- `no-provenance`: a result without a sidecar (nothing to trace it back with);
- `text-set`: files of one chain that were made from different text sets;
- `code-version`: files made by different lmmap versions;
- `config`: a config value that differs from the one a file was made with (when a config is given);
and, as warnings, files made at different git commits or from uncommitted code, models left out of
a merge, and sidecars without their own digest (`unverifiable`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from pathlib import Path

import yaml

from lmmap.errors import InputError
from lmmap.provenance import record_digest, sidecar_path
from lmmap.storage import read_json, sha256_file

# The config section each workflow step reads its values from: a parameter recorded in a sidecar
# is compared with the value of the same name in that section (rules pass them under that name).
STEP_CONFIG = {
    "demo-corpus": "demo_corpus",
    "prepare-texts": "texts",
    "score": "scoring",
    "coordinates": "coordinates",
    "embed": "map",
    "analyze maps": "map",
    "interactive-map": "map",
    "analyze dimensionality": "pca",
    "merge": "merge",
}
MODEL_FIELDS = (
    "source",
    "source_kind",
    "revision_requested",
    "revision_resolved",
    "gguf_file",
    "dtype",
    "trust_remote_code",
)


@dataclasses.dataclass(frozen=True)
class Finding:
    severity: str  # "error" or "warning"
    kind: str
    path: str  # "*" for a finding about the audited files as a whole
    message: str
    recorded_by: str | None = None  # the file whose sidecar holds the record this finding contradicts


@dataclasses.dataclass
class _Walk:
    """State of one audit: each sidecar is read and checked once, however many results share it."""

    config: dict | None
    findings: list[Finding] = dataclasses.field(default_factory=list)
    records: dict[str, dict] = dataclasses.field(default_factory=dict)  # path -> sidecar
    raw_inputs: dict[str, dict] = dataclasses.field(default_factory=dict)
    hashes: dict[str, str | None] = dataclasses.field(default_factory=dict)

    def add(self, severity: str, kind: str, path: str, message: str, recorded_by: str | None = None):
        self.findings.append(Finding(severity, kind, path, message, recorded_by))

    def sha256(self, path: str) -> str | None:
        """The file's current sha256 (None if it does not exist), computed once per audit."""
        if path not in self.hashes:
            self.hashes[path] = sha256_file(path) if Path(path).is_file() else None
        return self.hashes[path]


def audit(results: Iterable[str | Path], config: dict | None = None) -> dict:
    """Audit `results` (and everything they were made from); return the JSON-ready report."""
    walk = _Walk(config=config)
    chains = {}
    for result in map(str, results):
        chains[result] = _visit(walk, result, recorded_sha=None, recorded_by=None)
        _check_text_sets(walk, result, chains[result])
    _check_code(walk)
    errors = [f for f in walk.findings if f.severity == "error"]
    return {
        "ok": not errors,
        "n_errors": len(errors),
        "n_warnings": len(walk.findings) - len(errors),
        "results": [
            {
                "path": r,
                "files_in_chain": len(chains[r]),
                "ok": not any({f.path, f.recorded_by} & (chains[r] | {r, "*"}) for f in errors),
            }
            for r in chains
        ],
        "findings": [dataclasses.asdict(f) for f in walk.findings],
        "raw_inputs": sorted(walk.raw_inputs.values(), key=lambda item: item["path"]),
        "models": _models(walk),
        "trust_remote_code": sorted(m["model_id"] for m in _models(walk) if m.get("trust_remote_code")),
        "text_sets": sorted({r["text_set_sha256"] for r in walk.records.values() if r.get("text_set_sha256")}),
        "code_versions": _distinct(r.get("environment", {}).get("code") for r in walk.records.values()),
    }


def _visit(
    walk: _Walk, path: str, recorded_sha: str | None, recorded_by: str | None, recorded_sidecar_sha: str | None = None
) -> set[str]:
    """Check one file (and its sidecar) against what `recorded_by` recorded; follow its sidecar.
    Returns the paths of every file with a sidecar in its chain (itself included)."""
    current = walk.sha256(path)
    sidecar = str(sidecar_path(path))
    if recorded_sidecar_sha and walk.sha256(sidecar) not in (None, recorded_sidecar_sha):
        walk.add("error", "changed", sidecar, f"provenance sidecar edited since {recorded_by} used {path}", recorded_by)
    if current is None:
        walk.add(
            "error",
            "missing",
            path,
            "does not exist" + (f" (an input of {recorded_by})" if recorded_by else ""),
            recorded_by,
        )
    elif recorded_sha and current != recorded_sha:
        walk.add(
            "error",
            "changed",
            path,
            f"changed since {recorded_by} used it (sha256 {current[:12]}…, recorded {recorded_sha[:12]}…)",
            recorded_by,
        )
    if not sidecar_path(path).is_file():
        if recorded_by is None:
            walk.add("error", "no-provenance", path, f"has no provenance sidecar {sidecar_path(path).name}")
        else:
            walk.raw_inputs.setdefault(
                path, {"path": path, "sha256": current, "recorded_sha256": recorded_sha, "used_by": recorded_by}
            )
        return set()
    if path in walk.records:
        return _chain_of(walk, path)
    record = walk.records[path] = read_record(sidecar_path(path))
    if "record_sha256" not in record:
        walk.add(
            "warning",
            "unverifiable",
            sidecar,
            "provenance sidecar has no record_sha256 (made by an older "
            "lmmap, or the field was removed): edits to it cannot be detected",
            path,
        )
    elif record["record_sha256"] != record_digest(record):
        walk.add(
            "error",
            "changed",
            sidecar,
            "provenance sidecar edited after it was written (its content no longer matches its record_sha256)",
            path,
        )
    if current is not None and current != record.get("output", {}).get("sha256"):
        walk.add("error", "changed", path, "changed since it was made (its sha256 differs from its sidecar's)", path)
    _check_config(walk, path, record)
    _check_model_source(walk, path, record)
    missing = record.get("missing_models") or []
    if missing:
        walk.add("warning", "missing-models", path, f"made without {len(missing)} model(s): {missing}")
    for item in record.get("inputs", {}).values():
        if item.get("sha256") is None and not sidecar_path(item["path"]).is_file():
            continue  # a directory or optional input: nothing was hashed, nothing to compare
        _visit(walk, item["path"], item.get("sha256"), path, item.get("sidecar_sha256"))
    return _chain_of(walk, path)


def read_record(path: str | Path) -> dict:
    """A sidecar, checked to have the shape the audit walks (a clear error, not a traceback)."""
    record = read_json(path)
    problem = None
    if not isinstance(record, dict):
        problem = "not a JSON object"
    elif not isinstance(record.get("output", {}), dict) or not isinstance(record.get("inputs", {}), dict):
        problem = "'output' and 'inputs' must be objects"
    elif not all(
        isinstance(item, dict) and isinstance(item.get("path"), str) for item in record.get("inputs", {}).values()
    ):
        problem = "every input must be an object with a 'path'"
    elif not isinstance(record.get("params") or {}, dict) or not isinstance(record.get("model") or {}, dict):
        problem = "'params' and 'model' must be objects"
    elif not isinstance(record.get("environment") or {}, dict):
        problem = "'environment' must be an object"
    if problem:
        raise InputError(path, f"not a provenance record: {problem}")
    return record


def _chain_of(walk: _Walk, path: str) -> set[str]:
    chain, todo = set(), [path]
    while todo:
        node = todo.pop()
        if node in chain or node not in walk.records:
            continue
        chain.add(node)
        todo += [item["path"] for item in walk.records[node].get("inputs", {}).values()]
    return chain


def _check_text_sets(walk: _Walk, result: str, chain: set[str]) -> None:
    """The files a result was made from must all come from one text set."""
    text_sets = {}
    for node in sorted(chain):
        sha = walk.records[node].get("text_set_sha256")
        if sha:
            text_sets.setdefault(sha, []).append(node)
    if len(text_sets) > 1:
        listing = "; ".join(f"{sha[:12]}…: {', '.join(nodes)}" for sha, nodes in text_sets.items())
        walk.add("error", "text-set", result, f"made from {len(text_sets)} different text sets ({listing})")


def _check_code(walk: _Walk) -> None:
    """All files audited must come from one lmmap version; several git commits or uncommitted code
    are worth knowing (cached files survive commits that may not touch their step) but not errors."""
    codes = {node: record.get("environment", {}).get("code") or {} for node, record in walk.records.items()}
    by_version, by_commit = {}, {}
    for node, code in sorted(codes.items()):
        by_version.setdefault(str(code.get("lmmap")), []).append(node)
        if code.get("git_commit"):
            by_commit.setdefault(code["git_commit"][:12], []).append(node)
    if len(by_version) > 1:
        listing = "; ".join(f"{version}: {', '.join(nodes)}" for version, nodes in by_version.items())
        walk.add("error", "code-version", "*", f"files made by {len(by_version)} lmmap versions ({listing})")
    if len(by_commit) > 1:
        counts = ", ".join(f"{commit}: {len(nodes)} file(s)" for commit, nodes in by_commit.items())
        walk.add("warning", "code-version", "*", f"files made at {len(by_commit)} git commits ({counts})")
    dirty = sorted(node for node, code in codes.items() if code.get("git_dirty"))
    if dirty:
        shown = ", ".join(dirty[:5]) + (", …" if len(dirty) > 5 else "")
        walk.add("warning", "code-version", "*", f"{len(dirty)} file(s) made from uncommitted code ({shown})")


def _check_config(walk: _Walk, path: str, record: dict) -> None:
    """Each parameter a step recorded that the config's section for that step still sets must be equal."""
    section = STEP_CONFIG.get(record.get("step"))
    if walk.config is None or section is None:
        return
    current = walk.config.get(section) or {}
    if not isinstance(current, dict):
        raise InputError("config", "must be a mapping", field=section)
    for name, used in (record.get("params") or {}).items():
        if name in current and _comparable(current[name]) and not _same(current[name], used):
            walk.add(
                "error",
                "config",
                path,
                f"config value {section}.{name} is now {current[name]!r}, but this file was made with {used!r}",
                path,
            )


def _comparable(value: object) -> bool:
    scalar = (str, int, float, bool, type(None))
    return isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))


def _same(a: object, b: object) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return a == b


def _check_model_source(walk: _Walk, path: str, record: dict) -> None:
    """A local model source must still exist, and every weight file digested when the model was
    loaded (local directory, GGUF file and its de-quantized copy, or hub cache snapshot) must still
    have that digest."""
    model = _model_of(record)
    if not model:
        return
    if model.get("source_kind") == "local" and not Path(str(model.get("source", ""))).exists():
        walk.add(
            "error",
            "missing",
            str(model.get("source", "")),
            f"model source of '{model.get('model_id')}' (used by {path}) does not exist",
            path,
        )
        return
    for weights in (model.get("weights"), model.get("gguf_weights")):
        if not isinstance(weights, dict) or not isinstance(weights.get("files"), dict):
            continue
        for name, recorded in weights["files"].items():
            file = str(Path(str(weights.get("directory", ""))) / name)
            current = walk.sha256(file)
            if current is None:
                walk.add(
                    "error",
                    "missing",
                    file,
                    f"weights of '{model.get('model_id')}' (used by {path}) no longer exist",
                    path,
                )
            elif current != recorded:
                walk.add(
                    "error",
                    "changed",
                    file,
                    f"weights of '{model.get('model_id')}' changed since {path} "
                    f"was scored (sha256 {current[:12]}…, recorded {str(recorded)[:12]}…)",
                    path,
                )


def _model_of(record: dict) -> dict | None:
    """The loaded-model record of a score file's sidecar (None for other steps)."""
    model = record.get("model")
    return model if isinstance(model, dict) else None


def _models(walk: _Walk) -> list[dict]:
    models = {}
    for path, record in walk.records.items():
        model = _model_of(record)
        if model:
            models[model.get("model_id")] = {
                "model_id": model.get("model_id"),
                "scores": path,
                **{k: model.get(k) for k in MODEL_FIELDS},
            }
    return sorted(models.values(), key=lambda m: str(m["model_id"]))


def _distinct(items: Iterable[dict | None]) -> list[dict]:
    seen = []
    for item in items:
        if item and item not in seen:
            seen.append(item)
    return seen


# The command's inputs and its page for people


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
