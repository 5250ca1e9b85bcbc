"""Bring your own benchmark results: lm-evaluation-harness results files into the scores table.

lm-evaluation-harness (`lm_eval --output_path DIR`) writes one `results_<timestamp>.json` per run under
`DIR/<model name, sanitised>/`; each holds `results: {task: {"acc,none": 0.61, "acc_norm,none": 0.64,
"acc_stderr,none": ..., "alias": ...}}`, the model's name (`model_name`, or `pretrained=...` in
`config.model_args`) and, for task groups, `group_subtasks: {group: [subtask, ...]}`.

`scores_table` turns any number of such files into `results/benchmarks/scores.csv` (docs/architecture.md):
`model_id`, one column per task on 0-100 (the first of the preferred metrics the task reports), `mean`
(the mean over the tasks, empty where a model lacks one, so that partial means are never compared).
Where a group's subtasks are reported with it, the group's own score stands for them. Several files of
one model: a later run (by the timestamp in the file name) replaces an earlier one's tasks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from lmmap.errors import InputError

DEFAULT_METRICS = ("acc_norm", "acc")
RESULTS_FILE = re.compile(r"^results_.*\.json$")


def results_files(paths: list[str | Path]) -> list[Path]:
    """The results files among `paths`: files as given, directories searched for results_*.json (the
    `--output_path` layout), each model's files in run order (the timestamp in the name)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("results_*.json") if p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(path, "no such results file or directory")
    if not found:
        raise InputError(paths[0] if paths else "--results", "no lm-evaluation-harness results_*.json found")
    return sorted(found, key=lambda p: (str(p.parent), p.name))


def model_name(record: dict, path: Path) -> str:
    """The evaluated model's name as lm-evaluation-harness records it."""
    if record.get("model_name"):
        return str(record["model_name"])
    config = record.get("config") or {}
    args = config.get("model_args")
    if isinstance(args, dict) and args.get("pretrained"):
        return str(args["pretrained"])
    if isinstance(args, str):
        for part in args.split(","):
            key, _, value = part.partition("=")
            if key.strip() == "pretrained" and value.strip():
                return value.strip()
    raise InputError(
        path, "names no model (neither model_name nor pretrained= in config.model_args)", field="model_name"
    )


def task_scores(
    record: dict, path: Path, metrics: tuple[str, ...] = DEFAULT_METRICS, tasks: list[str] | None = None
) -> dict[str, float]:
    """{task: score on 0-100} of one results file."""
    results = record.get("results") if isinstance(record, dict) else None
    if not isinstance(record, dict) or not isinstance(results, dict) or not results:
        raise InputError(path, "not an lm-evaluation-harness results file (no `results` mapping)", field="results")
    subtasks = {s for members in (record.get("group_subtasks") or {}).values() for s in members}
    names = tasks if tasks else [t for t in results if t not in subtasks]
    scores = {}
    for task in names:
        if task not in results:
            continue  # another file may hold it; a task missing everywhere is reported by scores_table
        values = results[task]
        for metric in metrics:
            value = next(
                (v for k, v in values.items() if k.split(",")[0] == metric and isinstance(v, (int, float))), None
            )
            if value is not None:
                scores[task] = 100.0 * float(value) if 0.0 <= float(value) <= 1.0 else float(value)
                break
        else:
            reported = sorted({k.split(",")[0] for k in values if not k.endswith("_stderr") and k != "alias"})
            raise InputError(
                path,
                f"task reports none of the metrics {list(metrics)} (it has {reported}); choose with --metrics",
                record=task,
            )
    return scores


def scores_table(
    paths: list[str | Path],
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    tasks: list[str] | None = None,
    model_ids: dict[str, str] | None = None,
):
    """The scores table of every results file under `paths`, and the files read."""
    import pandas as pd

    files = results_files(paths)
    by_model: dict[str, dict[str, float]] = {}
    for path in files:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(path, f"not valid JSON ({exc})") from None
        scores = task_scores(record, path, metrics, tasks)
        name = model_name(record, path)
        by_model.setdefault((model_ids or {}).get(name, name), {}).update(scores)
    columns = tasks or sorted({t for scores in by_model.values() for t in scores})
    missing = [t for t in columns if not any(t in scores for scores in by_model.values())]
    if missing:
        raise InputError(files[0], f"no results file has task(s) {missing}", field="results")
    frame = pd.DataFrame.from_dict(by_model, orient="index").reindex(columns=columns)
    frame["mean"] = frame.mean(axis=1).where(frame.notna().all(axis=1))
    frame.index.name = "model_id"
    return frame.sort_index().reset_index(), files
