# Weight interpolation (paper §6.3; lmmap.interpolate): every grid model θ(α, β) = (1 − α − β) θ₀ +
# α θ₁ + β θ₂ is merged by its own job, which streams the three parents' weight shards (memory ~ one
# output shard, never a model) into results/interpolation/<grid>/models/<model>/ (a save_pretrained
# directory) and writes the triple's measured geometry (norms of θ₁ − θ₀, θ₂ − θ₀, their angle) to
# interpolation.json beside it. The demo zoo's grids (zoo.interpolation) and the configured triples
# of mapped models (interpolation.triples, config/paper/interpolation.yaml) take this same path; the
# parents come from the zoo's build jobs or the hub download rule (rules/download.smk). Zoo grid
# models are then scored by the zoo's grouped scoring jobs (rules/score.smk), the others one per job
# by score_grid_model, with the resources of score_model (rules/resources.smk, which also holds the
# merge's input and resource functions).

if GRID_DEFS:

    rule interpolate_grid_model:
        input:
            parents=grid_parent_inputs,
        output:
            model="results/interpolation/{grid}/models/{model}/config.json",
            info="results/interpolation/{grid}/models/{model}/interpolation.json",
        log:
            "logs/interpolate_grid_model/{grid}/{model}.log",
        benchmark:
            "logs/interpolate_grid_model/{grid}/{model}.benchmark.tsv"
        wildcard_constraints:
            grid=_alternatives(GRID_DEFS),
            model=_alternatives(GRID_POINTS),
        priority: 2  # like the zoo's builds: before any scoring
        conda:
            "../envs/scoring.yaml"
        threads: 1
        resources:
            disk_mb=merge_disk_mb,
            mem_mb=merge_mem_mb,
            runtime=merge_runtime,
        params:
            parents=grid_parents_json,
            alpha=lambda w: GRID_POINTS[w.model][1],
            beta=lambda w: GRID_POINTS[w.model][2],
            dtype=lambda w: _grid(w).dtype,
            shard_gb=lambda w: _grid(w).shard_gb,
            out_dir=folder("model"),
        shell:
            "python -m lmmap interpolate --parents {params.parents:q} --alpha {params.alpha} --beta {params.beta}"
            " --dtype {params.dtype} --shard-gb {params.shard_gb} --out-dir {params.out_dir:q} > {log:q} 2>&1"


SCORED_GRIDS = [slug for slug, grid in GRID_DEFS.items() if not grid.zoo]

if SCORED_GRIDS:

    rule score_grid_model:
        input:
            texts="results/texts/texts.jsonl",
            model="results/interpolation/{grid}/models/{model}/config.json",
        output:
            "results/interpolation/{grid}/scores/{model}.npz",
        log:
            "logs/score_grid_model/{grid}/{model}.log",
        benchmark:
            "logs/score_grid_model/{grid}/{model}.benchmark.tsv"
        wildcard_constraints:
            grid=_alternatives(SCORED_GRIDS),
            model=_alternatives(GRID_POINTS),
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
            checkpoint_dir=lambda w: f"results/interpolation/{w.grid}/scores/.checkpoints/{w.model}",
        shell:
            "python -m lmmap score --model-id {params.model_id:q} --source {params.source:q} {params.options:q}"
            " --texts {input.texts:q} --out {output:q} {params.batch_tokens}"
            " --device {params.device:q} --checkpoint-dir {params.checkpoint_dir:q} > {log:q} 2>&1"
