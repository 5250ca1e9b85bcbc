"""Commands that build the demo benchmarks, evaluate models on them and collect the leaderboard."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from lmmap import tasks
from lmmap.commands import Step
from lmmap.errors import InputError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("build-task", help="build one multiple-choice task from held-out corpus chunks")
    p.add_argument("--corpus", required=True, help="demo corpus documents JSONL (split: heldout is used)")
    p.add_argument("--name", required=True, help="task name")
    p.add_argument("--kind", required=True, choices=tasks.KINDS, help="kind of task to build")
    p.add_argument("--domains", nargs="*", help="corpus domains to draw from (default: all)")
    p.add_argument("--n-items", type=int, required=True, help="questions in the task")
    p.add_argument("--n-choices", type=int, required=True, help="choices per question (one correct)")
    p.add_argument(
        "--context-chars",
        type=int,
        nargs=2,
        required=True,
        metavar=("MIN", "MAX"),
        help="length range of each question's context",
    )
    p.add_argument("--continuation-chars", type=int, required=True, help="length of each choice")
    p.add_argument("--seed", type=int, required=True, help="seed of the items (with the task name)")
    p.add_argument("--out", required=True, help="task JSONL to write")
    p.set_defaults(func=run_build_task)

    p = subparsers.add_parser("evaluate-tasks", help="evaluate models on tasks (each model loaded once for all tasks)")
    p.add_argument(
        "--models", required=True, help="JSON list of model-sheet rows (model_id, source, and optional sheet columns)"
    )
    p.add_argument("--tasks", nargs="+", required=True, help="task JSONL files (the task name is the stem)")
    p.add_argument("--device", help="cpu, cuda, ... (default: the first GPU if any, else cpu)")
    p.add_argument("--batch-tokens", type=int, required=True, help="padded tokens per forward pass")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--out", required=True, help="long-format CSV to write (model_id, task, acc, acc_norm)")
    p.set_defaults(func=run_evaluate_tasks)

    p = subparsers.add_parser("collect-benchmarks", help="merge evaluation results into the leaderboard table")
    p.add_argument("--results", nargs="+", required=True, help="CSVs written by evaluate-tasks")
    p.add_argument("--metrics", required=True, help='JSON {task: "acc" | "acc_norm"}: the table\'s columns')
    p.add_argument("--out", required=True, help="scores CSV: model_id, one column per task (0-100), mean")
    p.add_argument("--long-out", help="also write every metric in long format here")
    p.set_defaults(func=run_collect)

    p = subparsers.add_parser(
        "import-lm-eval",
        help="import lm-evaluation-harness results files into the scores table",
        description="Read lm-evaluation-harness results (the results_*.json files its --output_path writes, or "
        "directories holding them) and write the scores table the analyses use: model_id, one "
        "column per task on 0-100, mean (empty where a model lacks a task).",
    )
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results_*.json files or directories of them")
    p.add_argument(
        "--metrics",
        nargs="+",
        default=["acc_norm", "acc"],
        help="per task, the first of these metrics it reports is its score",
    )
    p.add_argument(
        "--tasks",
        nargs="+",
        help="tasks to keep, in this order (default: every task but the subtasks of a reported group)",
    )
    p.add_argument(
        "--model-id",
        nargs="+",
        default=[],
        metavar="NAME=MODEL_ID",
        help="model ids of the map for the names the results record (default: the same)",
    )
    p.add_argument("--out", required=True, help="scores CSV to write (the benchmark scores the workflow reads)")
    p.set_defaults(func=run_import_lm_eval)


def run_build_task(args: argparse.Namespace) -> int:
    from lmmap.texts import iter_jsonl

    step = Step("build-task", args, {"corpus": args.corpus})
    documents = [doc for _, doc in iter_jsonl(args.corpus)]
    chunks = tasks.heldout_chunks(documents, args.domains or None)
    if not chunks:
        raise InputError(args.corpus, f"no held-out chunks in domains {args.domains}", record=args.name)
    params = tasks.TaskParams(
        n_items=args.n_items,
        n_choices=args.n_choices,
        context_chars=tuple(args.context_chars),
        continuation_chars=args.continuation_chars,
        seed=args.seed,
    )
    items = tasks.build_items(args.kind, chunks, params, args.name)
    tasks.write_items(args.out, items)
    domains = sorted({item["domain"] for item in items})
    step.record(args.out, {"n_items": len(items), "n_heldout_chunks": len(chunks), "domains": domains})
    return 0


def run_evaluate_tasks(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch

    from lmmap.loading import load_model
    from lmmap.sheet import ModelSpec

    step = Step("evaluate-tasks", args, {Path(p).stem: p for p in args.tasks})
    if args.threads:
        torch.set_num_threads(args.threads)
    task_items = {Path(path).stem: tasks.read_items(path) for path in args.tasks}
    rows, infos = [], {}
    for row in json.loads(args.models):
        spec = ModelSpec.from_dict(row)
        model_started, cpu_started = time.time(), time.process_time()
        loaded = load_model(spec, device=args.device)
        for task, result in tasks.evaluate_tasks(loaded, task_items, args.batch_tokens).items():
            rows.append({"model_id": spec.model_id, "task": task, **result})
        infos[spec.model_id] = loaded.info | {
            "seconds": round(time.time() - model_started, 3),
            "cpu_seconds": round(time.process_time() - cpu_started, 3),
        }
        log.info(
            "evaluated %s in %.1f s (%.1f s CPU)",
            spec.model_id,
            infos[spec.model_id]["seconds"],
            infos[spec.model_id]["cpu_seconds"],
        )
        del loaded
    step.csv(pd.DataFrame(rows), args.out, {"models": infos})
    return 0


def run_collect(args: argparse.Namespace) -> int:
    import pandas as pd

    step = Step("collect-benchmarks", args, {Path(p).stem: p for p in args.results})
    rows = pd.concat([pd.read_csv(path) for path in args.results], ignore_index=True)
    metrics = json.loads(args.metrics)
    missing = sorted(set(metrics) - set(rows["task"]))
    if missing:
        raise InputError(args.results[0], f"no results for task(s) {missing}", field="task")
    table = tasks.benchmark_table(rows.to_dict("records"), metrics)
    extra = {"n_models": len(table), "metrics": metrics}
    step.csv(table, args.out, extra, float_format="%.4f")
    if args.long_out:
        step.csv(rows, args.long_out, extra, float_format="%.6f")
    return 0


def run_import_lm_eval(args: argparse.Namespace) -> int:
    from lmmap.lm_eval import scores_table

    renames = {}
    for item in args.model_id:
        name, sep, model_id = item.partition("=")
        if not sep or not name or not model_id:
            raise InputError("--model-id", f"'{item}' is not NAME=MODEL_ID")
        renames[name] = model_id
    table, files = scores_table(args.results, tuple(args.metrics), args.tasks, renames)
    tasks_found = [c for c in table.columns if c not in ("model_id", "mean")]
    step = Step("import-lm-eval", args, {str(p): p for p in files})
    step.csv(table, args.out, {"n_models": len(table), "tasks": tasks_found}, float_format="%.4f")
    log.info("wrote %s: %d model(s) from %d results file(s)", args.out, len(table), len(files))
    return 0
