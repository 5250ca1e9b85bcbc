# Scoring: one job per model, each writing its N-vector of log-likelihoods and its provenance.


rule score_model:
    input:
        texts="results/texts/texts.jsonl",
        model=zoo_model_input,
        download=download_input,
    output:
        "results/scores/{model}.npz",
    log:
        "logs/score_model/{model}.log",
    benchmark:
        "logs/score_model/{model}.benchmark.tsv"
    wildcard_constraints:
        model=individually_scored(),
    group:
        score_group
    conda:
        "../envs/scoring.yaml"
    resources:
        runtime=score_runtime,
        mem_mb=score_mem_mb,
        gpu=score_gpus,
        gres=score_gres,
    params:
        model_id=lambda w: model_spec(w).model_id,
        source=lambda w: model_spec(w).source,
        options=lambda w: score_options(model_spec(w)),
        batch_tokens=batch_tokens_option(),
        device=config["scoring"]["device"],
        checkpoint_dir=lambda w: f"results/scores/.checkpoints/{w.model}",
    shell:
        "python -m lmmap score --model-id {params.model_id:q} --source {params.source:q} {params.options:q}"
        " --texts {input.texts:q} --out {output:q} {params.batch_tokens}"
        " --device {params.device:q} --checkpoint-dir {params.checkpoint_dir:q} > {log:q} 2>&1"


for _group, _jobs in ZOO_SCORE_JOBS.items():

    rule:
        name:
            f"score_many_{_group.replace('-', '_').replace('.', '_')}"
        input:
            texts="results/texts/texts.jsonl",
            models=[f"{job['source']}/config.json" for job in _jobs],
        output:
            [job["out"] for job in _jobs],
        log:
            f"logs/score_many/{_group}.log",
        benchmark:
            f"logs/score_many/{_group}.benchmark.tsv"
        priority: 1  # before the plots: the matrix and every analysis wait for it
        conda:
            "../envs/scoring.yaml"
        params:
            jobs=json.dumps(_jobs),
            batch_tokens=batch_tokens_option(),
            device=config["scoring"]["device"],
        shell:
            "python -m lmmap score-many --jobs {params.jobs:q} --texts {input.texts:q}"
            " {params.batch_tokens} --device {params.device:q} > {log:q} 2>&1"
