# The demo benchmarks (config `tasks`, see lmmap.tasks): one job per multiple-choice task built from
# held-out corpus chunks, one evaluation job per zoo family (every other model on its own: each
# model is loaded once for all tasks), and the leaderboard table results/benchmarks/scores.csv.

import re

from lmmap.workflow import evaluation_batches, sheet_rows_json, zoo_config_files

TASKS_CONFIG = config["tasks"]
# each task with the section's item count and choice length unless it sets its own
TASKS = (
    {
        t["name"]: {key: TASKS_CONFIG[key] for key in ("n_items", "continuation_chars")} | t
        for t in TASKS_CONFIG["tasks"]
    }
    if TASKS_CONFIG["enabled"]
    else {}
)
EVALUATION_BATCHES = evaluation_batches(list(MODELS.values())) if TASKS else {}


TASK_FILES = [f"results/benchmarks/tasks/{name}.jsonl" for name in TASKS]


if TASKS:

    rule build_task:
        input:
            "results/corpus/documents.jsonl",
        output:
            "results/benchmarks/tasks/{task}.jsonl",
        log:
            "logs/build_task/{task}.log",
        benchmark:
            "logs/build_task/{task}.benchmark.tsv"
        wildcard_constraints:
            task="|".join(re.escape(name) for name in TASKS),
        conda:
            "../envs/analysis.yaml"
        params:
            kind=lambda w: TASKS[w.task]["kind"],
            domains=lambda w: ["--domains", *TASKS[w.task]["domains"]] if TASKS[w.task]["domains"] else [],
            n_items=lambda w: TASKS[w.task]["n_items"],
            n_choices=TASKS_CONFIG["n_choices"],
            context_chars=TASKS_CONFIG["context_chars"],
            continuation_chars=lambda w: TASKS[w.task]["continuation_chars"],
            seed=TASKS_CONFIG["seed"],
        shell:
            "python -m lmmap build-task --corpus {input:q} --name {wildcards.task:q} --kind {params.kind:q}"
            " {params.domains:q} --n-items {params.n_items} --n-choices {params.n_choices}"
            " --context-chars {params.context_chars} --continuation-chars {params.continuation_chars}"
            " --seed {params.seed} --out {output:q} > {log:q} 2>&1"

    rule evaluate_tasks:
        input:
            tasks=TASK_FILES,
            models=lambda w: zoo_config_files(EVALUATION_BATCHES[w.batch]),
        output:
            "results/benchmarks/evaluations/{batch}.csv",
        log:
            "logs/evaluate_tasks/{batch}.log",
        benchmark:
            "logs/evaluate_tasks/{batch}.benchmark.tsv"
        wildcard_constraints:
            batch="|".join(re.escape(name) for name in EVALUATION_BATCHES),
        priority: 1  # before the plots: every benchmark analysis waits for it
        conda:
            "../envs/scoring.yaml"
        threads: 1
        params:
            models=lambda w: sheet_rows_json(EVALUATION_BATCHES[w.batch]),
            device=["--device", TASKS_CONFIG["device"]] if TASKS_CONFIG["device"] else [],
            batch_tokens=TASKS_CONFIG["batch_tokens"],
        shell:
            "python -m lmmap evaluate-tasks --models {params.models:q} --tasks {input.tasks:q}"
            " {params.device:q} --batch-tokens {params.batch_tokens} --threads {threads}"
            " --out {output:q} > {log:q} 2>&1"

    rule collect_benchmarks:
        input:
            expand("results/benchmarks/evaluations/{batch}.csv", batch=EVALUATION_BATCHES),
        output:
            scores=report(
                "results/benchmarks/scores.csv",
                caption="../report/benchmarks.rst",
                category="Benchmarks",
                subcategory="Scores",
            ),
            metrics=report(
                "results/benchmarks/metrics.csv",
                caption="../report/benchmarks_metrics.rst",
                category="Benchmarks",
                subcategory="Task metrics",
            ),
        log:
            "logs/collect_benchmarks/collect_benchmarks.log",
        benchmark:
            "logs/collect_benchmarks/collect_benchmarks.benchmark.tsv"
        conda:
            "../envs/analysis.yaml"
        params:
            metrics=json.dumps({name: task["metric"] for name, task in TASKS.items()}),
        shell:
            "python -m lmmap collect-benchmarks --results {input:q} --metrics {params.metrics:q}"
            " --out {output.scores:q} --long-out {output.metrics:q} > {log:q} 2>&1"
